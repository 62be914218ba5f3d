import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * Versioned schema migrations, one list for both dialects (the column types used mean the same
 * in SQLite and PostgreSQL; where SQL must differ, a migration is made for the dialect it runs
 * on). Kysely's migrator records what ran and takes a lock, so two replicas starting together
 * migrate once. Never edit a migration that has shipped: add one.
 */
const migrations: Record<string, Migration> = {
  '0001_responses_and_items': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('responses')
        .addColumn('id', 'text', (column) => column.primaryKey())
        .addColumn('tenant', 'text', (column) => column.notNull())
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .addColumn('status', 'text', (column) => column.notNull())
        .addColumn('previous_response_id', 'text')
        .addColumn('ancestors', 'text', (column) => column.notNull())
        .addColumn('body', 'text', (column) => column.notNull())
        .addColumn('expires_at', 'bigint', (column) => column.notNull())
        .execute();
      await db.schema.createIndex('responses_expiry').on('responses').column('expires_at').execute();
      await db.schema
        .createTable('items')
        .addColumn('response_id', 'text', (column) => column.notNull())
        .addColumn('tenant', 'text', (column) => column.notNull())
        .addColumn('kind', 'integer', (column) => column.notNull())
        .addColumn('position', 'integer', (column) => column.notNull())
        .addColumn('item_id', 'text', (column) => column.notNull())
        .addColumn('body', 'text', (column) => column.notNull())
        .addPrimaryKeyConstraint('items_pk', ['response_id', 'kind', 'position'])
        .execute();
      await db.schema.createIndex('items_by_item_id').on('items').columns(['tenant', 'item_id']).execute();
    },
  },
  '0002_background_jobs_events_idempotency': {
    async up(db: Kysely<unknown>) {
      // One row per background response: who runs it, until when (the lease), and how often it started.
      await db.schema
        .createTable('jobs')
        .addColumn('response_id', 'text', (column) => column.primaryKey())
        .addColumn('tenant', 'text', (column) => column.notNull())
        .addColumn('backend', 'text', (column) => column.notNull())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('attempts', 'integer', (column) => column.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'bigint')
        .addColumn('cancel_requested', 'integer', (column) => column.notNull())
        .addColumn('enqueued_at', 'bigint', (column) => column.notNull())
        .addColumn('payload', 'text', (column) => column.notNull())
        .execute();
      await db.schema
        .createIndex('jobs_claim')
        .on('jobs')
        .columns(['state', 'backend', 'enqueued_at'])
        .execute();
      // The events of background streams, so they can be replayed and followed from any replica.
      await db.schema
        .createTable('response_events')
        .addColumn('response_id', 'text', (column) => column.notNull())
        .addColumn('sequence_number', 'integer', (column) => column.notNull())
        .addColumn('type', 'text', (column) => column.notNull())
        .addColumn('data', 'text', (column) => column.notNull())
        .addPrimaryKeyConstraint('response_events_pk', ['response_id', 'sequence_number'])
        .execute();
      await db.schema
        .createTable('idempotency_keys')
        .addColumn('tenant', 'text', (column) => column.notNull())
        .addColumn('key', 'text', (column) => column.notNull())
        .addColumn('fingerprint', 'text', (column) => column.notNull())
        .addColumn('state', 'text', (column) => column.notNull())
        .addColumn('locked_until', 'bigint', (column) => column.notNull())
        .addColumn('outcome', 'text')
        // The response whose event log replays the outcome (kept until the key expires).
        .addColumn('response_id', 'text')
        .addColumn('expires_at', 'bigint', (column) => column.notNull())
        .addPrimaryKeyConstraint('idempotency_keys_pk', ['tenant', 'key'])
        .execute();
      await db.schema.createIndex('idempotency_expiry').on('idempotency_keys').column('expires_at').execute();
    },
  },
  '0003_secrets': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('secrets')
        .addColumn('name', 'text', (column) => column.primaryKey())
        .addColumn('value', 'text', (column) => column.notNull())
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .execute();
    },
  },
  // API keys managed by `ferry keys` (only hashes are kept) and the per-replica counters that
  // make rate limits shared across replicas (src/limits/).
  '0004_api_keys_and_rate_limit_usage': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (column) => column.primaryKey())
        .addColumn('hash', 'text', (column) => column.notNull().unique())
        .addColumn('hint', 'text', (column) => column.notNull())
        .addColumn('tenant', 'text', (column) => column.notNull())
        .addColumn('name', 'text')
        .addColumn('requests_per_minute', 'integer')
        .addColumn('concurrent_requests', 'integer')
        .addColumn('created_at', 'bigint', (column) => column.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema
        .createTable('rate_limit_usage')
        .addColumn('replica', 'text', (column) => column.notNull())
        .addColumn('subject', 'text', (column) => column.notNull())
        .addColumn('window_start', 'bigint', (column) => column.notNull())
        .addColumn('current_count', 'integer', (column) => column.notNull())
        .addColumn('previous_count', 'integer', (column) => column.notNull())
        .addColumn('in_flight', 'integer', (column) => column.notNull())
        .addColumn('updated_at', 'bigint', (column) => column.notNull())
        .addPrimaryKeyConstraint('rate_limit_usage_pk', ['replica', 'subject'])
        .execute();
    },
  },
  // How many times responses were deleted (one row): a replica's chain cache is good while this
  // has not moved since the chain was read (sql-store.ts, `loadChain`).
  '0005_response_deletions': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('response_deletions')
        .addColumn('id', 'integer', (column) => column.primaryKey())
        .addColumn('total', 'bigint', (column) => column.notNull())
        .execute();
      await (db as Kysely<{ response_deletions: { id: number; total: number } }>)
        .insertInto('response_deletions')
        .values({ id: 1, total: 0 })
        .execute();
    },
  },
  // Running jobs by the end of their lease: a claim finds a lease that ran out without reading
  // every running job's row (`oldestClaimable` in sql-store.ts).
  '0007_job_leases': {
    async up(db: Kysely<unknown>) {
      await db.schema.createIndex('jobs_leases').on('jobs').columns(['state', 'lease_expires_at']).execute();
    },
  },
};

// Each response names its nearest stored ancestor (`parent_id`, moved up when that one is
// deleted) instead of listing every ancestor: a turn at depth 1,000 wrote 57 KB of ids, a
// conversation of n turns n²/2 of them. Existing rows take the last of their listed ancestors
// still stored, so their chains keep the same items, and their lists are emptied.
function responseParents(dialect: 'sqlite' | 'postgres'): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('responses').addColumn('parent_id', 'text').execute();
      await db.schema.createIndex('responses_by_parent').on('responses').column('parent_id').execute();
      const listed =
        dialect === 'sqlite'
          ? sql`select listed.value from json_each(responses.ancestors) as listed
                where exists (select 1 from responses as stored where stored.id = listed.value)
                order by listed.key desc limit 1`
          : sql`select listed.value
                from jsonb_array_elements_text(responses.ancestors::jsonb) with ordinality as listed(value, n)
                where exists (select 1 from responses as stored where stored.id = listed.value)
                order by listed.n desc limit 1`;
      await sql`update responses set parent_id = (${listed}) where ancestors <> '[]'`.execute(db);
      await sql`update responses set ancestors = '[]' where ancestors <> '[]'`.execute(db);
    },
  };
}

export function migrationProvider(dialect: 'sqlite' | 'postgres'): MigrationProvider {
  return {
    getMigrations: async () => ({ ...migrations, '0006_response_parents': responseParents(dialect) }),
  };
}
