import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/access/api-keys.js';
import { ApiError } from '../../src/api/errors.js';
import { validate } from '../../src/config/load.js';
import type { FerryConfigInput } from '../../src/config/schema.js';
import { RateLimiter, UNLIMITED } from '../../src/limits/rate-limiter.js';
import {
  estimate,
  formatDuration,
  msUntilAtMost,
  WINDOW_MS,
  windowState,
} from '../../src/limits/sliding-window.js';
import { Metrics } from '../../src/observability/metrics.js';

describe('the sliding-window counter', () => {
  it('weights the previous window by how much of it the last minute still covers', () => {
    expect(estimate({ previous: 10, current: 4 }, 0)).toBe(14);
    expect(estimate({ previous: 10, current: 4 }, 15_000)).toBe(11.5);
    expect(estimate({ previous: 10, current: 4 }, 60_000)).toBe(4);
  });

  it('computes when the estimate falls to a target, in this window or the next', () => {
    expect(msUntilAtMost({ previous: 10, current: 4 }, 15_000, 20)).toBe(0);
    // 11.5 → 10.5 needs 1 of the previous window's 10 to fade: 6 s.
    expect(msUntilAtMost({ previous: 10, current: 4 }, 15_000, 10.5)).toBeCloseTo(6_000);
    // 11.5 → 2: the previous window fades by the end (45 s), then half of `current` (30 s).
    expect(msUntilAtMost({ previous: 10, current: 4 }, 15_000, 2)).toBeCloseTo(75_000);
  });

  it('reports remaining requests and when the next one frees up', () => {
    expect(windowState({ previous: 0, current: 0 }, 0, 5)).toEqual({ remaining: 5, resetMs: 0 });
    expect(windowState({ previous: 0, current: 5 }, 30_000, 5)).toEqual({ remaining: 0, resetMs: 42_000 });
    expect(windowState({ previous: 6, current: 0 }, 30_000, 5)).toEqual({ remaining: 2, resetMs: 10_000 });
  });

  it("formats durations the way OpenAI's headers do", () => {
    expect(formatDuration(0)).toBe('0ms');
    expect(formatDuration(120.2)).toBe('121ms');
    expect(formatDuration(1_500)).toBe('1.5s');
    expect(formatDuration(59_999)).toBe('59.999s');
    expect(formatDuration(360_000)).toBe('6m0s');
    expect(formatDuration(61_250)).toBe('1m1.25s');
  });
});

const key = (tenant: string, keyId: string, limits: Principal['limits'] = {}): Principal => ({
  tenant,
  keyId,
  limits,
});

function limiter(rateLimits: FerryConfigInput['rateLimits'], start = 10 * WINDOW_MS) {
  const clock = { now: start };
  const metrics = new Metrics({ processMetrics: false });
  const instance = new RateLimiter(validate({ rateLimits }).rateLimits, { metrics, now: () => clock.now });
  return { limiter: instance, clock, metrics };
}

function rejection(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected a 429');
}

