import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newId } from '../../src/api/ids.js';
import { CreateResponseRequest } from '../../src/api/create-response.js';
import { parseOrThrow } from '../../src/api/validation.js';
import { initialResponse } from '../../src/engine/engine.js';
import { openStore } from '../../src/store/open.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { createTestSchema } from '../support/postgres.js';

/**
 * When the store's chain cache answers a follow-up and when it goes to the database, counted
 * with the store's query hook: SQLite (the one writer) answers from memory; PostgreSQL first
 * reads, in one query, whether any replica deleted responses since the chain was read.
 */
const dialects = {
  sqlite: { cachedLoadQueries: 0 },
  // The count of deletions.
  postgres: { cachedLoadQueries: 1 },
};

describe.each(Object.entries(dialects))('chain cache on %s', (dialect, { cachedLoadQueries }) => {
  let database: string;
  let cleanup: () => Promise<void>;
  let store: SqlStore;
  let queries: string[];
  const opened: SqlStore[] = [];

  const open = async () => {
    const next = await openStore({ database, onQuery: (sql) => queries.push(sql) });
    opened.push(next);
    return next;
  };

  beforeEach(async () => {
    if (dialect === 'sqlite') {
      const directory = mkdtempSync(join(tmpdir(), 'ferry-chain-'));
      database = join(directory, 'ferry.db');
      cleanup = async () => rmSync(directory, { recursive: true, force: true });
    } else {
      const schema = await createTestSchema();
      database = schema.url;
      cleanup = schema.drop;
    }
    queries = [];
    store = await open();
  });
  afterEach(async () => {
    for (const each of opened.splice(0)) await each.close();
    await cleanup();
  });

  async function storeTurn(on: SqlStore, ancestors: string[], expiresAt = 2e9): Promise<string> {
    const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'x' });
    const response = initialResponse(newId('resp'), request, 'm');
    response.previous_response_id = ancestors.at(-1) ?? null;
    response.status = 'completed';
    const itemId = newId('msg');
    const input = { id: itemId, body: { id: itemId, type: 'message', role: 'user', content: 'hi' } };
    await on.createResponse({ tenant: 't', response, ancestors, inputItems: [input], expiresAt });
    return response.id;
  }

  async function queriesOfLoading(on: SqlStore, id: string): Promise<number> {
    queries = [];
    expect(await on.loadChain('t', id)).toBeDefined();
    return queries.length;
  }

  it('reads a first turn from the database, then serves every later turn of the conversation from memory', async () => {
    const first = await storeTurn(store, []);
    expect(await queriesOfLoading(store, first)).toBeGreaterThan(cachedLoadQueries);
    const second = await storeTurn(store, [first]);
    expect(await queriesOfLoading(store, second)).toBe(cachedLoadQueries);
    const third = await storeTurn(store, [first, second]);
    expect(await queriesOfLoading(store, third)).toBe(cachedLoadQueries);
    expect((await store.loadChain('t', third))!.items).toHaveLength(3);
  });

  it('goes back to the database after a deletion', async () => {
    const first = await storeTurn(store, []);
    await store.loadChain('t', first);
    const second = await storeTurn(store, [first]);
    expect(await store.deleteResponse('t', first)).toBe(true);
    expect(await queriesOfLoading(store, second)).toBeGreaterThan(cachedLoadQueries);
    expect((await store.loadChain('t', second))!.items).toHaveLength(1);
  });

  it.runIf(dialect === 'postgres')(
    'does not serve a chain whose response another replica deleted',
    async () => {
      const other = await open();
      const first = await storeTurn(store, []);
      await store.loadChain('t', first);
      const second = await storeTurn(store, [first]);
      await store.loadChain('t', second);
      const third = await storeTurn(store, [first, second]);
      expect(await queriesOfLoading(store, third)).toBe(cachedLoadQueries);

      expect(await other.deleteResponse('t', second)).toBe(true);
      expect(await queriesOfLoading(store, third)).toBeGreaterThan(cachedLoadQueries);
      const afterDeletion = (await store.loadChain('t', third))!;
      expect(afterDeletion.items).toHaveLength(2);
      expect(afterDeletion.path).toEqual([first, third]);
      // Read again under the new count of deletions, the chain is served from memory again.
      expect(await queriesOfLoading(store, third)).toBe(cachedLoadQueries);

      // A purge on another replica is a deletion too.
      await storeTurn(other, [], 1);
      expect(await other.purgeExpired(2, 100)).toMatchObject({ responses: 1 });
      expect(await queriesOfLoading(store, third)).toBeGreaterThan(cachedLoadQueries);

      // A count removed by hand starts again rather than hiding deletions.
      await store.db.deleteFrom('response_deletions').execute();
      expect(await queriesOfLoading(store, third)).toBeGreaterThan(cachedLoadQueries);
      expect(await queriesOfLoading(store, third)).toBe(cachedLoadQueries);
      const fourth = await storeTurn(store, afterDeletion.path);
      expect(await queriesOfLoading(store, fourth)).toBe(cachedLoadQueries);
      expect(await other.deleteResponse('t', first)).toBe(true);
      expect((await store.loadChain('t', fourth))!.items).toHaveLength(2);

      // Nor one whose head another replica deleted.
      expect(await other.deleteResponse('t', third)).toBe(true);
      expect(await store.loadChain('t', third)).toBeUndefined();
    },
  );
});
