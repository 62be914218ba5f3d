import type SQLite from 'better-sqlite3';
import {
  CompiledQuery,
  Migrator,
  sql,
  type Kysely,
  type QueryCreator,
  type SelectQueryBuilder,
  type Transaction,
} from 'kysely';
import { isFinished, type ResponseObject } from '../api/wire.js';
import type { Database, ItemsTable, JobsTable, ResponseEventsTable } from './schema.js';
import { migrationProvider } from './migrations.js';
import { chainPathSql } from './chain-path.js';
import {
  ChainCache,
  parseChain,
  outputTexts,
  toStoredTexts,
  type ItemText,
  type RawChain,
  type StoredTexts,
} from './chain-cache.js';
import type { QueryObserver } from './open.js';
import type { Checkpointer } from './sqlite-checkpointer.js';
import { GroupCommit } from './group-commit.js';
import { SqliteHotPath, toStoredItem, type ClaimedRow, type FinishedRows } from './sqlite-hot-path.js';
import type {
  CancelOutcome,
  ChainContext,
  ClaimedJob,
  FinishOutcome,
  IdempotencyClaim,
  IdempotentOutcome,
  ItemPage,
  JobResult,
  LeaseState,
  ListOptions,
  NewJob,
  NewResponse,
  Store,
  StoredEvent,
  StoredItem,
} from './types.js';

/** PostgreSQL advisory locks are (class, object) pairs; Ferry's class spells "FERY". */
const LOCK_CLASS = 0x46455259;
const MIGRATION_LOCK = 1;
const PURGE_LOCK = 2;
/** Deletions take turns, so that two deleting neighbours in one chain cannot both relink it. */
const DELETION_LOCK = 3;

const INPUT = 0;
const OUTPUT = 1;

/**
 * A LIMIT written into the SQL instead of bound: SQLite spent about 10 µs more on each run of a
 * statement whose LIMIT was a parameter (a claim's probe took five times as long), a literal one
 * costs nothing. Distinct limits are distinct statements, so only small sets of values belong here.
 */
function literalLimit(count: number) {
  if (!Number.isSafeInteger(count) || count < 0) throw new Error(`not a row count: ${count}`);
  return sql.lit(count);
}

interface SqliteHandle {
  database: SQLite.Database;
  checkpointer?: Checkpointer | undefined;
  onQuery?: QueryObserver | undefined;
}

/**
 * The Store over Kysely, shared by SQLite and PostgreSQL: the SQL here is plain enough to mean
 * the same in both. Dialect-specific set-up (pragmas, pools, type parsers) lives in `open.ts`.
 */
