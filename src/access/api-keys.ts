import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.js';
import type { FerryConfig, RequestLimits } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { ApiKeyStore, NewApiKey, StoredApiKey } from '../store/api-keys.js';

/** Who a request acts for: the tenant owning what it stores and reads, and the key it used. */
export interface Principal {
  tenant: string;
  /** A non-secret id of the key (`key_…` stored, `cfg_…` configured); null on an open gateway. */
  keyId: string | null;
  /** The key's own limits (they override `rateLimits.perKey`). */
  limits: RequestLimits;
}

export type KeyCheck = { principal: Principal } | { failure: 'invalid' | 'revoked' };

/** The principal of every request on a gateway without keys. */
export const OPEN_PRINCIPAL: Principal = Object.freeze({
  tenant: 'default',
  keyId: null,
  limits: Object.freeze({}),
});

const INVALID: KeyCheck = Object.freeze({ failure: 'invalid' as const });
const REVOKED: KeyCheck = Object.freeze({ failure: 'revoked' as const });
const MAX_CACHED_KEYS = 10_000;
const KEY_PREFIX = 'sk-ferry-';

/**
 * Keys are compared by SHA-256. A fast unsalted hash is enough: generated keys carry 192
 * random bits, so the hash cannot be reversed by guessing, and it lets a lookup be one
 * indexed query instead of a slow KDF per request.
 */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A new random key, with what the store keeps of it. */
export function generateKey(
  tenant: string,
  options: { name?: string; requestsPerMinute?: number; concurrentRequests?: number } = {},
  now = Math.floor(Date.now() / 1000),
): { key: string; record: NewApiKey } {
  const key = `${KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
  return {
    key,
    record: {
      id: `key_${randomBytes(6).toString('hex')}`,
      hash: hashKey(key),
      hint: `${key.slice(0, KEY_PREFIX.length + 4)}…${key.slice(-4)}`,
      tenant,
      name: options.name ?? null,
      requestsPerMinute: options.requestsPerMinute ?? null,
      concurrentRequests: options.concurrentRequests ?? null,
      createdAt: now,
    },
  };
}

/**
 * Turns a presented API key into a Principal: keys from the config file are checked in memory;
 * stored keys are looked up by hash and cached for `keyCacheSeconds` (so a revocation takes
 * effect within that time, and a database hiccup is bridged by the last answer). The gateway is
 * open only while no key was ever configured or stored.
 */
export class ApiKeyResolver {
  private readonly configured = new Map<string, Principal>();
  private readonly cache = new Map<string, { check: KeyCheck; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<KeyCheck>>();
  private readonly cacheMs: number;
  private isOpen: boolean;
  private poll: NodeJS.Timeout | undefined;

  constructor(
    config: FerryConfig,
    private readonly store: ApiKeyStore | undefined,
    private readonly logger?: Logger,
  ) {
    this.cacheMs = config.keyCacheSeconds * 1000;
    Object.entries(config.apiKeys).forEach(([key, entry], index) => {
      const settings = typeof entry === 'string' ? { tenant: entry } : entry;
      this.configured.set(hashKey(key), {
        tenant: settings.tenant,
        keyId: `cfg_${settings.name ?? index + 1}`,
        limits: limitsOf(settings),
      });
    });
    this.isOpen = this.configured.size === 0;
  }

  /** Whether requests need no key (tenant `default`). */
  get open(): boolean {
    return this.isOpen;
  }

  /** Learns whether keys are stored; while none are, keeps asking (a `ferry keys create` closes the gateway). */
  async start(): Promise<void> {
    if (!this.isOpen || !this.store) return;
    await this.checkForStoredKeys();
    if (!this.isOpen) return;
    this.poll = setInterval(() => void this.checkForStoredKeys(), this.cacheMs);
    this.poll.unref();
  }

  private async checkForStoredKeys(): Promise<void> {
    try {
      if (!(await this.store!.hasAny())) return;
    } catch (error) {
      this.logger?.warn({ err: error }, 'could not check the database for API keys');
      return;
    }
    this.isOpen = false;
    if (this.poll)
      this.logger?.warn('API keys now exist in the database: from now on every request needs a key.');
    this.stop();
  }

  async check(key: string): Promise<KeyCheck> {
    const hash = hashKey(key);
    const configured = this.configured.get(hash);
    if (configured) return { principal: configured };
    if (!this.store) return INVALID;
    const cached = this.cache.get(hash);
    if (cached && cached.expiresAt > Date.now()) return cached.check;
    let lookup = this.pending.get(hash);
    if (!lookup) {
      lookup = this.lookUp(hash, cached?.check).finally(() => this.pending.delete(hash));
      this.pending.set(hash, lookup);
    }
    return lookup;
  }

  private async lookUp(hash: string, stale: KeyCheck | undefined): Promise<KeyCheck> {
    let stored: StoredApiKey | undefined;
    try {
      stored = await this.store!.findByHash(hash);
    } catch (error) {
      if (stale) return stale;
      this.logger?.error({ err: error }, 'could not look up an API key');
      throw new ApiError(503, 'API keys cannot be checked right now: the database is unavailable.', {
        type: 'server_error',
        code: 'store_unavailable',
      });
    }
    const check: KeyCheck = !stored
      ? INVALID
      : stored.revokedAt !== null
        ? REVOKED
        : {
            principal: {
              tenant: stored.tenant,
              keyId: stored.id,
              limits: limitsOf({
                requestsPerMinute: stored.requestsPerMinute ?? undefined,
                concurrentRequests: stored.concurrentRequests ?? undefined,
              }),
            },
          };
    // Oldest entry out first (Maps iterate in insertion order): a flood of wrong keys cannot grow it.
    if (this.cache.size >= MAX_CACHED_KEYS) this.cache.delete(this.cache.keys().next().value!);
    this.cache.delete(hash);
    this.cache.set(hash, { check, expiresAt: Date.now() + this.cacheMs });
    return check;
  }

  stop(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
  }
}

function limitsOf(settings: RequestLimits): RequestLimits {
  const limits: RequestLimits = {};
  if (settings.requestsPerMinute !== undefined) limits.requestsPerMinute = settings.requestsPerMinute;
  if (settings.concurrentRequests !== undefined) limits.concurrentRequests = settings.concurrentRequests;
  return limits;
}
