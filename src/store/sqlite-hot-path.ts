import type SQLite from 'better-sqlite3';
import type { ResponseObject } from '../api/wire.js';
import { parseItem, toStoredTexts, type ItemText, type RawChain, type StoredTexts } from './chain-cache.js';
import { chainPathSql } from './chain-path.js';
import type { Settled } from './group-commit.js';
import type { QueryObserver } from './open.js';
import type { ItemsTable, JobsTable, ResponseEventsTable } from './schema.js';
import type { NewResponse, StoredItem } from './types.js';

const INPUT = 0;
const OUTPUT = 1;

/** What a finished job writes: its response, its output items and the rest of its events. */
export interface FinishedRows {
  status: string;
  body: string;
  items: readonly ItemsTable[];
  events: readonly ResponseEventsTable[];
}

/** A claimed job's row, with its response's body (null: the response was deleted). */
export type ClaimedRow = JobsTable & { body: string | null };

/**
 * The store calls on every request's path, and on every background job's, on SQLite, as
 * prepared better-sqlite3 statements in synchronous transactions. Through Kysely the same work
 * cost about twice as much (query building and a promise hop per statement; BENCHMARKS.md has
 * the numbers). The SQL means exactly what `SqlStore`'s Kysely queries mean, and the store
 * conformance suite runs against this path (SQLite) and the Kysely one (PostgreSQL) alike.
 * Callers hold Kysely's connection lock, so these never run inside another caller's open
 * transaction.
 */
export class SqliteHotPath {
  private readonly insertResponse: SQLite.Statement;
  private readonly insertItem: SQLite.Statement;
  private readonly selectBody: SQLite.Statement<[string, string], { body: string }>;
  private readonly selectStored: SQLite.Statement<[string], number>;
  private readonly selectPath: SQLite.Statement<[string], string>;
  private readonly selectChainItems: SQLite.Statement<[string], ItemText>;
  private readonly itemsById = new Map<number, SQLite.Statement>();
  /** Stores a response and returns the texts it stored (for the chain cache). */
  private readonly createResponse: (record: NewResponse) => StoredTexts;
  private readonly createAll: (records: readonly NewResponse[]) => StoredTexts[];
  private readonly jobs: BackgroundStatements;
  /** Stores a background response with its first events and its job. */
  readonly enqueueBackground: (
    record: NewResponse,
    events: readonly ResponseEventsTable[],
    job: JobsTable,
  ) => void;
  /** Takes the job `oldestClaimable` (sql-store.ts) names, as `SqlStore.claimJob` describes. */
  readonly claimJob: (
    backends: readonly string[],
    now: number,
    owner: string,
    leaseExpiresAt: number,
    keepEvents: number,
  ) => ClaimedRow | undefined;
  /** Writes a finished job's response, items and events, if `owner` still holds it. */
  readonly finishJob: (
    responseId: string,
    tenant: string,
    owner: string,
    rows: (cancelRequested: boolean) => FinishedRows,
  ) => 'finished' | 'lost';