export class SqlStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly db: Kysely<Database>;

  /** SQLite only: the database handle, its checkpointer, and (once migrated) the hot-path statements. */
  private readonly sqlite: SqliteHandle | undefined;
  private hotPath: SqliteHotPath | undefined;
  /** SQLite only: responses stored in the same turn of the event loop share a transaction. */
  private readonly responseWrites = new GroupCommit<NewResponse, StoredTexts>((records) =>
    this.exclusive((hotPath) => hotPath.createResponses(records)),
  );
  /**
   * Chains of recently continued conversations (chain-cache.ts). On SQLite this process is the
   * one writer and clears the cache whenever it deletes; on PostgreSQL another replica may
   * delete, so a cached chain is used only while the count of deletions is unchanged
   * (`deletionCount`, `countDeletion`).
   */
  private readonly chains = new ChainCache();

  constructor(db: Kysely<Database>, dialect: 'sqlite' | 'postgres', sqlite?: SqliteHandle) {
    this.db = db;
    this.dialect = dialect;
    this.sqlite = sqlite;
  }

  /**
   * Runs a hot-path call outside any transaction Kysely has open on the (single) SQLite
   * connection. The call is synchronous, so nothing can interleave with it: when no transaction
   * is open it runs at once; otherwise it waits for Kysely's connection lock, as a query would.
   */
  private exclusive<T>(run: (hotPath: SqliteHotPath) => T): Promise<T> {
    const hotPath = this.hotPath!;
    if (!this.sqlite!.database.inTransaction) {
      try {
        return Promise.resolve(run(hotPath));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    return this.db.connection().execute(async () => run(hotPath));
  }

  /**
   * Brings the schema up to date. On PostgreSQL, replicas starting together take turns under an
   * advisory lock (Kysely's own lock table cannot guard the creation of that table).
   */
  async migrate(): Promise<void> {
    if (this.dialect === 'sqlite') {
      await this.migrateWith(this.db);
      // Statements can only be prepared once their tables exist.
      if (this.sqlite) this.hotPath = new SqliteHotPath(this.sqlite.database, this.sqlite.onQuery);
      return;
    }
    await this.db.connection().execute(async (connection) => {
      await sql`select pg_advisory_lock(${LOCK_CLASS}, ${MIGRATION_LOCK})`.execute(connection);
      try {
        await this.migrateWith(connection);
      } finally {
        await sql`select pg_advisory_unlock(${LOCK_CLASS}, ${MIGRATION_LOCK})`.execute(connection);
      }
    });
  }

  private async migrateWith(db: Kysely<Database>): Promise<void> {
    // Unless told a schema, Kysely takes its bookkeeping tables found in *any* schema for its own
    // (another application's, or a parallel test run's) and then fails to use them.
    const migrationTableSchema = this.dialect === 'postgres' ? await this.currentSchema() : undefined;
    const migrator = new Migrator({
      db,
      provider: migrationProvider(this.dialect),
      ...(migrationTableSchema ? { migrationTableSchema } : {}),
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((result) => result.status === 'Error')?.migrationName;
      throw new Error(
        `Database migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`,
      );
    }
  }

  private async currentSchema(): Promise<string> {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(this.db);
    return rows[0]!.schema;
  }

  async createResponse(record: NewResponse): Promise<void> {
    let texts: StoredTexts;
    if (this.hotPath) texts = await this.responseWrites.add(record);
    else {
      texts = toStoredTexts(record);
      if (texts.inputs.length + texts.outputs.length <= ROWS_AT_ONCE)
        await insertResponseAtOnce(this.db, record, texts);
      else await this.db.transaction().execute((trx) => insertResponseRows(trx, record, texts));
    }
    if (isFinished(record.response.status))
      this.chains.extend(
        record.tenant,
        { id: record.response.id, ancestors: record.ancestors, responseJson: texts.response },
        texts.inputs,
        texts.outputs,
      );
  }

  async getResponse(tenant: string, id: string): Promise<ResponseObject | undefined> {
    if (this.hotPath) return this.exclusive((hotPath) => hotPath.getResponse(tenant, id));
    const row = await this.db
      .selectFrom('responses')
      .select('body')
      .where('id', '=', id)
      .where('tenant', '=', tenant)
      .executeTakeFirst();
    return row ? (JSON.parse(row.body) as ResponseObject) : undefined;
  }

  async deleteResponse(tenant: string, id: string): Promise<boolean> {
    this.chains.invalidateLoads();
    const deleted = await this.db.transaction().execute(async (trx) => {
      await this.deletionTurn(trx);
      const removed = await trx
        .deleteFrom('responses')
        .where('id', '=', id)
        .where('tenant', '=', tenant)
        .returning(['id', 'parent_id'])
        .execute();
      if (removed.length === 0) return false;
      await relinkChildren(trx, removed);
      // A running job's worker finds its lease gone at the next heartbeat and stops.
      await trx.deleteFrom('items').where('response_id', '=', id).execute();
      await trx.deleteFrom('response_events').where('response_id', '=', id).execute();
      await trx.deleteFrom('jobs').where('response_id', '=', id).execute();
      await countDeletion(trx);
      return true;
    });
    if (deleted) this.chains.clear();
    return deleted;
  }

  async listInputItems(
    tenant: string,
    responseId: string,
    options: ListOptions,
  ): Promise<ItemPage | undefined> {
    const exists = await this.db
      .selectFrom('responses')
      .select('id')
      .where('id', '=', responseId)
      .where('tenant', '=', tenant)
      .executeTakeFirst();
    if (!exists) return undefined;
    let query = this.db
      .selectFrom('items')
      .select(['item_id', 'body'])
      .where('response_id', '=', responseId)
      .where('kind', '=', INPUT);
    if (options.after !== undefined) {
      const cursor = this.db
        .selectFrom('items')
        .select('position')
        .where('response_id', '=', responseId)
        .where('kind', '=', INPUT)
        .where('item_id', '=', options.after);
      query = query.where('position', options.order === 'asc' ? '>' : '<', cursor);
    }
    const rows = await query
      .orderBy('position', options.order)
      .limit(literalLimit(options.limit + 1))
      .execute();
    const hasMore = rows.length > options.limit;
    return { data: rows.slice(0, options.limit).map(toStoredItem), hasMore };
  }

  async loadChain(tenant: string, responseId: string): Promise<ChainContext | undefined> {
    // PostgreSQL: another replica may have deleted a response of a cached chain. The count of
    // deletions is read before the chain, so a deletion racing the read makes the chain look
    // older than it is (read again next time), never newer.
    const deletions = this.hotPath ? undefined : await this.deletionCount();
    const cached = this.chains.get(tenant, responseId, deletions);
    if (cached) return cached;
    const generation = this.chains.generation;
    const loaded = this.hotPath
      ? await this.exclusive((hotPath) => hotPath.loadChain(tenant, responseId))
      : await this.loadRawChain(tenant, responseId, deletions);
    if (!loaded) return undefined;
    const chain = parseChain(loaded);
    // Kept only once final: an unfinished response may still change.
    if (isFinished(chain.response.status)) this.chains.remember(tenant, loaded, generation);
    return chain;
  }

  /**
   * PostgreSQL: a chain as stored, in three queries however deep (the head, the path up its
   * parent links, the items); the hot path does SQLite's.
   */
  private async loadRawChain(
    tenant: string,
    responseId: string,
    deletions: number | undefined,
  ): Promise<RawChain | undefined> {
    const head = await this.db
      .selectFrom('responses')
      .select('body')
      .where('id', '=', responseId)
      .where('tenant', '=', tenant)
      .executeTakeFirst();
    if (!head) return undefined;
    const { rows: links } = await this.db.executeQuery<{ id: string }>(
      CompiledQuery.raw(chainPathSql('$1'), [responseId]),
    );
    const path = links.map((link) => link.id);
    // The head row proved the tenant and a chain never crosses tenants, so the items are looked
    // up by primary key alone.
    const rows = await this.db
      .selectFrom('items')
      .select(['response_id', 'kind', 'position', 'item_id', 'body'])
      .where('response_id', 'in', path)
      .execute();
    const rank = new Map(path.map((id, index) => [id, index]));
    rows.sort(
      (a, b) =>
        rank.get(a.response_id)! - rank.get(b.response_id)! || a.kind - b.kind || a.position - b.position,
    );
    return {
      responseJson: head.body,
      path,
      items: rows.map((row) => ({ id: row.item_id, text: row.body })),
      ...(deletions === undefined ? {} : { deletions }),
    };
  }

  /**
   * PostgreSQL: waits for other replicas' deletions to commit. Deleting a response moves its
   * children's links up to its parent; two transactions deleting a response and its parent at
   * once would each miss the other's move and leave a link to a deleted row.
   */
  private async deletionTurn(trx: Transaction<Database>): Promise<void> {
    if (this.dialect === 'postgres')
      await sql`select pg_advisory_xact_lock(${LOCK_CLASS}, ${DELETION_LOCK})`.execute(trx);
  }

  /** How many times responses were deleted, by any replica (`countDeletion`). */
  private async deletionCount(): Promise<number> {
    const row = await this.db
      .selectFrom('response_deletions')
      .select('total')
      .where('id', '=', 1)
      .executeTakeFirst();
    return Number(row?.total ?? 0);
  }

  async findItems(tenant: string, ids: readonly string[]): Promise<Map<string, StoredItem>> {
    if (this.hotPath) return this.exclusive((hotPath) => hotPath.findItems(tenant, ids));
    const found = new Map<string, StoredItem>();
    if (ids.length === 0) return found;
    const rows = await this.db
      .selectFrom('items')
      .select(['item_id', 'body'])
      .where('tenant', '=', tenant)
      .where('item_id', 'in', [...ids])
      .execute();
    for (const row of rows) found.set(row.item_id, toStoredItem(row));
    return found;
  }

  // ── background jobs ─────────────────────────────────────────────────────

  async enqueueBackground(record: NewResponse, job: NewJob): Promise<void> {
    const background = { events: eventRows(record.response.id, job.events), job: queuedJob(record, job) };
    if (this.hotPath)
      return this.exclusive((hotPath) =>
        hotPath.enqueueBackground(record, background.events, background.job),
      );
    // PostgreSQL: one statement, or a transaction for a response with many rows.
    const texts = toStoredTexts(record);
    if (texts.inputs.length + job.events.length <= ROWS_AT_ONCE) {
      await insertResponseAtOnce(this.db, record, texts, background);
      return;
    }
    await this.db.transaction().execute(async (trx) => {
      await insertResponseRows(trx, record, texts);
      await insertEvents(trx, background.events);
      await trx.insertInto('jobs').values(background.job).execute();
    });
  }

  async claimJob(
    owner: string,
    backends: readonly string[],
    leaseMs: number,
    keepEvents: number,
  ): Promise<ClaimedJob | undefined> {
    if (backends.length === 0) return undefined;
    const now = Date.now();
    const expiresAt = now + leaseMs;
    const job = this.hotPath
      ? await this.exclusive((hotPath) => hotPath.claimJob(backends, now, owner, expiresAt, keepEvents))
      : await claimJobAtOnce(this.db, backends, now, owner, expiresAt, keepEvents);
    if (!job) return undefined;
    if (job.body === null) {
      // Its response was deleted: nothing is left to run.
      await this.db.deleteFrom('jobs').where('response_id', '=', job.response_id).execute();
      return undefined;
    }
    const response = JSON.parse(job.body) as ResponseObject;
    response.status = 'queued';
    response.output = [];
    response.usage = null;
    return {
      responseId: job.response_id,
      tenant: job.tenant,
      backend: job.backend,
      attempts: job.attempts,
      cancelRequested: job.cancel_requested === 1,
      payload: job.payload,
      response,
    };
  }

  async renewLease(responseId: string, owner: string, leaseMs: number): Promise<LeaseState> {
    const row = await this.db
      .updateTable('jobs')
      .set({ lease_expires_at: Date.now() + leaseMs })
      .where('response_id', '=', responseId)
      .where('lease_owner', '=', owner)
      .where('state', '=', 'running')
      .returning('cancel_requested')
      .executeTakeFirst();
    if (!row) return 'lost';
    return row.cancel_requested ? 'cancel_requested' : 'held';
  }

  async markInProgress(tenant: string, response: ResponseObject): Promise<void> {
    if (this.hotPath) return this.exclusive((hotPath) => hotPath.writeResponse(tenant, response));
    await this.db
      .updateTable('responses')
      .set({ status: response.status, body: JSON.stringify(response) })
      .where('id', '=', response.id)
      .where('tenant', '=', tenant)
      .execute();
  }

  async releaseJob(responseId: string, owner: string): Promise<void> {
    await this.db
      .updateTable('jobs')
      .set({ state: 'queued', lease_owner: null, lease_expires_at: null, attempts: sql`attempts - 1` })
      .where('response_id', '=', responseId)
      .where('lease_owner', '=', owner)
      .where('state', '=', 'running')
      .execute();
  }

  async finishJob(
    tenant: string,
    responseId: string,
    owner: string,
    result: (cancelRequested: boolean) => JobResult,
  ): Promise<FinishOutcome> {
    const rows = (cancelRequested: boolean) => finishedRows(tenant, responseId, result(cancelRequested));
    if (this.hotPath) return this.exclusive((hotPath) => hotPath.finishJob(responseId, tenant, owner, rows));
    // PostgreSQL. Most jobs finish with no cancel asked for: one statement writes them, if it
    // still applies.
    const expected = rows(false);
    if (expected.items.length + expected.events.length <= ROWS_AT_ONCE) {
      if (await finishJobAtOnce(this.db, tenant, responseId, owner, expected)) return 'finished';
    }
    return this.db.transaction().execute(async (trx) => {
      const job = await trx
        .selectFrom('jobs')
        .select(['state', 'lease_owner', 'cancel_requested'])
        .where('response_id', '=', responseId)
        .forUpdate()
        .executeTakeFirst();
      if (!job || job.state !== 'running' || job.lease_owner !== owner) return 'lost';
      const finished = rows(job.cancel_requested === 1);
      await insertEvents(trx, finished.events);
      await trx
        .updateTable('responses')
        .set({ status: finished.status, body: finished.body })
        .where('id', '=', responseId)
        .where('tenant', '=', tenant)
        .execute();
      await trx
        .deleteFrom('items')
        .where('response_id', '=', responseId)
        .where('kind', '=', OUTPUT)
        .execute();
      await insertItemRows(trx, finished.items);
      await trx.updateTable('jobs').set(DONE).where('response_id', '=', responseId).execute();
      return 'finished';
    });
  }

  async countQueuedJobs(): Promise<number> {
    const row = await this.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('state', '=', 'queued')
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async cancelRequestedFor(owner: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('jobs')
      .select('response_id')
      .where('lease_owner', '=', owner)
      .where('state', '=', 'running')
      .where('cancel_requested', '=', 1)
      .execute();
    return rows.map((row) => row.response_id);
  }

  async requestCancel(
    tenant: string,
    id: string,
    cancelled: (response: ResponseObject, payload: string) => JobResult,
  ): Promise<CancelOutcome> {
    return this.db.transaction().execute(async (trx): Promise<CancelOutcome> => {
      const row = await trx
        .selectFrom('responses')
        .select('body')
        .where('id', '=', id)
        .where('tenant', '=', tenant)
        .executeTakeFirst();
      if (!row) return { state: 'not_found' };
      const response = JSON.parse(row.body) as ResponseObject;
      if (!response.background) return { state: 'not_background', response };
      let query = trx.selectFrom('jobs').select(['state', 'payload']).where('response_id', '=', id);
      if (this.dialect === 'postgres') query = query.forUpdate();
      const job = await query.executeTakeFirst();
      if (!job || job.state === 'done') return { state: 'terminal', response };
      if (job.state === 'running') {
        await trx.updateTable('jobs').set({ cancel_requested: 1 }).where('response_id', '=', id).execute();
        return { state: 'requested', response };
      }
      const final = cancelled(response, job.payload);
      await insertEvents(trx, eventRows(id, final.events));
      await trx
        .updateTable('responses')
        .set({ status: final.response.status, body: JSON.stringify(final.response) })
        .where('id', '=', id)
        .execute();
      await trx
        .updateTable('jobs')
        .set({ state: 'done', cancel_requested: 1 })
        .where('response_id', '=', id)
        .execute();
      return { state: 'cancelled', response: final.response };
    });
  }

  // ── event log ───────────────────────────────────────────────────────────

  async appendEvents(responseId: string, events: readonly StoredEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.db.transaction().execute((trx) => insertEvents(trx, eventRows(responseId, events)));
  }

  async readEvents(responseId: string, afterSequence: number, limit: number): Promise<StoredEvent[]> {
    const rows = await this.db
      .selectFrom('response_events')
      .select(['sequence_number', 'type', 'data'])
      .where('response_id', '=', responseId)
      .where('sequence_number', '>', afterSequence)
      .orderBy('sequence_number')
      .limit(literalLimit(limit))
      .execute();
    return rows.map((row) => ({ sequence: row.sequence_number, type: row.type, data: row.data }));
  }

  async hasEvents(responseId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('response_events')
      .select('sequence_number')
      .where('response_id', '=', responseId)
      .limit(literalLimit(1))
      .executeTakeFirst();
    return row !== undefined;
  }

  // ── idempotency ─────────────────────────────────────────────────────────

  async claimIdempotencyKey(
    tenant: string,
    key: string,
    fingerprint: string,
    lockMs: number,
    ttlSeconds: number,
  ): Promise<IdempotencyClaim> {
    const now = Date.now();
    const fresh = {
      tenant,
      key,
      fingerprint,
      state: 'pending' as const,
      locked_until: now + lockMs,
      outcome: null,
      response_id: null,
      expires_at: Math.floor(now / 1000) + ttlSeconds,
    };
    return this.db.transaction().execute(async (trx): Promise<IdempotencyClaim> => {
      const inserted = await trx
        .insertInto('idempotency_keys')
        .values(fresh)
        .onConflict((conflict) => conflict.columns(['tenant', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (inserted) return { state: 'acquired' };
      let query = trx
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('key', '=', key);
      if (this.dialect === 'postgres') query = query.forUpdate();
      const row = await query.executeTakeFirstOrThrow();
      // An expired key is free again for any request.
      if (row.expires_at * 1000 < now) {
        await trx
          .updateTable('idempotency_keys')
          .set(fresh)
          .where('tenant', '=', tenant)
          .where('key', '=', key)
          .execute();
        return { state: 'acquired' };
      }
      if (row.fingerprint !== fingerprint) return { state: 'mismatch' };
      if (row.state === 'done' && row.outcome)
        return { state: 'done', outcome: JSON.parse(row.outcome) as IdempotentOutcome };
      // The request holding the key died without finishing: this one takes over.
      if (row.locked_until < now) {
        await trx
          .updateTable('idempotency_keys')
          .set({ locked_until: fresh.locked_until })
          .where('tenant', '=', tenant)
          .where('key', '=', key)
          .execute();
        return { state: 'acquired' };
      }
      return { state: 'pending' };
    });
  }

  async completeIdempotencyKey(tenant: string, key: string, outcome: IdempotentOutcome): Promise<void> {
    const responseId = outcome.kind === 'log' ? (outcome.body as { response_id: string }).response_id : null;
    await this.db
      .updateTable('idempotency_keys')
      .set({ state: 'done', outcome: JSON.stringify(outcome), response_id: responseId })
      .where('tenant', '=', tenant)
      .where('key', '=', key)
      .execute();
  }

  async releaseIdempotencyKey(tenant: string, key: string): Promise<void> {
    await this.db
      .deleteFrom('idempotency_keys')
      .where('tenant', '=', tenant)
      .where('key', '=', key)
      .execute();
  }

  // ── retention ───────────────────────────────────────────────────────────

  async purgeExpired(
    nowSeconds: number,
    batch: number,
  ): Promise<{ responses: number; idempotencyKeys: number }> {
    this.chains.invalidateLoads();
    const purged = await this.db.transaction().execute(async (trx) => {
      if (this.dialect === 'postgres') {
        // One replica purges at a time; the others skip this round.
        const { rows } = await sql<{
          locked: boolean;
        }>`select pg_try_advisory_xact_lock(${LOCK_CLASS}, ${PURGE_LOCK}) as locked`.execute(trx);
        if (!rows[0]?.locked) return { responses: 0, idempotencyKeys: 0 };
        await this.deletionTurn(trx);
      }
      const expired = (
        await trx
          .selectFrom('responses')
          .select('id')
          .where('expires_at', '<', nowSeconds)
          .orderBy('expires_at')
          .limit(literalLimit(batch))
          .execute()
      ).map((row) => row.id);
      if (expired.length) {
        await trx.deleteFrom('items').where('response_id', 'in', expired).execute();
        await trx.deleteFrom('response_events').where('response_id', 'in', expired).execute();
        await trx.deleteFrom('jobs').where('response_id', 'in', expired).execute();
        const removed = await trx
          .deleteFrom('responses')
          .where('id', 'in', expired)
          .returning(['id', 'parent_id'])
          .execute();
        await relinkChildren(trx, removed);
      }
      const keys = await trx
        .selectFrom('idempotency_keys')
        .select(['tenant', 'key', 'response_id'])
        .where('expires_at', '<', nowSeconds)
        .limit(literalLimit(batch))
        .execute();
      // Events kept only so a key could replay an unstored stream go with the key.
      const replayOnly = keys.map((row) => row.response_id).filter((id): id is string => id !== null);
      if (replayOnly.length) {
        await trx
          .deleteFrom('response_events')
          .where('response_id', 'in', replayOnly)
          .where((eb) =>
            eb.not(
              eb.exists(
                eb
                  .selectFrom('responses')
                  .select('id')
                  .whereRef('responses.id', '=', 'response_events.response_id'),
              ),
            ),
          )
          .execute();
      }
      for (const row of keys) {
        await trx
          .deleteFrom('idempotency_keys')
          .where('tenant', '=', row.tenant)
          .where('key', '=', row.key)
          .execute();
      }
      if (expired.length) await countDeletion(trx);
      return { responses: expired.length, idempotencyKeys: keys.length };
    });
    if (purged.responses) this.chains.clear();
    return purged;
  }

  async getOrCreateSecret(name: string, create: () => string): Promise<string> {
    await this.db
      .insertInto('secrets')
      .values({ name, value: create(), created_at: Math.floor(Date.now() / 1000) })
      .onConflict((conflict) => conflict.column('name').doNothing())
      .execute();
    const row = await this.db
      .selectFrom('secrets')
      .select('value')
      .where('name', '=', name)
      .executeTakeFirstOrThrow();
    return row.value;
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.sqlite?.checkpointer?.stop();
    await this.db.destroy();
  }
}

async function insertItems(
  trx: Transaction<Database>,
  tenant: string,
  responseId: string,
  kind: number,
  items: readonly ItemText[],
): Promise<void> {
  await insertItemRows(trx, itemRows(tenant, responseId, kind, items));
}

async function insertItemRows(trx: Transaction<Database>, rows: readonly ItemsTable[]): Promise<void> {
  // Stay well under SQLite's bound-parameter limit on very long inputs.
  for (let start = 0; start < rows.length; start += 500) {
    await trx
      .insertInto('items')
      .values(rows.slice(start, start + 500))
      .execute();
  }
}

function itemRows(
  tenant: string,
  responseId: string,
  kind: number,
  items: readonly ItemText[],
): ItemsTable[] {
  return items.map((item, position) => ({
    response_id: responseId,
    tenant,
    kind,
    position,
    item_id: item.id,
    body: item.text,
  }));
}

/**
 * Counts a deletion of responses, in the deleting transaction, so replicas' chain caches see it
 * exactly when the deletion commits. Always a transaction's last write: every deletion takes this
 * row's lock, and taking it last means no transaction holds it while waiting for another.
 */
async function countDeletion(trx: Transaction<Database>): Promise<void> {
  // An upsert, so that a missing row (removed by hand) starts counting again instead of
  // leaving replicas' caches blind to deletions.
  await trx
    .insertInto('response_deletions')
    .values({ id: 1, total: 1 })
    .onConflict((conflict) =>
      conflict.column('id').doUpdateSet((eb) => ({ total: eb('response_deletions.total', '+', 1) })),
    )
    .execute();
}

/**
 * PostgreSQL: a response's row and its items, as `texts` serialised them, for a response with
 * more rows than `insertResponseAtOnce` takes (SQLite has its hot path).
 */
async function insertResponseRows(
  trx: Transaction<Database>,
  record: NewResponse,
  texts: StoredTexts,
): Promise<void> {
  const inserted = await trx
    .insertInto('responses')
    .values(responseRow(trx, record, texts))
    .returning('parent_id')
    .executeTakeFirstOrThrow();
  await hangFromNearestStored(trx, record, inserted.parent_id);
  await insertItems(trx, record.tenant, record.response.id, INPUT, texts.inputs);
  await insertItems(trx, record.tenant, record.response.id, OUTPUT, texts.outputs);
}

/** Rows one statement may insert along with a response (`insertResponseAtOnce`). */
const ROWS_AT_ONCE = 500;

/**
 * PostgreSQL: a response and its items in one statement, which is atomic on its own: one round
 * trip where a transaction took five (begin, three inserts, commit). A background response
 * brings its first events and its job into the same statement. Responses with more rows than
 * `ROWS_AT_ONCE` take `insertResponseRows`.
 */
async function insertResponseAtOnce(
  db: Kysely<Database>,
  record: NewResponse,
  texts: StoredTexts,
  background?: { events: ResponseEventsTable[]; job: JobsTable },
) {
  const { tenant, response } = record;
  let statement = db.with('stored', (cte) =>
    cte
      .insertInto('responses')
      .values(responseRow(cte, record, texts))
      .returning('parent_id'),
  );
  // The other writes are never read from, so the statement keeps the response-only type.
  type Statement = typeof statement;
  const items = [
    ...itemRows(tenant, response.id, INPUT, texts.inputs),
    ...itemRows(tenant, response.id, OUTPUT, texts.outputs),
  ];
  if (items.length) {
    statement = statement.with('stored_items', (cte) =>
      cte.insertInto('items').values(items),
    ) as unknown as Statement;
  }
  if (background?.events.length) {
    statement = statement.with('queued_events', (cte) =>
      cte.insertInto('response_events').values(background.events),
    ) as unknown as Statement;
  }
  if (background) {
    statement = statement.with('queued_job', (cte) =>
      cte.insertInto('jobs').values(background.job),
    ) as unknown as Statement;
  }
  const inserted = await statement.selectFrom('stored').select('parent_id').executeTakeFirstOrThrow();
  if (record.ancestors.length && inserted.parent_id === null) {
    await db.transaction().execute((trx) => hangFromNearestStored(trx, record, null));
  }
}

function responseRow(db: QueryCreator<Database>, record: NewResponse, texts: StoredTexts) {
  const { response } = record;
  const previous = record.ancestors.at(-1);
  return {
    id: response.id,
    tenant: record.tenant,
    created_at: response.created_at,
    status: response.status,
    previous_response_id: response.previous_response_id,
    parent_id: previous === undefined ? null : storedId(db, previous),
    ancestors: '[]',
    body: texts.response,
    expires_at: record.expiresAt,
  };
}

/**
 * The response it continues was deleted after its chain was loaded (its row came back without
 * a parent): it hangs from the nearest ancestor left.
 */
async function hangFromNearestStored(
  trx: Transaction<Database>,
  record: NewResponse,
  parent: string | null,
): Promise<void> {
  const { ancestors } = record;
  if (parent !== null || ancestors.length === 0) return;
  for (const id of ancestors.slice(0, -1).reverse()) {
    if (!(await storedId(trx, id).executeTakeFirst())) continue;
    await trx.updateTable('responses').set({ parent_id: id }).where('id', '=', record.response.id).execute();
    return;
  }
}

/**
 * `id` if that response is stored, its row locked against deletion until the transaction ends:
 * a delete running meanwhile either waits and then moves the new child's link up, or went
 * first, and the child hangs from an older ancestor.
 */
function storedId(db: QueryCreator<Database>, id: string) {
  return db.selectFrom('responses').select('id').where('id', '=', id).forKeyShare();
}

/**
 * After responses were deleted, the responses that hung from them hang from the nearest
 * ancestor still stored instead, so their chains keep everything that was not deleted.
 */
async function relinkChildren(
  trx: Transaction<Database>,
  deleted: readonly { id: string; parent_id: string | null }[],
): Promise<void> {
  if (deleted.length === 0) return;
  const parentOf = new Map(deleted.map((row) => [row.id, row.parent_id]));
  const children = await trx
    .selectFrom('responses')
    .select(['id', 'parent_id'])
    .where('parent_id', 'in', [...parentOf.keys()])
    .execute();
  for (const child of children) {
    let parent = child.parent_id;
    while (parent !== null && parentOf.has(parent)) parent = parentOf.get(parent)!;
    await trx.updateTable('responses').set({ parent_id: parent }).where('id', '=', child.id).execute();
  }
}

/**
 * The job a claim takes: a running job of `backends` whose lease ran out (the one that ran out
 * first), else the oldest queued job of `backends`. Each comes from a probe that reads the first
 * entries of an index (the queue is probed per backend): a search over "queued, or running and
 * expired" read and sorted the whole queue, and every running job's row, on every claim. Each
 * probe locks its row and skips rows another replica is claiming, instead of queueing behind
 * their locks. SQLite's hot path runs the same probes one by one.
 */
function oldestClaimable(db: QueryCreator<Database>, backends: readonly string[], now: number) {
  const probe = (
    rank: number,
    query: SelectQueryBuilder<Database, 'jobs', { response_id: string; at: number }>,
  ) => {
    return db
      .selectFrom(query.limit(literalLimit(1)).forUpdate().skipLocked().as('probe'))
      .select(['response_id', 'at', sql<number>`${sql.lit(rank)}`.as('rank')]);
  };
  const expired = probe(
    0,
    db
      .selectFrom('jobs')
      .select(['response_id', sql<number>`lease_expires_at`.as('at')])
      .where('state', '=', 'running')
      .where('lease_expires_at', '<', now)
      .where('backend', 'in', [...backends])
      .orderBy('lease_expires_at'),
  );
  const candidates = backends.reduce(
    (union, backend) =>
      union.unionAll(
        probe(
          1,
          db
            .selectFrom('jobs')
            .select(['response_id', 'enqueued_at as at'])
            .where('state', '=', 'queued')
            .where('backend', '=', backend)
            .orderBy('enqueued_at'),
        ),
      ),
    expired,
  );
  return db
    .selectFrom(candidates.as('candidates'))
    .select('response_id')
    .orderBy('rank')
    .orderBy('at')
    .limit(literalLimit(1));
}

/** A job ends: nobody holds it any more. */
const DONE = { state: 'done', lease_owner: null, lease_expires_at: null } as const;

/**
 * PostgreSQL: `claimJob` in one statement (data-modifying CTEs) where a transaction took seven
 * round trips. Replicas skip a row another one is claiming instead of queueing behind its lock.
 */
async function claimJobAtOnce(
  db: Kysely<Database>,
  backends: readonly string[],
  now: number,
  owner: string,
  leaseExpiresAt: number,
  keepEvents: number,
): Promise<ClaimedRow | undefined> {
  return db
    .with('picked', (cte) => oldestClaimable(cte, backends, now))
    .with('claimed', (cte) =>
      cte
        .updateTable('jobs')
        .set({
          state: 'running',
          lease_owner: owner,
          lease_expires_at: leaseExpiresAt,
          attempts: sql`attempts + 1`,
        })
        .where('response_id', '=', (eb) => eb.selectFrom('picked').select('response_id'))
        .returningAll(),
    )
    .with('events_reset', (cte) =>
      cte
        .deleteFrom('response_events')
        .where('response_id', '=', (eb) => eb.selectFrom('claimed').select('response_id'))
        .where('sequence_number', '>=', keepEvents),
    )
    .with('items_reset', (cte) =>
      cte
        .deleteFrom('items')
        .where('response_id', '=', (eb) => eb.selectFrom('claimed').select('response_id'))
        .where('kind', '=', OUTPUT),
    )
    .selectFrom('claimed')
    .leftJoin('responses', 'responses.id', 'claimed.response_id')
    .selectAll('claimed')
    .select('responses.body')
    .executeTakeFirst();
}

function finishedRows(tenant: string, responseId: string, result: JobResult): FinishedRows {
  const { response } = result;
  return {
    status: response.status,
    body: JSON.stringify(response),
    items: itemRows(tenant, responseId, OUTPUT, outputTexts(response)),
    events: eventRows(responseId, result.events),
  };
}

/**
 * PostgreSQL: `finishJob` in one statement where a transaction took eight round trips, for a
 * job `owner` still holds and nobody asked to cancel; every write depends on the job's row
 * changing, so when it does not (a cancel was asked for, the lease was lost) nothing is written
 * and the caller takes the transaction. Rows travel as one JSON parameter each, read back with
 * their table's own column types.
 */
async function finishJobAtOnce(
  db: Kysely<Database>,
  tenant: string,
  responseId: string,
  owner: string,
  rows: FinishedRows,
): Promise<boolean> {
  const finished = await sql<{ response_id: string }>`
    with finished as (
      update jobs set state = ${DONE.state}, lease_owner = null, lease_expires_at = null
      where response_id = ${responseId} and state = 'running' and lease_owner = ${owner}
        and cancel_requested = 0
      returning response_id
    ), written as (
      update responses set status = ${rows.status}, body = ${rows.body}
      where id = (select response_id from finished) and tenant = ${tenant}
    ), output_items as (
      insert into items (response_id, tenant, kind, position, item_id, body)
      select v.response_id, v.tenant, v.kind, v.position, v.item_id, v.body
      from json_populate_recordset(null::items, ${JSON.stringify(rows.items)}) as v
      where exists (select 1 from finished)
      on conflict (response_id, kind, position)
        do update set tenant = excluded.tenant, item_id = excluded.item_id, body = excluded.body
    ), stale_items as (
      delete from items
      where response_id = (select response_id from finished) and kind = ${OUTPUT}
        and position >= ${rows.items.length}
    ), events as (
      insert into response_events (response_id, sequence_number, type, data)
      select v.response_id, v.sequence_number, v.type, v.data
      from json_populate_recordset(null::response_events, ${JSON.stringify(rows.events)}) as v
      where exists (select 1 from finished)
    )
    select response_id from finished`.execute(db);
  return finished.rows.length > 0;
}

async function insertEvents(trx: Transaction<Database>, rows: readonly ResponseEventsTable[]): Promise<void> {
  for (let start = 0; start < rows.length; start += 500) {
    await trx
      .insertInto('response_events')
      .values(rows.slice(start, start + 500))
      .execute();
  }
}

function eventRows(responseId: string, events: readonly StoredEvent[]): ResponseEventsTable[] {
  return events.map((event) => ({
    response_id: responseId,
    sequence_number: event.sequence,
    type: event.type,
    data: event.data,
  }));
}

function queuedJob(record: NewResponse, job: NewJob): JobsTable {
  return {
    response_id: record.response.id,
    tenant: record.tenant,
    backend: job.backend,
    state: 'queued',
    attempts: 0,
    lease_owner: null,
    lease_expires_at: null,
    cancel_requested: 0,
    enqueued_at: Date.now(),
    payload: job.payload,
  };
}
