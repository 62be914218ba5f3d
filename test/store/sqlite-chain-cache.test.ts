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

/**
 * When the SQLite store's chain cache answers a follow-up, and when it goes to the database:
 * counted with the store's query hook, so a change of policy shows up here.
 */
describe('SQLite chain cache', () => {
  let directory: string;
  let store: SqlStore;
  let queries: string[];

  beforeEach(async () => {
    directory = mkdtempSync(join(tmpdir(), 'ferry-chain-'));
    queries = [];
    store = await openStore({
      database: join(directory, 'ferry.db'),
      onQuery: (sql) => queries.push(sql),
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function storeTurn(ancestors: string[]): Promise<string> {
    const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'x' });
    const response = initialResponse(newId('resp'), request, 'm');
    response.previous_response_id = ancestors.at(-1) ?? null;
    response.status = 'completed';
    const itemId = newId('msg');
    const input = { id: itemId, body: { id: itemId, type: 'message', role: 'user', content: 'hi' } };
    await store.createResponse({ tenant: 't', response, ancestors, inputItems: [input], expiresAt: 2e9 });
    return response.id;
  }

  async function queriesOfLoading(id: string): Promise<number> {
    queries = [];
    expect(await store.loadChain('t', id)).toBeDefined();
    return queries.length;
  }

  it('reads a first turn from the database, then serves every later turn of the conversation from memory', async () => {
    const first = await storeTurn([]);
    expect(await queriesOfLoading(first)).toBeGreaterThan(0);
    const second = await storeTurn([first]);
    expect(await queriesOfLoading(second)).toBe(0);
    const third = await storeTurn([first, second]);
    expect(await queriesOfLoading(third)).toBe(0);
    expect((await store.loadChain('t', third))!.items).toHaveLength(3);
  });

  it('goes back to the database after a deletion', async () => {
    const first = await storeTurn([]);
    await store.loadChain('t', first);
    const second = await storeTurn([first]);
    expect(await store.deleteResponse('t', first)).toBe(true);
    expect(await queriesOfLoading(second)).toBeGreaterThan(0);
    expect((await store.loadChain('t', second))!.items).toHaveLength(1);
  });
});
