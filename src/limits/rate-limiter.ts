import type { Principal } from '../access/api-keys.js';
import { ApiError } from '../api/errors.js';
import type { FerryConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, RateLimitKind, RateLimitScope } from '../observability/metrics.js';
import {
  estimate,
  formatDuration,
  msUntilAtMost,
  WINDOW_MS,
  windowState,
  type WindowCounts,
} from './sliding-window.js';

/** Usage of one subject (a key or a tenant) as one replica counts it. */
export interface Usage extends WindowCounts {
  inFlight: number;
}

export interface PublishedUsage extends Usage {
  subject: string;
  windowStart: number;
}

/**
 * Where replicas exchange their counts (PostgreSQL, see src/store/rate-limit-usage.ts). Each
 * replica publishes its own absolute counts and reads the sum of everyone else's.
 */
export interface SharedUsage {
  publish(rows: PublishedUsage[], now: number): Promise<void>;
  /** Other replicas' usage per subject, aligned to `windowStart`; in-flight counts older than `freshSince` are ignored. */
  collect(windowStart: number, freshSince: number): Promise<Map<string, Usage>>;
  /** Removes rows nobody updated since `before` (stopped replicas, idle subjects). */
  prune(before: number): Promise<void>;
}

export interface RateLimitHeaders {
  limit: number;
  remaining: number;
  resetMs: number;
}

/** An admitted request: its headers, and `release()` for when it ends (call once). */
export interface Admission {
  readonly headers: RateLimitHeaders | undefined;
  release(): void;
}

/** The admission of a request no limit applies to (nothing to release). */
export const UNLIMITED: Admission = Object.freeze({ headers: undefined, release() {} });

class Subject {
  windowStart = 0;
  readonly local: Usage = { previous: 0, current: 0, inFlight: 0 };
  remote: Usage = { previous: 0, current: 0, inFlight: 0 };
  lastUsed = 0;
  /** Local counts changed since they were last published. */
  dirty = false;

  constructor(
    readonly id: string,
    readonly scope: RateLimitScope,
  ) {}

  /** Moves the counts on when a new minute window has begun. */
  roll(windowStart: number): void {
    if (windowStart <= this.windowStart) return;
    const adjacent = windowStart - this.windowStart === WINDOW_MS;
    for (const usage of [this.local, this.remote]) {
      usage.previous = adjacent ? usage.current : 0;
      usage.current = 0;
    }
    this.windowStart = windowStart;
  }

  total(): WindowCounts {
    return {
      previous: this.local.previous + this.remote.previous,
      current: this.local.current + this.remote.current,
    };
  }

  inFlight(): number {
    return this.local.inFlight + this.remote.inFlight;
  }
}

export interface RateLimiterOptions {
  metrics?: Metrics;
  logger?: Logger;
  /** Present when replicas share their counts (PostgreSQL). */
  shared?: SharedUsage;
  now?: () => number;
}

/**
 * Per-key and per-tenant limits: requests per minute (a sliding-window counter) and concurrent
 * requests. Every decision is taken in memory, so a request never waits for the database.
 * With `shared`, replicas publish their counts every `syncIntervalMs` and add everyone else's
 * to their own: limits hold across replicas, give or take what the others admitted since the
 * last exchange (docs/operations.md, "Limits", explains the trade-off).
 */
export class RateLimiter {
  private readonly keys = new Map<string, Subject>();
  private readonly tenants = new Map<string, Subject>();
  private readonly config: FerryConfig['rateLimits'];
  private readonly options: RateLimiterOptions;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private lastSyncAt = 0;
  private lastPruneAt = 0;
  private lastWarningAt = 0;

