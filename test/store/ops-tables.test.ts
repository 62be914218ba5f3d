import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/access/api-keys.js';
import { WINDOW_MS } from '../../src/limits/sliding-window.js';
import { SqlApiKeyStore } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/open.js';
import { SqlRateLimitUsage } from '../../src/store/rate-limit-usage.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { createTestSchema } from '../support/postgres.js';

interface Target {
  store: SqlStore;
  cleanup(): Promise<void>;
}

const targets: Record<string, () => Promise<Target>> = {
  sqlite: async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ferry-ops-store-'));
    const store = await openStore({ database: join(directory, 'ferry.db') });
    return {
      store,
      cleanup: async () => {
        await store.close();
        rmSync(directory, { recursive: true, force: true });
      },
    };
  },
  postgres: async () => {
    const schema = await createTestSchema();
    const store = await openStore({ database: schema.url });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await schema.drop();
      },
    };
  },
};

/** The tables behind `ferry keys` and shared rate limits, on both databases. */
describe.each(Object.keys(targets))('API keys and rate-limit usage tables: %s', (name) => {
  let target: Target;
  beforeAll(async () => {
    target = await targets[name]!();
  });
  afterAll(() => target?.cleanup());

  it('stores only a hash and a hint of a key, finds it by hash, lists and revokes it', async () => {
    const keys = new SqlApiKeyStore(target.store.db);
    expect(await keys.hasAny()).toBe(false);
    const first = generateKey('team-a', { name: 'ci', requestsPerMinute: 60 }, 1_000);
    const second = generateKey('team-b', {}, 2_000);
    await keys.create(first.record);
    await keys.create(second.record);
    expect(await keys.hasAny()).toBe(true);

    const rows = await target.store.db
      .withTables<{ api_keys: Record<string, unknown> }>()
      .selectFrom('api_keys')
      .selectAll()
      .execute();
    expect(JSON.stringify(rows)).not.toContain(first.key);
    expect(JSON.stringify(rows)).not.toContain(second.key);

    expect(await keys.findByHash(first.record.hash)).toMatchObject({
      id: first.record.id,
      tenant: 'team-a',
      name: 'ci',
      requestsPerMinute: 60,
      concurrentRequests: null,
      createdAt: 1_000,
      revokedAt: null,
    });
    expect((await keys.list()).map((key) => key.id)).toEqual([second.record.id, first.record.id]);
    expect((await keys.list('team-a')).map((key) => key.id)).toEqual([first.record.id]);

    expect(await keys.revoke(first.record.id, 5_000)).toMatchObject({ revokedAt: 5_000 });
    // Revoking again keeps the first revocation time.
    expect(await keys.revoke(first.record.id, 9_000)).toMatchObject({ revokedAt: 5_000 });
    expect(await keys.revoke('key_nothing', 9_000)).toBeUndefined();
    expect((await keys.findByHash(first.record.hash))?.revokedAt).toBe(5_000);
    expect(await keys.findByHash('0'.repeat(64))).toBeUndefined();
  });

  it('refuses two keys with the same hash', async () => {
    const keys = new SqlApiKeyStore(target.store.db);
    const { record } = generateKey('team-a');
    await keys.create(record);
    await expect(keys.create({ ...record, id: 'key_other' })).rejects.toThrow();
  });

  it('sums the other replicas’ usage, aligned to the current window, and prunes stale rows', async () => {
    const window = 100 * WINDOW_MS;
    const one = new SqlRateLimitUsage(target.store.db, 'replica-one');
    const two = new SqlRateLimitUsage(target.store.db, 'replica-two');
    const three = new SqlRateLimitUsage(target.store.db, 'replica-three');
    const now = window + 10_000;
    await one.publish([{ subject: 'key:a', windowStart: window, current: 3, previous: 5, inFlight: 2 }], now);
    // Replica two last wrote in the previous window: its current count is now "previous".
    await two.publish(
      [{ subject: 'key:a', windowStart: window - WINDOW_MS, current: 4, previous: 1, inFlight: 1 }],
      now - 50_000,
    );
    await two.publish(
      [{ subject: 'tenant:t', windowStart: window, current: 1, previous: 0, inFlight: 0 }],
      now,
    );
    // Publishing again replaces the row (absolute counts, not increments).
    await one.publish([{ subject: 'key:a', windowStart: window, current: 7, previous: 5, inFlight: 2 }], now);

    const seenByThree = await three.collect(window, now - 5_000);
    // Replica two's in-flight count is stale (not republished for 50 s): a crashed replica's.
    expect(seenByThree.get('key:a')).toEqual({ current: 7, previous: 5 + 4, inFlight: 2 });
    expect(seenByThree.get('tenant:t')).toEqual({ current: 1, previous: 0, inFlight: 0 });
    const seenByOne = await one.collect(window, now - 5_000);
    expect(seenByOne.get('key:a')).toEqual({ current: 0, previous: 4, inFlight: 0 });

    await three.prune(now - 20_000);
    const afterPrune = await three.collect(window, now - 5_000);
    expect(afterPrune.get('key:a')).toEqual({ current: 7, previous: 5, inFlight: 2 });
  });
});
