import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startFerryProcess, type FerryProcess } from '../support/process.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';

const WORDS = Array.from({ length: 30 }, (_, i) => `w${i}`).join(' ');

/** A config file for a crash-test replica: short leases so a dead worker's job is taken over fast. */
function configFile(fake: FakeBackend, database: string, background: Record<string, number>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ferry-crash-cfg-')), 'ferry.json');
  writeFileSync(
    path,
    JSON.stringify({
      database,
      logLevel: 'info',
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      background: { leaseSeconds: 1, pollIntervalMs: 100, ...background },
    }),
  );
  return path;
}

async function settle(client: OpenAI, id: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await client.responses.retrieve(id);
    if (!['queued', 'in_progress'].includes(response.status!)) return response;
    if (Date.now() > deadline) throw new Error(`response ${id} is still ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const clientOf = (ferry: FerryProcess) =>
  new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: 'x', maxRetries: 0 });

describe('background jobs survive their process', { timeout: 60_000 }, () => {
  let fake: FakeBackend;
  const alive: FerryProcess[] = [];

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
  });
  afterAll(async () => {
    for (const process of alive) await process.stop('SIGKILL').catch(() => undefined);
    await fake.close();
  });

  async function start(config: string): Promise<FerryProcess> {
    const ferry = await startFerryProcess(['--config', config]);
    alive.push(ferry);
    return ferry;
  }

  it('finishes a job whose process was killed, and the whole stream can be read afterwards', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-crash-')), 'ferry.db');
    const config = configFile(fake, database, {});
    fake.setHandler(() => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: 60 }));

    const first = await start(config);
    const response = await fetch(`${first.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'long job', background: true, stream: true }),
    });
    const reader = response.body!.getReader();
    let seen = '';
    while (!seen.includes('response.output_text.delta'))
      seen += new TextDecoder().decode((await reader.read()).value);
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(seen)![1]!;
    const requestsBefore = fake.requests.length;

    expect(await first.stop('SIGKILL')).toBeNull();
    await reader.cancel().catch(() => undefined);

    const second = await start(config);
    await waitFor(() => fake.requests.length > requestsBefore, 'the job to start again');
    const done = await settle(clientOf(second), id);
    expect(done.status).toBe('completed');
    expect(done.output_text).toBe(WORDS);

    const replay = await captureSse(await fetch(`${second.url}/v1/responses/${id}?stream=true`));
    const checked = checkStream(
      replay.frames.map((frame) => frame.data),
      { background: true },
    );
    expect(checked.text).toBe(WORDS);
    await second.stop();
  });

  it('hands a running job back on SIGTERM after the grace period, and another process finishes it', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-crash-')), 'ferry.db');
    fake.setHandler(() => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: 60 }));
    const first = await start(configFile(fake, database, { shutdownGraceSeconds: 0.2 }));
    const client = clientOf(first);
    const before = fake.requests.length;
    const queued = await client.responses.create({ model: 'm', input: 'handed over', background: true });
    await waitFor(() => fake.requests.length > before, 'the job to start');
    expect(await first.stop('SIGTERM')).toBe(0);

    const second = await start(configFile(fake, database, {}));
    const done = await settle(clientOf(second), queued.id);
    expect(done.status).toBe('completed');
    expect(done.output_text).toBe(WORDS);
    await second.stop();
  });

  it('lets a running job finish within the grace period on SIGTERM', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-crash-')), 'ferry.db');
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'short job' }], chunkDelayMs: 100 }));
    const ferry = await start(configFile(fake, database, { shutdownGraceSeconds: 10 }));
    const before = fake.requests.length;
    const queued = await clientOf(ferry).responses.create({
      model: 'm',
      input: 'finish me',
      background: true,
    });
    await waitFor(() => fake.requests.length > before, 'the job to start');
    expect(await ferry.stop('SIGTERM')).toBe(0);
    const again = await start(configFile(fake, database, {}));
    const done = await clientOf(again).responses.retrieve(queued.id);
    expect(done.status).toBe('completed');
    expect(fake.requests.length - before).toBe(1);
    await again.stop();
  });

  it('fails a job for good once it was interrupted maxAttempts times', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-crash-')), 'ferry.db');
    const config = configFile(fake, database, { maxAttempts: 1 });
    fake.setHandler(() => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: 60 }));
    const first = await start(config);
    const before = fake.requests.length;
    const queued = await clientOf(first).responses.create({ model: 'm', input: 'doomed', background: true });
    await waitFor(() => fake.requests.length > before, 'the job to start');
    await first.stop('SIGKILL');
    const second = await start(config);
    const done = await settle(clientOf(second), queued.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'job_abandoned' });
    expect(fake.requests.length - before).toBe(1);
    await second.stop();
  });
});
