import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type Logger, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { startCheckpointer } from './sqlite-checkpointer.js';
import { SqlStore } from './sql-store.js';

export interface OpenStoreOptions {
  /** A SQLite file path (or `:memory:`), or a `postgres://` / `postgresql://` URL. */
  database: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
  /** Called after every query, failed or not, with its duration: the metrics hook. */
  onQuery?: QueryObserver;
}

export type QueryObserver = (sql: string, durationMillis: number, failed: boolean) => void;

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//.test(database);
}

/** Opens (and migrates) the store a database setting names. */
export async function openStore(options: OpenStoreOptions): Promise<SqlStore> {
  const store = isPostgresUrl(options.database)
    ? openPostgres(options.database, options.poolSize ?? 10, options.onQuery)
    : openSqlite(options.database, options.onQuery);
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

function openSqlite(path: string, onQuery: QueryObserver | undefined): SqlStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new SQLite(path);
  // WAL lets readers proceed during a write; NORMAL sync is durable across process crashes.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  // Checkpoints run in a worker thread (sqlite-checkpointer.ts); this threshold (about 80 MB)
  // only matters if that thread stops.
  database.pragma('wal_autocheckpoint = 20000');
  const checkpointer = path === ':memory:' ? undefined : startCheckpointer(path);
  return new SqlStore(
    new Kysely<Database>({
      dialect: new SqliteDialect({ database: withStatementCache(database) }),
      log: kyselyLog(onQuery),
    }),
    'sqlite',
    { database, checkpointer, onQuery },
  );
}

/**
 * Kysely prepares every statement anew; better-sqlite3 statements can be reused, and preparing
 * costs more than running a small query. Keep the most recent ones, keyed by their SQL text.
 */
function withStatementCache(database: SQLite.Database, size = 256): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(query: string) {
      let statement = cache.get(query);
      if (statement) {
        cache.delete(query);
      } else {
        statement = database.prepare(query);
        if (cache.size >= size) cache.delete(cache.keys().next().value!);
      }
      cache.set(query, statement);
      return statement;
    },
    close: () => database.close(),
  };
}

// PostgreSQL's bigint arrives as a string by default; Ferry's bigints are unix times.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

function openPostgres(url: string, poolSize: number, onQuery: QueryObserver | undefined): SqlStore {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // When PostgreSQL is down, a request fails fast (503) instead of waiting for a connection forever.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    query_timeout: 30_000,
  });
  // A connection that dies is dropped by the pool and new ones are made on demand. Its error
  // reaches the query using it; without these listeners a connection dying between two queries
  // of a transaction would be an unhandled 'error' event and bring the process down.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return new SqlStore(
    new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: kyselyLog(onQuery) }),
    'postgres',
  );
}

function kyselyLog(onQuery: QueryObserver | undefined): Logger | undefined {
  return onQuery && ((event) => onQuery(event.query.sql, event.queryDurationMillis, event.level === 'error'));
}
