import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { createTestSchema, type TestSchema } from '../support/postgres.js';
import { startFerryProcess, type FerryProcess } from '../support/process.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';

const WORDS = Array.from({ length: 24 }, (_, i) => `t${i}`).join(' ');

async function settle(client: OpenAI, id: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await client.responses.retrieve(id);
    if (!['queued', 'in_progress'].includes(response.status!)) return response;
    if (Date.now() > deadline) throw new Error(`response ${id} is still ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Several Ferry processes on one PostgreSQL behave as one gateway. Replica A runs background
 * jobs; B only serves the API (concurrency 0), so whatever B sees of a job came from A through
 * the database. B's own polling is slow (10 s), so prompt cancels and live follows prove the
 * LISTEN/NOTIFY path.
 */
describe('replicas over one PostgreSQL', { timeout: 60_000 }, () => {
  let schema: TestSchema;
  let fake: FakeBackend;
  let a: FerryProcess;
  let b: FerryProcess;
  const processes: FerryProcess[] = [];

  function replicaConfig(background: Record<string, number>): string {
    const path = join(mkdtempSync(join(tmpdir(), 'ferry-replica-')), 'ferry.json');
    writeFileSync(
      path,
      JSON.stringify({
        database: schema.url,
        backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
        background: { leaseSeconds: 1, ...background },
      }),
    );
    return path;
  }
  async function replica(background: Record<string, number>): Promise<FerryProcess> {
    const process = await startFerryProcess(['--config', replicaConfig(background)]);
    processes.push(process);
    return process;
  }
  const client = (replica: FerryProcess) =>
    new OpenAI({ baseURL: `${replica.url}/v1`, apiKey: 'x', maxRetries: 0 });

  beforeAll(async () => {
    schema = await createTestSchema();
    fake = await startFakeOllama({ models: ['m'] });
    // Started together: the migrations must not trip over each other.
    [a, b] = await Promise.all([
      replica({ concurrency: 1, pollIntervalMs: 10_000 }),
      replica({ concurrency: 0, pollIntervalMs: 10_000 }),
    ]);
  });
  afterAll(async () => {
    for (const process of processes) await process.stop('SIGKILL').catch(() => undefined);
    await fake.close();
    await schema.drop();
  });

  it('creates on A and retrieves, chains and lists on B', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'from A' }] }));
    const first = await client(a).responses.create({ model: 'm', input: 'remember: KITE' });
    expect((await client(b).responses.retrieve(first.id)).output_text).toBe('from A');
    const second = await client(b).responses.create({
      model: 'm',
      input: 'what was it?',
      previous_response_id: first.id,
    });
    const sent = fake.requests.at(-1)!.body.messages as { content: string }[];
    expect(sent.map((message) => message.content)).toEqual(['remember: KITE', 'from A', 'what was it?']);
    const items = await client(a).responses.inputItems.list(second.id);
    expect(items.data).toHaveLength(1);
  });

  it('runs a job started through B on A, and B follows its stream live', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: 40 }));
    const started = await fetch(`${b.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: 'stream across replicas', background: true, stream: true }),
    });
    const live = await captureSse(started, 20_000);
    const checked = checkStream(
      live.frames.map((frame) => frame.data),
      { background: true },
    );
    expect(checked.text).toBe(WORDS);
    const replay = await captureSse(
      await fetch(`${a.url}/v1/responses/${checked.final.id as string}?stream=true`),
    );
    expect(replay.frames.map((frame) => frame.raw)).toEqual(live.frames.map((frame) => frame.raw));
  });

  it('cancels through B a job running on A, promptly', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: 150 }));
    const before = fake.requests.length;
    const queued = await client(a).responses.create({
      model: 'm',
      input: 'cancel me elsewhere',
      background: true,
    });
    await waitFor(() => fake.requests.length > before, 'the job to reach the backend');
    await waitFor(
      async () => (await client(b).responses.retrieve(queued.id)).status === 'in_progress',
      'in_progress',
    );
    const sent = Date.now();
    const cancelled = await client(b).responses.cancel(queued.id);
    const aborted = await fake.waitForAbort(5_000);
    const elapsed = Date.now() - sent;
    expect(aborted.aborted).toBe(true);
    expect(cancelled.status).toBe('cancelled');
    // B polls only every 10 s, so this is the NOTIFY path (typically tens of milliseconds).
    expect(elapsed).toBeLessThan(2_000);
    expect((await client(a).responses.retrieve(queued.id)).status).toBe('cancelled');
  });

  it('finishes on another replica a job whose replica was killed', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: 60 }));
    const before = fake.requests.length;
    const queued = await client(b).responses.create({ model: 'm', input: 'survive A', background: true });
    await waitFor(() => fake.requests.length > before, 'A to start the job');
    // Kill A first: the job can only finish on a replica that starts after it died.
    await a.stop('SIGKILL');
    const c = await replica({ concurrency: 1, pollIntervalMs: 200 });
    const done = await settle(client(b), queued.id);
    expect(done.status).toBe('completed');
    expect(done.output_text).toBe(WORDS);
    expect(fake.requests.length - before).toBe(2);
    await c.stop();
  });
});
