import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiKeyResolver, generateKey, hashKey } from '../../src/access/api-keys.js';
import { ApiError } from '../../src/api/errors.js';
import { validate } from '../../src/config/load.js';
import type { FerryConfigInput } from '../../src/config/schema.js';
import { SqlApiKeyStore, type ApiKeyStore } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/open.js';
import type { SqlStore } from '../../src/store/sql-store.js';

/** The real SQLite key store, with a switch that makes the database "go away". */
class FlakyKeyStore implements ApiKeyStore {
  down = false;
  lookups = 0;
  constructor(private readonly inner: SqlApiKeyStore) {}
  private check() {
    if (this.down) throw new Error('database is down');
  }
  async create(...args: Parameters<ApiKeyStore['create']>) {
    return this.inner.create(...args);
  }
  async list(tenant?: string) {
    return this.inner.list(tenant);
  }
  async revoke(id: string, at: number) {
    return this.inner.revoke(id, at);
  }
  async findByHash(hash: string) {
    this.check();
    this.lookups++;
    return this.inner.findByHash(hash);
  }
  async hasAny() {
    this.check();
    return this.inner.hasAny();
  }
}

const config = (input: Partial<FerryConfigInput> = {}) => validate({ keyCacheSeconds: 60, ...input });

describe('API key resolution', () => {
  let directory: string;
  let store: SqlStore;
  let keys: FlakyKeyStore;
  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'ferry-keys-'));
    store = await openStore({ database: join(directory, 'ferry.db') });
    keys = new FlakyKeyStore(new SqlApiKeyStore(store.db));
  });
  afterAll(async () => {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it('generates long random keys whose hash, hint and id never contain the key', () => {
    const { key, record } = generateKey('team-a', { name: 'ci', concurrentRequests: 2 });
    expect(key).toMatch(/^sk-ferry-[\w-]{32}$/);
    expect(record.hash).toBe(hashKey(key));
    expect(record.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(record.id).toMatch(/^key_[0-9a-f]{12}$/);
    expect(record.hint).toBe(`${key.slice(0, 13)}…${key.slice(-4)}`);
    expect(record.hint.length).toBeLessThan(key.length / 2);
    expect(generateKey('team-a').key).not.toBe(key);
  });

  it('resolves configured keys in memory, with their tenant, id and limits', async () => {
    const resolver = new ApiKeyResolver(
      config({
        apiKeys: {
          'sk-plain-0123': 'team-a',
          'sk-named-0123': { tenant: 'team-b', name: 'batch', requestsPerMinute: 5 },
        },
      }),
      keys,
    );
    await resolver.start();
    expect(resolver.open).toBe(false);
    expect(await resolver.check('sk-plain-0123')).toEqual({
      principal: { tenant: 'team-a', keyId: 'cfg_1', limits: {} },
    });
    expect(await resolver.check('sk-named-0123')).toEqual({
      principal: { tenant: 'team-b', keyId: 'cfg_batch', limits: { requestsPerMinute: 5 } },
    });
    const before = keys.lookups;
    expect(await resolver.check('sk-plain-0123')).toMatchObject({ principal: { tenant: 'team-a' } });
    expect(keys.lookups).toBe(before);
  });

  it('looks stored keys up once per cache period, and tells revoked keys from unknown ones', async () => {
    const { key, record } = generateKey('team-c', { requestsPerMinute: 7 });
    await keys.create(record);
    const resolver = new ApiKeyResolver(config(), keys);
    await resolver.start();
    expect(resolver.open).toBe(false);
    const before = keys.lookups;
    const [a, b] = await Promise.all([resolver.check(key), resolver.check(key)]);
    expect(a).toEqual({
      principal: { tenant: 'team-c', keyId: record.id, limits: { requestsPerMinute: 7 } },
    });
    expect(b).toEqual(a);
    expect(await resolver.check(key)).toEqual(a);
    expect(keys.lookups - before).toBe(1);
    expect(await resolver.check('sk-ferry-never-issued')).toEqual({ failure: 'invalid' });

    await keys.revoke(record.id, 1);
    // Still cached: a revocation takes effect when the cache period ends.
    expect(await resolver.check(key)).toEqual(a);
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000 });
    try {
      expect(await resolver.check(key)).toEqual({ failure: 'revoked' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('bridges a database outage with the last answer, and fails closed without one', async () => {
    const { key, record } = generateKey('team-d');
    await keys.create(record);
    const resolver = new ApiKeyResolver(config(), keys);
    await resolver.start();
    const known = await resolver.check(key);
    keys.down = true;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 61_000 });
    try {
      expect(await resolver.check(key)).toEqual(known);
      const error = await resolver.check(generateKey('team-d').key).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApiError);
      expect(error).toMatchObject({ status: 503, code: 'store_unavailable' });
    } finally {
      vi.useRealTimers();
      keys.down = false;
    }
  });
});

describe('an open gateway', () => {
  it('stays open until a key is stored, and revoking every key does not open it again', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ferry-keys-open-'));
    const store = await openStore({ database: join(directory, 'ferry.db') });
    try {
      const keys = new SqlApiKeyStore(store.db);
      const resolver = new ApiKeyResolver(config({ keyCacheSeconds: 0.05 }), keys);
      await resolver.start();
      expect(resolver.open).toBe(true);
      const { record } = generateKey('team-a');
      await keys.create(record);
      await vi.waitFor(() => expect(resolver.open).toBe(false), { timeout: 5_000, interval: 20 });
      await keys.revoke(record.id, 1);
      const again = new ApiKeyResolver(config(), keys);
      await again.start();
      expect(again.open).toBe(false);
      resolver.stop();
    } finally {
      await store.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('without a key store is open exactly when no key is configured', async () => {
    const open = new ApiKeyResolver(config(), undefined);
    await open.start();
    expect(open.open).toBe(true);
    const closed = new ApiKeyResolver(config({ apiKeys: { 'sk-only-0123': 'a' } }), undefined);
    expect(closed.open).toBe(false);
    expect(await closed.check('sk-other-0123')).toEqual({ failure: 'invalid' });
  });
});
