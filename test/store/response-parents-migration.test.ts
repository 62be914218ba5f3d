import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrationProvider } from '../../src/store/migrations.js';
import { openStore } from '../../src/store/open.js';
import type { Database } from '../../src/store/schema.js';
import { createTestSchema } from '../support/postgres.js';

/**
 * Before migration 0006 every response listed all its ancestors. A database written then must
 * serve the same chains afterwards, including chains with a link deleted before the upgrade.
 */

interface OldDatabase {
  /** Kysely on the database, migrated only up to 0005. */
  db: Kysely<Database>;
  /** The setting Ferry opens the same database with. */
  database: string;
  cleanup(): Promise<void>;
}

const databases: Record<'sqlite' | 'postgres', () => Promise<OldDatabase>> = {
  sqlite: async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ferry-migration-'));
    const database = join(directory, 'ferry.db');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(database) }) });
    await migrateToBeforeParents(db, 'sqlite');
    return { db, database, cleanup: async () => rmSync(directory, { recursive: true, force: true }) };
  },
  postgres: async () => {
    const schema = await createTestSchema();
    const db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: schema.url, max: 1 }) }),
    });
    await migrateToBeforeParents(db, 'postgres', schema.schema);
    return { db, database: schema.url, cleanup: () => schema.drop() };
  },
};

async function migrateToBeforeParents(db: Kysely<Database>, dialect: 'sqlite' | 'postgres', schema?: string) {
  const migrator = new Migrator({
    db,
    provider: migrationProvider(dialect),
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error } = await migrator.migrateTo('0005_response_deletions');
  if (error) throw error as Error;
}

function row(id: string, ancestors: string[]) {
  return {
    id,
    tenant: 't',
    created_at: 1,
    status: 'completed',
    previous_response_id: ancestors.at(-1) ?? null,
    ancestors: JSON.stringify(ancestors),
    body: JSON.stringify({ id, object: 'response', status: 'completed', output: [] }),
    expires_at: 2e9,
  };
}

function item(responseId: string, text: string) {
  const body = { id: `msg_${text}`, type: 'message', role: 'user', content: [{ type: 'input_text', text }] };
  return {
    response_id: responseId,
    tenant: 't',
    kind: 0,
    position: 0,
    item_id: body.id,
    body: JSON.stringify(body),
  };
}

describe.each(['sqlite', 'postgres'] as const)('migration 0006 on %s', (dialect) => {
  let old: OldDatabase | undefined;
  afterEach(async () => {
    await old?.cleanup();
    old = undefined;
  });

  it('links each response to the last of its listed ancestors still stored, and empties the lists', async () => {
    old = await databases[dialect]();
    // r0 ← r1 ← r2 ← r3, and r2 was deleted before the upgrade (its row and items gone).
    const rows = [row('r0', []), row('r1', ['r0']), row('r3', ['r0', 'r1', 'r2']), row('s0', [])];
    // (the column is not in Kysely's current table types)
    await old.db
      .insertInto('responses')
      .values(rows as never)
      .execute();
    await old.db
      .insertInto('items')
      .values([item('r0', 'q0'), item('r1', 'q1'), item('r3', 'q3'), item('s0', 'other')])
      .execute();
    await old.db.destroy();

    const store = await openStore({ database: old.database });
    try {
      const chain = (await store.loadChain('t', 'r3'))!;
      expect(chain.path).toEqual(['r0', 'r1', 'r3']);
      expect(chain.items.map((stored) => stored.id)).toEqual(['msg_q0', 'msg_q1', 'msg_q3']);
      const migrated = await store.db
        .selectFrom('responses')
        .select(['id', 'parent_id', 'ancestors'])
        .orderBy('id')
        .execute();
      expect(migrated).toEqual([
        { id: 'r0', parent_id: null, ancestors: '[]' },
        { id: 'r1', parent_id: 'r0', ancestors: '[]' },
        { id: 'r3', parent_id: 'r1', ancestors: '[]' },
        { id: 's0', parent_id: null, ancestors: '[]' },
      ]);
    } finally {
      await store.close();
    }
  });
});
