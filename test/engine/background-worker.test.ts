import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

/** How the worker looks for jobs: each look that finds none costs the store a transaction. */
describe('background worker', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let directory: string;

  beforeAll(async () => {
    fake = await startFake('ollama');
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'done' }] }));
    directory = mkdtempSync(join(tmpdir(), 'ferry-worker-'));
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      database: join(directory, 'ferry.db'),
      // No poll during the test: every look comes from a queued job or a finished one.
      background: { pollIntervalMs: 600_000 },
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function runJob(): Promise<void> {
    const queued = await ferry.client.responses.create({
      model: 'test-model',
      input: 'go',
      background: true,
    });
    for (let attempt = 0; attempt < 500; attempt++) {
      const response = await ferry.client.responses.retrieve(queued.id);
      if (response.status === 'completed') return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`${queued.id} did not complete`);
  }

  it('claims after a job is queued, and not after a job finishes while the queue is empty', async () => {
    await runJob();
    const claims = vi.spyOn(ferry.app.context.store, 'claimJob');
    for (let job = 0; job < 3; job++) await runJob();
    // Each queued job: one claim takes it, the next finds the queue empty. A finishing job frees
    // a slot, but nothing was queued since that empty look, so it claims nothing.
    expect(claims).toHaveBeenCalledTimes(6);
    const taken = await Promise.all(claims.mock.results.map((result) => result.value as Promise<unknown>));
    expect(taken.filter((job) => job !== undefined)).toHaveLength(3);
  });
});
