import type { ResponseObject } from '../api/wire.js';
import type { ChainContext, StoredItem } from './types.js';

interface CachedChain {
  /** The head response as stored; parsed anew for each caller, who may change its copy. */
  responseJson: string;
  path: readonly string[];
  /** Frozen: callers share these arrays and items. */
  items: readonly StoredItem[];
}

/**
 * The chain contexts of recently created or continued responses, so that a follow-up to a long
 * conversation does not load and parse every item of it again: continuing response X extends
 * X's cached chain by the new turn's items. Without it a follow-up at depth 1,000 spent about
 * 10 ms reading and parsing 2,000 items (BENCHMARKS.md).
 *
 * Sound only where this process is the database's one writer (SQLite): a stored response that
 * is final never changes, and the owner clears the cache whenever a response is deleted or
 * purged. Bounded by the total length of the cached item lists, oldest use evicted first.
 */
export class ChainCache {
  private readonly chains = new Map<string, CachedChain>();
  private size = 0;
  /** Bumped before and after deletions, so a load that raced one is not remembered afterwards. */
  private clears = 0;

  constructor(private readonly maxItems = 200_000) {}

  get(tenant: string, id: string): ChainContext | undefined {
    const key = cacheKey(tenant, id);
    const cached = this.chains.get(key);
    if (!cached) return undefined;
    // Most recently used last.
    this.chains.delete(key);
    this.chains.set(key, cached);
    return {
      response: JSON.parse(cached.responseJson) as ResponseObject,
      path: cached.path as string[],
      items: cached.items as StoredItem[],
    };
  }

  /** A mark for `remember`: take it before reading from the database. */
  get generation(): number {
    return this.clears;
  }

  /** Keeps a chain loaded from the database, unless the cache was cleared since `generation`. */
  remember(tenant: string, chain: ChainContext, responseJson: string, generation: number): void {
    if (generation !== this.clears) return;
    this.put(cacheKey(tenant, chain.path.at(-1)!), {
      responseJson,
      path: Object.freeze([...chain.path]),
      items: Object.freeze(chain.items.map(deepFreeze)),
    });
  }

  /**
   * Keeps the chain of a final response just stored, if the chain it continues is cached (or it
   * starts a conversation). `inputs` and `outputs` are the item texts as stored, so the cached
   * items are exactly what reading them back would give.
   */
  extend(
    tenant: string,
    stored: { id: string; ancestors: readonly string[]; responseJson: string },
    inputs: readonly StoredItem[],
    outputs: readonly StoredItem[],
  ): void {
    const previousId = stored.ancestors.at(-1);
    const previous = previousId === undefined ? undefined : this.chains.get(cacheKey(tenant, previousId));
    if (previousId !== undefined && previous?.path.length !== stored.ancestors.length) return;
    this.put(cacheKey(tenant, stored.id), {
      responseJson: stored.responseJson,
      path: Object.freeze([...stored.ancestors, stored.id]),
      items: Object.freeze([
        ...(previous?.items ?? []),
        ...inputs.map(deepFreeze),
        ...outputs.map(deepFreeze),
      ]),
    });
  }

  /** Call before deleting responses: loads already reading will not be remembered. */
  invalidateLoads(): void {
    this.clears++;
  }

  /** Call after deleting responses. */
  clear(): void {
    this.chains.clear();
    this.size = 0;
    this.clears++;
  }

  private put(key: string, chain: CachedChain): void {
    if (chain.items.length > this.maxItems) return;
    const replaced = this.chains.get(key);
    if (replaced) {
      this.chains.delete(key);
      this.size -= replaced.items.length;
    }
    this.chains.set(key, chain);
    this.size += chain.items.length;
    for (const [oldest, evicted] of this.chains) {
      if (this.size <= this.maxItems) break;
      this.chains.delete(oldest);
      this.size -= evicted.items.length;
    }
  }
}

function cacheKey(tenant: string, id: string): string {
  return `${tenant}\u0000${id}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
