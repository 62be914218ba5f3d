import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readiness } from '../../src/observability/readiness.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

describe('the readiness registry', () => {
  it('is ready when every critical check passes, reporting each under its name', async () => {
    const readiness = new Readiness(200);
    readiness.register('a', async () => ({ ok: true, report: { ok: true, detail: 1 } }));
    readiness.register('optional', async () => ({ ok: false }), { critical: false });
    expect(await readiness.run()).toEqual({
      ready: true,
      checks: { a: { ok: true, detail: 1 }, optional: { ok: false } },
    });
    readiness.register('broken', async () => {
      throw new Error('worker crashed');
    });
    expect(await readiness.run()).toMatchObject({
      ready: false,
      checks: { broken: { ok: false, error: 'worker crashed' } },
    });
    expect(() => readiness.register('a', async () => ({ ok: true }))).toThrow(/already registered/);
    readiness.unregister('broken');
    expect((await readiness.run()).ready).toBe(true);
  });

  it('bounds a check that never answers, and aborts it', async () => {
    const readiness = new Readiness(100);
    let aborted = false;
    readiness.register(
      'hangs',
      (signal) =>
        new Promise(() => {
          signal.addEventListener('abort', () => (aborted = true));
        }),
    );
    const started = performance.now();
    const report = await readiness.run();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(report).toEqual({
      ready: false,
      checks: { hangs: { ok: false, error: 'no answer within 100 ms' } },
    });
    expect(aborted).toBe(true);
  });
});

describe('/readyz and /healthz', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({ backends: [{ name: 'local', kind: 'ollama', url: fake.url }] });
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  it('reports the database (with latency), each backend, the job worker and other registered checks', async () => {
    const ready = await ferry.fetch('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      database: { dialect: 'sqlite', ok: true, error: null, latencyMs: expect.any(Number) },
      backends: [
        expect.objectContaining({ name: 'local', ok: true, latencyMs: expect.any(Number), lastError: null }),
      ],
      worker: { ok: true, running: 0, lastError: null },
    });

    let healthy = false;
    ferry.app.context.readiness.register('extra', async () => ({ ok: healthy, report: { ok: healthy } }));
    try {
      const down = await ferry.fetch('/readyz');
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ status: 'unready', extra: { ok: false } });
      healthy = true;
      expect((await ferry.fetch('/readyz')).status).toBe(200);
    } finally {
      ferry.app.context.readiness.unregister('extra');
    }
  });

  it('keeps /healthz cheap: it asks neither the backends nor the database', async () => {
    const requests = fake.requests.length;
    // Each /metrics scrape counts the job queue (table "jobs"): leave that scrape's own query out.
    const queries = (text: string) =>
      [
        ...text.matchAll(/^ferry_db_query_duration_seconds_count\{(?![^}]*table="jobs")[^}]*\} (\d+)/gm),
      ].reduce((sum, m) => sum + Number(m[1]), 0);
    // The job worker polls the database on its own; hold it still so only /healthz could query.
    await ferry.app.context.worker.stop(0);
    const before = queries(await (await ferry.fetch('/metrics')).text());
    for (let i = 0; i < 5; i++)
      expect(await (await ferry.fetch('/healthz')).json()).toEqual({ status: 'ok' });
    expect(fake.requests.length).toBe(requests);
    expect(queries(await (await ferry.fetch('/metrics')).text())).toBe(before);
  });

  it('is unready when the database does not answer', async () => {
    const gateway = await startFerry({ backends: [{ name: 'local', kind: 'ollama', url: fake.url }] });
    await gateway.app.context.store.close();
    const response = await gateway.fetch('/readyz');
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({
      status: 'unready',
      database: { ok: false, error: expect.any(String), latencyMs: null },
      backends: [expect.objectContaining({ ok: true })],
    });
    await gateway.close().catch(() => undefined);
  });
});
