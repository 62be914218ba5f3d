import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SqlApiKeyStore } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/open.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { runCli, startFerryProcess, waitForExit } from '../support/process.js';
import type { FakeBackend } from '../support/scenario.js';

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = runCli(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await waitForExit(child);
  return { code, stdout, stderr };
}

describe('ferry keys', () => {
  let fake: FakeBackend;
  let directory: string;
  let config: string;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    directory = mkdtempSync(join(tmpdir(), 'ferry-cli-keys-'));
    config = join(directory, 'ferry.json');
    writeFileSync(
      config,
      JSON.stringify({
        database: join(directory, 'ferry.db'),
        backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
        keyCacheSeconds: 0.2,
      }),
    );
  });
  afterAll(async () => {
    await fake.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('creates, lists and revokes keys, and a running gateway honours them', async () => {
    const created = await run([
      'keys',
      'create',
      '--config',
      config,
      '--tenant',
      'team-a',
      '--name',
      'ci',
      '--rpm',
      '50',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^sk-ferry-[\w-]{32}$/);
    const id = /Created API key (key_[0-9a-f]{12}) for tenant 'team-a'/.exec(created.stderr)?.[1];
    expect(id).toBeDefined();

    const [table, json] = await Promise.all([
      run(['keys', 'list', '--config', config]),
      run(['keys', 'list', '--config', config, '--json']),
    ]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      new RegExp(`${id}\\s+team-a\\s+ci\\s+sk-ferry-\\S+…\\S{4}\\s+50\\s+-\\s+\\S+\\s+active`),
    );
    expect(table.stdout + json.stdout).not.toContain(key);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ id, tenant: 'team-a', name: 'ci', requestsPerMinute: 50, revokedAt: null }),
    ]);

    const ferry = await startFerryProcess(['--config', config]);
    try {
      const ask = (apiKey?: string) =>
        fetch(`${ferry.url}/v1/models`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
      // A stored key closes the gateway: no key, no answer.
      expect((await ask()).status).toBe(401);
      const ok = await ask(key);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit-requests')).toBe('50');

      const revoked = await run(['keys', 'revoke', id!, '--config', config]);
      expect(revoked.code).toBe(0);
      expect(revoked.stdout).toContain(`Revoked API key ${id} (tenant 'team-a')`);
      // The running gateway stops accepting it once its cache entry expires (0.2 s here).
      await vi.waitFor(async () => expect((await ask(key)).status).toBe(401), {
        timeout: 5_000,
        interval: 100,
      });
    } finally {
      await ferry.stop();
    }
    expect(ferry.output()).not.toContain(key);
    const store = await openStore({ database: join(directory, 'ferry.db') });
    try {
      expect((await new SqlApiKeyStore(store.db).list())[0]!.revokedAt).toEqual(expect.any(Number));
    } finally {
      await store.close();
    }
  });

  it('explains mistakes: a missing tenant, a bad number, an unknown key id', async () => {
    const [noTenant, badRpm, unknown] = await Promise.all([
      run(['keys', 'create', '--config', config]),
      run(['keys', 'create', '--config', config, '--tenant', 'a', '--rpm', 'lots']),
      run(['keys', 'revoke', 'key_000000000000', '--config', config]),
    ]);
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain('needs --tenant');
    expect(badRpm.code).toBe(2);
    expect(badRpm.stderr).toContain('--rpm must be a positive integer');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no API key has the id 'key_000000000000'");
  });
});