  constructor(config: FerryConfig['rateLimits'], options: RateLimiterOptions = {}) {
    this.config = config;
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get shared(): boolean {
    return this.options.shared !== undefined;
  }

  /** Counts a request against its key's and tenant's limits, or throws a 429. */
  admit(principal: Principal): Admission {
    const { perKey, perTenant } = this.config;
    const own = this.config.tenants[principal.tenant];
    const keyRpm =
      principal.keyId === null ? undefined : (principal.limits.requestsPerMinute ?? perKey.requestsPerMinute);
    const keyConcurrency =
      principal.keyId === null
        ? undefined
        : (principal.limits.concurrentRequests ?? perKey.concurrentRequests);
    const tenantRpm = own?.requestsPerMinute ?? perTenant.requestsPerMinute;
    const tenantConcurrency = own?.concurrentRequests ?? perTenant.concurrentRequests;
    const keyLimited = keyRpm !== undefined || keyConcurrency !== undefined;
    const tenantLimited = tenantRpm !== undefined || tenantConcurrency !== undefined;
    if (!keyLimited && !tenantLimited) return UNLIMITED;

    const now = this.now();
    const windowStart = now - (now % WINDOW_MS);
    const elapsed = now - windowStart;
    const key = keyLimited ? this.subject(this.keys, principal.keyId!, 'key') : undefined;
    const tenant = tenantLimited ? this.subject(this.tenants, principal.tenant, 'tenant') : undefined;
    if (key) this.check(key, keyRpm, keyConcurrency, windowStart, elapsed, principal);
    if (tenant) this.check(tenant, tenantRpm, tenantConcurrency, windowStart, elapsed, principal);

    let headers: RateLimitHeaders | undefined;
    for (const [subject, rpm] of [
      [key, keyRpm],
      [tenant, tenantRpm],
    ] as const) {
      if (!subject) continue;
      subject.local.current++;
      subject.local.inFlight++;
      subject.lastUsed = now;
      subject.dirty = true;
      if (rpm === undefined) continue;
      const state = windowState(subject.total(), elapsed, rpm);
      if (!headers || state.remaining < headers.remaining) headers = { limit: rpm, ...state };
    }
    return new Grant(key, tenant, headers);
  }

  private subject(map: Map<string, Subject>, name: string, scope: RateLimitScope): Subject {
    let subject = map.get(name);
    if (!subject) {
      subject = new Subject(`${scope}:${name}`, scope);
      map.set(name, subject);
    }
    return subject;
  }

  private check(
    subject: Subject,
    rpm: number | undefined,
    concurrency: number | undefined,
    windowStart: number,
    elapsed: number,
    principal: Principal,
  ): void {
    subject.roll(windowStart);
    if (rpm !== undefined) {
      const counts = subject.total();
      if (estimate(counts, elapsed) + 1 > rpm + 1e-9) {
        const retryMs = Math.max(1, msUntilAtMost(counts, elapsed, rpm - 1));
        throw this.reject(subject, 'requests_per_minute', rpm, retryMs, principal);
      }
    }
    if (concurrency !== undefined && subject.inFlight() + 1 > concurrency) {
      throw this.reject(subject, 'concurrent_requests', concurrency, 1000, principal);
    }
  }

  private reject(
    subject: Subject,
    kind: RateLimitKind,
    limit: number,
    retryMs: number,
    principal: Principal,
  ): ApiError {
    this.options.metrics?.rateLimited(subject.scope, kind, principal.tenant);
    const who =
      subject.scope === 'key'
        ? `API key ${principal.keyId} (tenant '${principal.tenant}')`
        : `tenant '${principal.tenant}'`;
    const what =
      kind === 'requests_per_minute'
        ? `requests per minute: limit ${limit}`
        : `concurrent requests: limit ${limit}`;
    const headers: Record<string, string> = {
      'retry-after': String(Math.max(1, Math.ceil(retryMs / 1000))),
      'retry-after-ms': String(Math.ceil(retryMs)),
    };
    if (kind === 'requests_per_minute') {
      headers['x-ratelimit-limit-requests'] = String(limit);
      headers['x-ratelimit-remaining-requests'] = '0';
      headers['x-ratelimit-reset-requests'] = formatDuration(retryMs);
    }
    return new ApiError(
      429,
      `Rate limit reached for ${who} on ${what}. Please try again in ${formatDuration(retryMs)}.`,
      { type: 'requests', code: 'rate_limit_exceeded', headers },
    );
  }

  /** Starts exchanging counts with other replicas (when shared) and forgetting idle subjects. */
  start(): void {
    if (this.timer) return;
    const interval = this.shared ? this.config.syncIntervalMs : WINDOW_MS;
    this.timer = setInterval(() => void this.sync(), interval);
    this.timer.unref();
  }

  /** One exchange with the other replicas; never throws (failures are counted and logged). */
  sync(): Promise<void> {
    this.syncing ??= this.exchange().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async exchange(): Promise<void> {
    const now = this.now();
    const windowStart = now - (now % WINDOW_MS);
    this.forgetIdle(now, windowStart);
    const shared = this.options.shared;
    if (!shared) return;
    // In-flight counts are republished every time: others ignore stale ones (a crashed replica's).
    const changed = this.all().filter((subject) => subject.dirty || subject.local.inFlight > 0);
    const rows = changed.map((subject) => ({ subject: subject.id, windowStart, ...subject.local }));
    try {
      if (rows.length) await shared.publish(rows, now);
      for (const subject of changed) subject.dirty = false;
      const others = await shared.collect(windowStart, now - this.staleAfterMs());
      for (const id of others.keys()) {
        const [scope, name] = splitSubject(id);
        if (scope) this.subject(scope === 'key' ? this.keys : this.tenants, name, scope);
      }
      for (const subject of this.all()) {
        subject.roll(windowStart);
        subject.remote = others.get(subject.id) ?? { previous: 0, current: 0, inFlight: 0 };
      }
      this.lastSyncAt = now;
      if (now - this.lastPruneAt >= WINDOW_MS) {
        this.lastPruneAt = now;
        await shared.prune(now - 3 * WINDOW_MS);
      }
    } catch (error) {
      this.options.metrics?.rateLimitSyncFailed();
      // Without news for long, others' in-flight counts are stale: fall back to this replica's.
      if (now - this.lastSyncAt > this.staleAfterMs())
        for (const subject of this.all()) subject.remote.inFlight = 0;
      if (now - this.lastWarningAt > WINDOW_MS) {
        this.lastWarningAt = now;
        this.options.logger?.warn(
          { err: error },
          'could not exchange rate-limit counts with the other replicas; limits are per replica until the database answers',
        );
      }
    }
  }

  private all(): Subject[] {
    return [...this.keys.values(), ...this.tenants.values()];
  }

  private staleAfterMs(): number {
    return 3 * this.config.syncIntervalMs + 2_000;
  }

  private forgetIdle(now: number, windowStart: number): void {
    for (const map of [this.keys, this.tenants]) {
      for (const [name, subject] of map) {
        subject.roll(windowStart);
        const idle =
          subject.local.inFlight === 0 &&
          subject.local.current === 0 &&
          subject.local.previous === 0 &&
          subject.remote.current === 0 &&
          subject.remote.previous === 0 &&
          subject.remote.inFlight === 0 &&
          now - subject.lastUsed > 2 * WINDOW_MS;
        if (idle) map.delete(name);
      }
    }
  }

  /** Stops the timer and publishes a last time, so others stop counting this replica's requests. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.shared) await this.sync();
  }
}

class Grant implements Admission {
  private released = false;

  constructor(
    private readonly key: Subject | undefined,
    private readonly tenant: Subject | undefined,
    readonly headers: RateLimitHeaders | undefined,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const subject of [this.key, this.tenant]) {
      if (!subject) continue;
      subject.local.inFlight--;
      subject.dirty = true;
    }
  }
}

function splitSubject(id: string): [RateLimitScope | undefined, string] {
  const colon = id.indexOf(':');
  const scope = id.slice(0, colon);
  return [scope === 'key' || scope === 'tenant' ? scope : undefined, id.slice(colon + 1)];
}
