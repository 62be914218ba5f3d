import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { runCli, startFerryProcess, waitForExit } from '../support/process.js';
import type { FakeBackend } from '../support/scenario.js';

describe('the ferry command', () => {
  let fake: FakeBackend;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
  });
  afterAll(() => fake.close());

  it('serves with flags, answers requests, and stops cleanly on SIGTERM', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-cli-')), 'ferry.db');
    const ferry = await startFerryProcess(['--database', database, '--backend', `local=ollama:${fake.url}`]);
    try {
      expect((await fetch(`${ferry.url}/healthz`)).status).toBe(200);
      const response = await fetch(`${ferry.url}/v1/responses`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', input: 'from the cli' }),
      });
      expect(response.status).toBe(200);
      // Log lines leave in batches, yet within a fraction of a second.
      const requestId = response.headers.get('x-request-id')!;
      await vi.waitFor(() => expect(ferry.output()).toContain(`"reqId":"${requestId}"`), {
        timeout: 2_000,
        interval: 20,
      });
    } finally {
      expect(await ferry.stop('SIGTERM')).toBe(0);
    }
    expect(ferry.output()).toContain('Ferry is listening');
  });

  it('writes every buffered log line before it exits', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-cli-')), 'ferry.db');
    const ferry = await startFerryProcess(['--database', database, '--backend', `local=ollama:${fake.url}`]);
    const requestIds: string[] = [];
    try {
      for (let index = 0; index < 3; index++) {
        const response = await fetch(`${ferry.url}/healthz`);
        requestIds.push(response.headers.get('x-request-id')!);
      }
    } finally {
      // At once: the lines of these requests are still in the buffer.
      expect(await ferry.stop('SIGTERM')).toBe(0);
    }
    for (const requestId of requestIds) expect(ferry.output()).toContain(`"reqId":"${requestId}"`);
  });

  it('takes its settings from the environment too', async () => {
    const database = join(mkdtempSync(join(tmpdir(), 'ferry-cli-')), 'ferry.db');
    const ferry = await startFerryProcess([], {
      FERRY_DATABASE: database,
      FERRY_BACKENDS: `local=ollama:${fake.url}`,
    });
    try {
      const ready = (await (await fetch(`${ferry.url}/readyz`)).json()) as { backends: { name: string }[] };
      expect(ready.backends.map((backend) => backend.name)).toEqual(['local']);
    } finally {
      await ferry.stop();
    }
  });

  it('prints help, and refuses bad settings with exit code 2 and a clear message', async () => {
    const help = runCli(['--help']);
    let text = '';
    help.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
    expect(await waitForExit(help)).toBe(0);
    expect(text).toContain('--backend NAME=KIND:URL');

    const bad = runCli(['serve', '--backend', 'nonsense']);
    let errors = '';
    bad.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    expect(await waitForExit(bad)).toBe(2);
    expect(errors).toContain('expected NAME=KIND:URL');
  });
});
