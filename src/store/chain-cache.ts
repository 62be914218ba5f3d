import { isFinished, type ResponseObject } from '../api/wire.js';
import { deepFreeze } from '../deep-freeze.js';
import type { ChainContext, NewResponse, StoredItem } from './types.js';

/** An item as stored: its id and its JSON text. */
export interface ItemText {
  id: string;
  text: string;
}

/**
 * What a response is stored as: its JSON and its items' JSON, serialised once, so that what is
 * written and what the chain cache keeps are the same text.
 */
export interface StoredTexts {
  response: string;
  inputs: ItemText[];
  /** Empty until the response is final: output items are written when it finishes. */
  outputs: ItemText[];
}

export function toStoredTexts(record: NewResponse): StoredTexts {
  const { response } = record;
  return {
    response: record.json ?? JSON.stringify(response),
    inputs: itemTexts(record.inputItems),
    outputs: isFinished(response.status) ? outputTexts(response) : [],
  };
}

export function outputTexts(response: ResponseObject): ItemText[] {
  return response.output.map((item) => ({ id: item.id, text: JSON.stringify(item) }));
}

function itemTexts(items: readonly StoredItem[]): ItemText[] {
  return items.map((item) => ({ id: item.id, text: JSON.stringify(item.body) }));
}

/** A chain as read from the database (or just written to it), not yet parsed. */
export interface RawChain {
  /** The head response as stored. */
  responseJson: string;
  path: readonly string[];
  items: readonly ItemText[];
  /** PostgreSQL: the count of deletions read before the chain was, for `get` to check. */
  deletions?: number;
}

/** A cached item: parsed (and frozen) the first time a chain containing it is handed out. */
interface CachedItem extends ItemText {
  parsed?: StoredItem;
}

interface CachedChain {
  /** Parsed anew for each caller, who may change its copy. */
  responseJson: string;
  path: readonly string[];
  items: readonly CachedItem[];
  /** The items parsed, made by the first `get` (or by `extend`) and shared by later ones. */
  parsedItems?: readonly StoredItem[];
  deletions: number | undefined;
  /** Characters of JSON this entry holds, for the budget. */
  size: number;
}

/**
 * The chain contexts of recently continued conversations, so that a follow-up to a long
 * conversation does not load and parse every item of it again: continuing response X extends
 * X's cached chain by the new turn's items. Without it a follow-up at depth 1,000 spent about
 * 10 ms reading and parsing 2,000 items (BENCHMARKS.md).
 *
 * Items are kept as the JSON text that was stored and parsed only when a chain is first
 * continued: most responses never are, and a string costs the garbage collector far less than
 * the objects it parses into. Parsed items are frozen and shared by every chain that holds them.
 *
 * A stored response that is final never changes, and only final responses can be continued, so
 * a cached chain goes stale only when one of its responses is deleted or purged. The owner
 * clears the cache whenever it deletes; where other processes may delete (PostgreSQL replicas),
 * a chain is used only while the database's count of deletions is what it was when the chain
 * was read. Bounded by the characters of JSON it holds, least recently used evicted first.
 */
export class ChainCache {
  private readonly chains = new Map<string, CachedChain>();
  private size = 0;
  /** Bumped before and after deletions, so a load that raced one is not remembered afterwards. */
  private clears = 0;

  constructor(private readonly maxChars = 64 * 1024 * 1024) {}

  /**
   * The cached chain of response `id`. Where other processes may delete (PostgreSQL), pass the
   * count of deletions read just now: a chain read under another count is dropped instead.
   */
  get(tenant: string, id: string, deletions?: number): ChainContext | undefined {
    const key = cacheKey(tenant, id);
    const cached = this.chains.get(key);
    if (!cached) return undefined;
    if (cached.deletions !== deletions) {
      this.chains.delete(key);
      this.size -= cached.size;
      return undefined;
    }
    // Most recently used last.
    this.chains.delete(key);
    this.chains.set(key, cached);
    return {
      response: JSON.parse(cached.responseJson) as ResponseObject,
      path: cached.path as string[],
      items: (cached.parsedItems ??= Object.freeze(cached.items.map(parsedItem))),
    };
  }

  /** A mark for `remember`: take it before reading from the database. */
  get generation(): number {
    return this.clears;
  }

  /** Keeps a chain loaded from the database, unless the cache was cleared since `generation`. */
  remember(tenant: string, chain: RawChain, generation: number): void {
    if (generation !== this.clears) return;
    let size = chain.responseJson.length;
    for (const item of chain.items) size += item.text.length;
    this.put(cacheKey(tenant, chain.path.at(-1)!), {
      responseJson: chain.responseJson,
      path: Object.freeze([...chain.path]),
      items: Object.freeze(chain.items),
      deletions: chain.deletions,
      size,
    });
  }

  /**
   * Keeps the chain of a final response just stored, if the chain it continues is cached.
   * `inputs` and `outputs` are the item texts as stored, so the cached items are exactly what
   * reading them back would give. A conversation's first response is not kept here: most are
   * never continued, and caching every one of them made each young-generation collection three
   * times longer (BENCHMARKS.md). Its first follow-up reads it from the database (one turn,
   * cheap) and `remember`s it; from then on each turn extends the cached chain.
   */
  extend(
    tenant: string,
    stored: { id: string; ancestors: readonly string[]; responseJson: string },
    inputs: readonly ItemText[],
    outputs: readonly ItemText[],
  ): void {
    const previousId = stored.ancestors.at(-1);
    if (previousId === undefined) return;
    const previous = this.chains.get(cacheKey(tenant, previousId));
    if (previous?.path.length !== stored.ancestors.length) return;
    const added: CachedItem[] = [...inputs, ...outputs];
    let size = previous.size - previous.responseJson.length + stored.responseJson.length;
    for (const item of added) size += item.text.length;
    // Copying the previous chain's arrays is far cheaper than building them again at the next turn.
    this.put(cacheKey(tenant, stored.id), {
      responseJson: stored.responseJson,
      path: Object.freeze([...previous.path, stored.id]),
      items: Object.freeze([...previous.items, ...added]),
      ...(previous.parsedItems && {
        parsedItems: Object.freeze([...previous.parsedItems, ...added.map(parsedItem)]),
      }),
      // The previous chain was checked against this count when the new turn loaded it.
      deletions: previous.deletions,
      size,
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
    if (chain.size > this.maxChars) return;
    const replaced = this.chains.get(key);
    if (replaced) {
      this.chains.delete(key);
      this.size -= replaced.size;
    }
    this.chains.set(key, chain);
    this.size += chain.size;
    for (const [oldest, evicted] of this.chains) {
      if (this.size <= this.maxChars) break;
      this.chains.delete(oldest);
      this.size -= evicted.size;
    }
  }
}

/** A chain read from the database, parsed for a caller (when the cache does not keep it). */
export function parseChain(chain: RawChain): ChainContext {
  return {
    response: JSON.parse(chain.responseJson) as ResponseObject,
    path: [...chain.path],
    items: chain.items.map(parseItem),
  };
}

export function parseItem(item: ItemText): StoredItem {
  return { id: item.id, body: JSON.parse(item.text) as Record<string, unknown> };
}

function parsedItem(item: CachedItem): StoredItem {
  return (item.parsed ??= deepFreeze(parseItem(item)));
}

function cacheKey(tenant: string, id: string): string {
  return `${tenant}\u0000${id}`;
}