  constructor(
    private readonly database: SQLite.Database,
    private readonly onQuery?: QueryObserver,
  ) {
    this.insertResponse = database.prepare(
      "insert into responses (id, tenant, created_at, status, previous_response_id, parent_id, ancestors, body, expires_at) values (?, ?, ?, ?, ?, ?, '[]', ?, ?)",
    );
    this.insertItem = database.prepare(
      'insert into items (response_id, tenant, kind, position, item_id, body) values (?, ?, ?, ?, ?, ?)',
    );
    this.selectBody = database.prepare('select body from responses where id = ? and tenant = ?');
    this.selectStored = database.prepare<[string], number>('select 1 from responses where id = ?').pluck();
    this.selectPath = database.prepare<[string], string>(chainPathSql('?')).pluck();
    // The chain's ids go in as one JSON array; its order (json_each's key) orders the items.
    this.selectChainItems = database.prepare(
      'select items.item_id as id, items.body as text from json_each(?) as chain join items on items.response_id = chain.value order by chain.key, items.kind, items.position',
    );
    const insert = (record: NewResponse): StoredTexts => {
      const { tenant, response } = record;
      const { insertResponse, insertItem } = this;
      const texts = toStoredTexts(record);
      this.observed(insertResponse, () =>
        insertResponse.run(
          response.id,
          tenant,
          response.created_at,
          response.status,
          response.previous_response_id,
          this.nearestStored(record.ancestors),
          texts.response,
          record.expiresAt,
        ),
      );
      const insertItems = (kind: number, items: readonly ItemText[]) =>
        items.forEach((item, position) =>
          this.observed(insertItem, () =>
            insertItem.run(response.id, tenant, kind, position, item.id, item.text),
          ),
        );
      insertItems(INPUT, texts.inputs);
      insertItems(OUTPUT, texts.outputs);
      return texts;
    };
    this.createResponse = database.transaction(insert);
    this.createAll = database.transaction((records: readonly NewResponse[]) => records.map(insert));

    const jobs = (this.jobs = prepareBackground(database));
    this.enqueueBackground = database.transaction((record, events, job) => {
      insert(record);
      this.insertEvents(events);
      this.run(jobs.insert, [
        job.response_id,
        job.tenant,
        job.backend,
        job.state,
        job.attempts,
        job.lease_owner,
        job.lease_expires_at,
        job.cancel_requested,
        job.enqueued_at,
        job.payload,
      ]);
    });
    this.claimJob = database.transaction((backends, now, owner, leaseExpiresAt, keepEvents) => {
      const picked = this.oldestClaimable(backends, now);
      if (picked === undefined) return undefined;
      const claimed = this.observed(jobs.claim, () => jobs.claim.get(owner, leaseExpiresAt, picked, now));
      if (!claimed) return undefined;
      this.run(jobs.deleteLaterEvents, [picked, keepEvents]);
      this.run(jobs.deleteOutputItems, [picked]);
      const body = this.observed(jobs.body, () => jobs.body.get(picked));
      return { ...claimed, body: body ?? null };
    });
    this.finishJob = database.transaction((responseId, tenant, owner, rows) => {
      const job = this.observed(jobs.holder, () => jobs.holder.get(responseId));
      if (!job || job.state !== 'running' || job.lease_owner !== owner) return 'lost';
      const finished = rows(job.cancel_requested === 1);
      this.insertEvents(finished.events);
      this.run(jobs.writeResponse, [finished.status, finished.body, responseId, tenant]);
      this.run(jobs.deleteOutputItems, [responseId]);
      for (const item of finished.items)
        this.run(this.insertItem, [
          item.response_id,
          item.tenant,
          item.kind,
          item.position,
          item.item_id,
          item.body,
        ]);
      this.run(jobs.done, [responseId]);
      return 'finished';
    });
  }

  /** `markInProgress`: the response row of a job that has started. */
  writeResponse(tenant: string, response: ResponseObject): void {
    this.run(this.jobs.writeResponse, [response.status, JSON.stringify(response), response.id, tenant]);
  }

  /**
   * A running job of `backends` whose lease ran out (the one that ran out first), else the
   * oldest queued job of `backends`: the probes of `oldestClaimable` (sql-store.ts), each the
   * first entry of an index, run one by one.
   */
  private oldestClaimable(backends: readonly string[], now: number): string | undefined {
    const { expired, queued } = this.jobs;
    let oldest: { response_id: string; at: number } | undefined;
    for (const backend of backends) {
      const row = this.observed(expired, () => expired.get(now, backend));
      if (row && (!oldest || row.at < oldest.at)) oldest = row;
    }
    if (oldest) return oldest.response_id;
    for (const backend of backends) {
      const row = this.observed(queued, () => queued.get(backend));
      if (row && (!oldest || row.at < oldest.at)) oldest = row;
    }
    return oldest?.response_id;
  }

  private insertEvents(events: readonly ResponseEventsTable[]): void {
    for (const event of events)
      this.run(this.jobs.insertEvent, [event.response_id, event.sequence_number, event.type, event.data]);
  }

  private run(statement: SQLite.Statement, parameters: readonly unknown[]): void {
    this.observed(statement, () => statement.run(...parameters));
  }

  /**
   * Stores responses in one transaction, or, if that fails, each in its own, so that one bad
   * record (a duplicate id, say) fails alone. Returns the stored texts (for the chain cache).
   */
  createResponses(records: readonly NewResponse[]): Settled<StoredTexts>[] {
    if (records.length > 1) {
      try {
        return this.createAll(records).map((value) => ({ ok: true, value }));
      } catch {
        // Retried one by one below, so the failure lands on the record that caused it.
      }
    }
    return records.map((record) => {
      try {
        return { ok: true, value: this.createResponse(record) };
      } catch (error) {
        return { ok: false, error };
      }
    });
  }

  getResponse(tenant: string, id: string): ResponseObject | undefined {
    const row = this.observed(this.selectBody, () => this.selectBody.get(id, tenant));
    return row ? (JSON.parse(row.body) as ResponseObject) : undefined;
  }

  /** The chain as stored, unparsed (the chain cache parses what it hands out). */
  loadChain(tenant: string, responseId: string): RawChain | undefined {
    const head = this.observed(this.selectBody, () => this.selectBody.get(responseId, tenant));
    if (!head) return undefined;
    const path = this.observed(this.selectPath, () => this.selectPath.all(responseId));
    const chain = JSON.stringify(path);
    const items = this.observed(this.selectChainItems, () => this.selectChainItems.all(chain));
    return { responseJson: head.body, path, items };
  }

