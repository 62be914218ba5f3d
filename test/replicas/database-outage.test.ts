import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import { createTestSchema, type TestSchema } from '../support/postgres.js';
import type { FakeBackend } from '../support/scenario.js';
import { startProxy, type CuttableProxy } from '../support/tcp-proxy.js';

/** PostgreSQL going away: clear 503s (never a hang), /readyz says so, and Ferry recovers on its own. */
describe('a lost PostgreSQL connection', { timeout: 60_000 }, () => {
  let schema: TestSchema;
  let proxy: CuttableProxy;
  let fake: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    schema = await createTestSchema();
    const target = new URL(schema.url);
    proxy = await startProxy(target.hostname, Number(target.port || 5432));
    target.port = String(proxy.port);
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      database: target.toString(),
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
    await proxy.close();
    await schema.drop();
  });

  it('answers 503 while the database is gone and serves again once it is back', async () => {
    const stored = await ferry.client.responses.create({ model: 'm', input: 'before the outage' });

    proxy.cut();
    const started = Date.now();
    const read = await ferry.fetch(`/v1/responses/${stored.id}`);
    expect(read.status).toBe(503);
    expect(read.headers.get('retry-after')).toBe('1');
    expect(((await read.json()) as { error: { code: string } }).error.code).toBe('database_unavailable');
    const write = await postJson(ferry, '/v1/responses', { model: 'm', input: 'during the outage' });
    expect(write.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(15_000);
    const ready = await ferry.fetch('/readyz');
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { database: { ok: boolean } }).database.ok).toBe(false);

    proxy.restore();
    let again = await ferry.fetch(`/v1/responses/${stored.id}`);
    for (let attempt = 0; attempt < 50 && again.status !== 200; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      again = await ferry.fetch(`/v1/responses/${stored.id}`);
    }
    expect(again.status).toBe(200);
    // Readiness follows at the job worker's next successful poll.
    let recovered = await ferry.fetch('/readyz');
    for (let attempt = 0; attempt < 50 && recovered.status !== 200; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      recovered = await ferry.fetch('/readyz');
    }
    expect(recovered.status).toBe(200);
  });
});