describe('the rate limiter', () => {
  it('admits everything, with nothing to release, when no limit applies', () => {
    const { limiter: rl } = limiter({});
    expect(rl.admit(key('a', 'k1'))).toBe(UNLIMITED);
    expect(rl.admit({ tenant: 'default', keyId: null, limits: {} })).toBe(UNLIMITED);
  });

  it('limits requests per minute per key, with headers, a 429 and recovery as the window slides', () => {
    const { limiter: rl, clock } = limiter({ perKey: { requestsPerMinute: 3 } });
    const k = key('a', 'k1');
    // One request at a window's start fully fades from the estimate only by the next window's end.
    expect(rl.admit(k).headers).toEqual({ limit: 3, remaining: 2, resetMs: 120_000 });
    expect(rl.admit(k).headers).toMatchObject({ remaining: 1 });
    expect(rl.admit(k).headers).toMatchObject({ remaining: 0 });
    const error = rejection(() => rl.admit(k));
    expect(error).toMatchObject({ status: 429, type: 'requests', code: 'rate_limit_exceeded' });
    expect(error.message).toBe(
      "Rate limit reached for API key k1 (tenant 'a') on requests per minute: limit 3. Please try again in 1m20s.",
    );
    // The window ends in 60 s; then a third of its 3 requests must fade: 20 s more.
    expect(error.headers).toMatchObject({
      'retry-after': '80',
      'retry-after-ms': '80000',
      'x-ratelimit-limit-requests': '3',
      'x-ratelimit-remaining-requests': '0',
    });
    // Another key of the same tenant has its own budget.
    expect(rl.admit(key('a', 'k2')).headers).toMatchObject({ remaining: 2 });
    // 20 s into the next window, a third of the previous minute has faded: one request fits.
    clock.now += WINDOW_MS + 20_000;
    expect(rl.admit(k).headers).toMatchObject({ remaining: 0 });
    expect(rejection(() => rl.admit(k)).status).toBe(429);
    clock.now += WINDOW_MS;
    expect(rl.admit(k).headers).toMatchObject({ remaining: 1 });
  });

  it('limits concurrent requests and frees a slot when a request ends (once)', () => {
    const { limiter: rl, metrics } = limiter({ perKey: { concurrentRequests: 2 } });
    const k = key('a', 'k1');
    const first = rl.admit(k);
    const second = rl.admit(k);
    expect(first.headers).toBeUndefined();
    const error = rejection(() => rl.admit(k));
    expect(error.message).toContain('concurrent requests: limit 2');
    expect(error.headers['retry-after']).toBe('1');
    first.release();
    first.release();
    const third = rl.admit(k);
    expect(rejection(() => rl.admit(k)).status).toBe(429);
    second.release();
    third.release();
    return metrics.registry
      .getSingleMetric('ferry_rate_limit_rejections_total')!
      .get()
      .then((metric) =>
        expect(metric.values).toEqual([
          { labels: { scope: 'key', limit: 'concurrent_requests', tenant: 'a' }, value: 2 },
        ]),
      );
  });

  it('applies tenant limits across all of a tenant’s keys, with per-tenant and per-key overrides', () => {
    const { limiter: rl } = limiter({
      perKey: { requestsPerMinute: 100 },
      perTenant: { requestsPerMinute: 3, concurrentRequests: 10 },
      tenants: { big: { requestsPerMinute: 5 } },
    });
    rl.admit(key('small', 'k1'));
    rl.admit(key('small', 'k2'));
    // The tightest limit is the one the headers describe.
    expect(rl.admit(key('small', 'k3')).headers).toMatchObject({ limit: 3, remaining: 0 });
    const error = rejection(() => rl.admit(key('small', 'k4')));
    expect(error.message).toContain("tenant 'small' on requests per minute: limit 3");
    for (let i = 0; i < 5; i++) rl.admit(key('big', `b${i}`));
    expect(rejection(() => rl.admit(key('big', 'b9'))).status).toBe(429);
    // A key's own limit overrides perKey.
    const { limiter: own } = limiter({ perKey: { requestsPerMinute: 100 } });
    own.admit(key('t', 'strict', { requestsPerMinute: 1 }));
    expect(rejection(() => own.admit(key('t', 'strict', { requestsPerMinute: 1 }))).status).toBe(429);
  });

  it('counts nothing when one of two limits refuses', () => {
    const { limiter: rl } = limiter({
      perKey: { requestsPerMinute: 10 },
      perTenant: { concurrentRequests: 1 },
    });
    const held = rl.admit(key('a', 'k1'));
    expect(held.headers).toMatchObject({ remaining: 9 });
    for (let i = 0; i < 3; i++) expect(rejection(() => rl.admit(key('a', 'k1'))).status).toBe(429);
    held.release();
    expect(rl.admit(key('a', 'k1')).headers).toMatchObject({ remaining: 8 });
  });

  it('limits an open gateway per tenant only (it has no keys)', () => {
    const { limiter: rl } = limiter({
      perKey: { requestsPerMinute: 1 },
      perTenant: { requestsPerMinute: 2 },
    });
    const open: Principal = { tenant: 'default', keyId: null, limits: {} };
    rl.admit(open);
    expect(rl.admit(open).headers).toMatchObject({ limit: 2, remaining: 0 });
    expect(rejection(() => rl.admit(open)).message).toContain("tenant 'default'");
  });
});
