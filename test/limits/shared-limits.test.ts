import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/access/api-keys.js';
import { validate } from '../../src/config/load.js';
import { RateLimiter } from '../../src/limits/rate-limiter.js';
import { WINDOW_MS } from '../../src/limits/sliding-window.js';
import { Metrics } from '../../src/observability/metrics.js';
import { openStore } from '../../src/store/open.js';
import { SqlRateLimitUsage } from '../../src/store/rate-limit-usage.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import { createTestSchema, type TestSchema } from '../support/postgres.js';
import type { FakeBackend } from '../support/scenario.js';

const principal = (keyId: string): Principal => ({ tenant: 't', keyId, limits: {} });

/** Limits shared by replicas through the real PostgreSQL server. */
describe('rate limits across replicas (PostgreSQL)', () => {
  let schema: TestSchema;
  let store: SqlStore;
  const clock = { now: 50 * WINDOW_MS + 1_000 };
  const config = validate({
    rateLimits: { perKey: { requestsPerMinute: 3, concurrentRequests: 1 }, syncIntervalMs: 60_000 },
  }).rateLimits;
  const replica = (name: string, metrics = new Metrics({ processMetrics: false })) =>
    new RateLimiter(config, { shared: new SqlRateLimitUsage(store.db, name), now: () => clock.now, metrics });

  beforeAll(async () => {
    schema = await createTestSchema();
    store = await openStore({ database: schema.url });
  });
  afterAll(async () => {
    await store?.close();
    await schema?.drop();
  });

  it('adds the other replicas’ requests per minute to its own after an exchange', async () => {
    const a = replica('a');
    const b = replica('b');
    a.admit(principal('rpm')).release();
    a.admit(principal('rpm')).release();
    // Before exchanging, B only knows its own traffic.
    expect(b.admit(principal('other')).headers).toMatchObject({ remaining: 2 });
    await a.sync();
    await b.sync();
    const third = b.admit(principal('rpm'));
    expect(third.headers).toMatchObject({ limit: 3, remaining: 0 });
    third.release();
    expect(() => b.admit(principal('rpm'))).toThrow(/requests per minute: limit 3/);
    await b.sync();
    await a.sync();
    expect(() => a.admit(principal('rpm'))).toThrow(/requests per minute/);
  });

  it('shares concurrency, frees it when a request ends, and ignores a vanished replica’s slots', async () => {
    const a = replica('a2');
    const b = replica('b2');
    const held = a.admit(principal('conc'));
    await a.sync();
    await b.sync();
    expect(() => b.admit(principal('conc'))).toThrow(/concurrent requests: limit 1/);
    held.release();
    await a.sync();
    await b.sync();
    b.admit(principal('conc')).release();

    // A holds a slot and then stops (crash): its row is not refreshed any more.
    a.admit(principal('crash'));
    await a.sync();
    await b.sync();
    expect(() => b.admit(principal('crash'))).toThrow(/concurrent requests/);
    clock.now += 3 * config.syncIntervalMs + 2_001;
    await b.sync();
    b.admit(principal('crash')).release();
  });

  it('keeps limiting on its own when the database cannot be reached', async () => {
    const broken = await openStore({ database: schema.url });
    await broken.close();
    const metrics = new Metrics({ processMetrics: false });
    const lonely = new RateLimiter(config, {
      shared: new SqlRateLimitUsage(broken.db, 'lonely'),
      now: () => clock.now,
      metrics,
    });
    lonely.admit(principal('alone')).release();
    await lonely.sync();
    const errors = await metrics.registry.getSingleMetric('ferry_rate_limit_sync_errors_total')!.get();
    expect(errors.values[0]!.value).toBe(1);
    lonely.admit(principal('alone')).release();
    lonely.admit(principal('alone')).release();
    expect(() => lonely.admit(principal('alone'))).toThrow(/requests per minute/);
  });
});

describe('two gateways sharing one PostgreSQL database', () => {
  let schema: TestSchema;
  let fake: FakeBackend;
  let one: RunningFerry;
  let two: RunningFerry;
  const key = 'sk-shared-limit-0123';

  beforeAll(async () => {
    schema = await createTestSchema();
    fake = await startFakeOllama({ models: ['m'] });
    const config = {
      backends: [{ name: 'local', kind: 'ollama' as const, url: fake.url }],
      database: schema.url,
      apiKeys: { [key]: { tenant: 'team', requestsPerMinute: 2 } },
      rateLimits: { syncIntervalMs: 60_000 },
    };
    one = await startFerry(config);
    two = await startFerry(config);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await fake?.close();
    await schema?.drop();
  });

  it('enforces one key’s requests per minute across both', async () => {
    expect(one.app.context.rateLimiter.shared).toBe(true);
    const ask = (ferry: RunningFerry) =>
      ferry.fetch('/v1/models', { headers: { authorization: `Bearer ${key}` } });
    expect((await ask(one)).status).toBe(200);
    await one.app.context.rateLimiter.sync();
    await two.app.context.rateLimiter.sync();
    const second = await ask(two);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const refused = await ask(two);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});