  /**
   * The response a new one hangs from: the last of the ancestors its chain was loaded with that
   * is still stored (one was deleted since, rarely), or none.
   */
  private nearestStored(ancestors: readonly string[]): string | null {
    for (let index = ancestors.length - 1; index >= 0; index--) {
      const id = ancestors[index]!;
      if (this.observed(this.selectStored, () => this.selectStored.get(id)) !== undefined) return id;
    }
    return null;
  }

  findItems(tenant: string, ids: readonly string[]): Map<string, StoredItem> {
    const found = new Map<string, StoredItem>();
    if (ids.length === 0) return found;
    const statement = this.statementFor(
      this.itemsById,
      ids.length,
      (marks) => `select item_id, body from items where tenant = ? and item_id in (${marks})`,
    );
    const rows = this.observed(statement, () => statement.all(tenant, ...ids)) as {
      item_id: string;
      body: string;
    }[];
    for (const row of rows) found.set(row.item_id, toStoredItem(row));
    return found;
  }

  /** Runs one statement and reports its SQL and duration to the metrics hook, as Kysely's log does. */
  private observed<T>(statement: SQLite.Statement, run: () => T): T {
    const onQuery = this.onQuery;
    if (!onQuery) return run();
    const started = performance.now();
    try {
      const result = run();
      onQuery(statement.source, performance.now() - started, false);
      return result;
    } catch (error) {
      onQuery(statement.source, performance.now() - started, true);
      throw error;
    }
  }

  /** A statement per list length (few distinct ones in practice), prepared once. */
  private statementFor(cache: Map<number, SQLite.Statement>, count: number, sql: (marks: string) => string) {
    let statement = cache.get(count);
    if (!statement) {
      statement = this.database.prepare(sql(Array.from({ length: count }, () => '?').join(', ')));
      if (cache.size < 64) cache.set(count, statement);
    }
    return statement;
  }
}

interface BackgroundStatements {
  insert: SQLite.Statement;
  insertEvent: SQLite.Statement;
  expired: SQLite.Statement<[number, string], { response_id: string; at: number }>;
  queued: SQLite.Statement<[string], { response_id: string; at: number }>;
  claim: SQLite.Statement<[string, number, string, number], JobsTable>;
  deleteLaterEvents: SQLite.Statement;
  deleteOutputItems: SQLite.Statement;
  body: SQLite.Statement<[string], string>;
  holder: SQLite.Statement<[string], Pick<JobsTable, 'state' | 'lease_owner' | 'cancel_requested'>>;
  writeResponse: SQLite.Statement;
  done: SQLite.Statement;
}

function prepareBackground(database: SQLite.Database): BackgroundStatements {
  return {
    insert: database.prepare(
      'insert into jobs (response_id, tenant, backend, state, attempts, lease_owner, lease_expires_at, cancel_requested, enqueued_at, payload) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    insertEvent: database.prepare(
      'insert into response_events (response_id, sequence_number, type, data) values (?, ?, ?, ?)',
    ),
    expired: database.prepare(
      "select response_id, lease_expires_at as at from jobs where state = 'running' and lease_expires_at < ? and backend = ? order by lease_expires_at limit 1",
    ),
    queued: database.prepare(
      "select response_id, enqueued_at as at from jobs where state = 'queued' and backend = ? order by enqueued_at limit 1",
    ),
    // Queued, or running under a lease that ran out (its worker is gone).
    claim: database.prepare<[string, number, string, number], JobsTable>(
      "update jobs set state = 'running', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1 where response_id = ? and (state = 'queued' or (state = 'running' and lease_expires_at < ?)) returning *",
    ),
    deleteLaterEvents: database.prepare(
      'delete from response_events where response_id = ? and sequence_number >= ?',
    ),
    deleteOutputItems: database.prepare(`delete from items where response_id = ? and kind = ${OUTPUT}`),
    body: database.prepare<[string], string>('select body from responses where id = ?').pluck(),
    holder: database.prepare('select state, lease_owner, cancel_requested from jobs where response_id = ?'),
    writeResponse: database.prepare('update responses set status = ?, body = ? where id = ? and tenant = ?'),
    done: database.prepare(
      "update jobs set state = 'done', lease_owner = null, lease_expires_at = null where response_id = ?",
    ),
  };
}

export function toStoredItem(row: { item_id: string; body: string }): StoredItem {
  return parseItem({ id: row.item_id, text: row.body });
}
