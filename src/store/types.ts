import type { ResponseObject } from '../api/wire.js';

/**
 * Everything Ferry keeps. Two implementations share one SQL code path (SQLite, the embedded
 * default, and PostgreSQL for several replicas); `test/store/conformance.test.ts` runs the
 * same suite against both. Every call is scoped to a tenant: another tenant's ids do not exist.
 */

/** An item as stored: its id, and the JSON object a client sees. */
export interface StoredItem {
  id: string;
  body: Record<string, unknown>;
}

export interface NewResponse {
  tenant: string;
  response: ResponseObject;
  /**
   * Ids of the responses this one continues, oldest first, as its chain was loaded (the
   * `previous_response_id` chain). Not stored: the response hangs from the last of them still
   * stored.
   */
  ancestors: string[];
  inputItems: StoredItem[];
  /** Unix seconds after which the response may be purged. */
  expiresAt: number;
  /** The response already serialised (the caller sends the same text to its client). */
  json?: string;
}

/** What a follow-up needs from its `previous_response_id` chain, loaded in a constant number of queries. */
export interface ChainContext {
  response: ResponseObject;
  /** The chain's stored response ids, oldest first, ending with the requested one. */
  path: string[];
  /** Every input and output item along the chain, in conversation order. Deleted links are absent. */
  items: readonly StoredItem[];
}

export interface ItemPage {
  data: StoredItem[];
  hasMore: boolean;
}

export interface ListOptions {
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
}

/** One event of a background stream, serialised once, replayed byte for byte. */
export interface StoredEvent {
  sequence: number;
  type: string;
  data: string;
}

export interface NewJob {
  /** The backend whose worker slots the job takes. */
  backend: string;
  /** What the worker needs to run it (JSON). */
  payload: string;
  /** Events already emitted when the job is queued (`response.created`, `response.queued`). */
  events: StoredEvent[];
}

export interface ClaimedJob {
  responseId: string;
  tenant: string;
  backend: string;
  /** Starts so far, this one included. */
  attempts: number;
  cancelRequested: boolean;
  payload: string;
  response: ResponseObject;
}

/** What a worker writes when its job ends, chosen inside the transaction that sees the cancel flag. */
export interface JobResult {
  response: ResponseObject;
  events: StoredEvent[];
}

export type FinishOutcome = 'finished' | 'lost';

export type LeaseState = 'held' | 'lost' | 'cancel_requested';

export type CancelOutcome =
  | { state: 'not_found' }
  | { state: 'not_background'; response: ResponseObject }
  | { state: 'terminal'; response: ResponseObject }
  /** A queued job was cancelled at once; the response is final. */
  | { state: 'cancelled'; response: ResponseObject }
  /** A running job was asked to stop; its worker writes the final response. */
  | { state: 'requested'; response: ResponseObject };

/** A recorded outcome of an idempotent request. */
export interface IdempotentOutcome {
  status: number;
  /** `json`: send `body` again; `log`: stream the event log of `body.response_id` again. */
  kind: 'json' | 'log';
  body: unknown;
}

export type IdempotencyClaim =
  | { state: 'acquired' }
  | { state: 'mismatch' }
  | { state: 'pending' }
  | { state: 'done'; outcome: IdempotentOutcome };

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Saves a response with its input items and, when it is already final, its output items. */
  createResponse(record: NewResponse): Promise<void>;
  getResponse(tenant: string, id: string): Promise<ResponseObject | undefined>;
  deleteResponse(tenant: string, id: string): Promise<boolean>;
  /** The response's own input items; undefined when the response does not exist. */
  listInputItems(tenant: string, responseId: string, options: ListOptions): Promise<ItemPage | undefined>;
  loadChain(tenant: string, responseId: string): Promise<ChainContext | undefined>;
  /** Stored items by id (for `item_reference`); missing ids are absent from the map. */
  findItems(tenant: string, ids: readonly string[]): Promise<Map<string, StoredItem>>;
  // ── background jobs ─────────────────────────────────────────────────────

  /** Saves a queued background response, its input items, its first events and its job, together. */
  enqueueBackground(record: NewResponse, job: NewJob): Promise<void>;
  /**
   * Takes the oldest job that is queued, or running on an expired lease, for one of `backends`;
   * counts the start, resets what an earlier start left behind (its output, and its events from
   * sequence `keepEvents` on: the queued ones stay), and leases it to `owner`.
   */
  claimJob(
    owner: string,
    backends: readonly string[],
    leaseMs: number,
    keepEvents: number,
  ): Promise<ClaimedJob | undefined>;
  /** Extends a lease; says whether it is still held and whether a cancel was asked for. */
  renewLease(responseId: string, owner: string, leaseMs: number): Promise<LeaseState>;
  /** Marks the response in progress (visible to polling clients). */
  markInProgress(tenant: string, response: ResponseObject): Promise<void>;
  /** Gives a job back to the queue without counting its start (graceful shutdown). */
  releaseJob(responseId: string, owner: string): Promise<void>;
  /**
   * Ends a job: writes the response, its output items and the remaining events, and marks the
   * job done — unless `owner` no longer holds the lease. `result` chooses what to write knowing
   * whether a cancel was asked for, atomically with the write, so `cancelled` is sticky. It may be
   * asked twice: first assuming no cancel, then, when one was asked for meanwhile, again.
   */
  finishJob(
    tenant: string,
    responseId: string,
    owner: string,
    result: (cancelRequested: boolean) => JobResult,
  ): Promise<FinishOutcome>;
  /** Jobs waiting in the queue, on every replica (for the queue-depth metric). */
  countQueuedJobs(): Promise<number>;
  /** Response ids of `owner`'s running jobs that were asked to stop. */
  cancelRequestedFor(owner: string): Promise<string[]>;
  /**
   * Cancels a background response: a queued job ends at once with what `cancelled` returns
   * (given the job's payload), a running one is flagged for its worker.
   */
  requestCancel(
    tenant: string,
    id: string,
    cancelled: (response: ResponseObject, payload: string) => JobResult,
  ): Promise<CancelOutcome>;

  // ── event log ───────────────────────────────────────────────────────────

  appendEvents(responseId: string, events: readonly StoredEvent[]): Promise<void>;
  /** Events after `afterSequence`, in order, at most `limit`. */
  readEvents(responseId: string, afterSequence: number, limit: number): Promise<StoredEvent[]>;
  /** Whether the response has an event log (it was created with background and stream). */
  hasEvents(responseId: string): Promise<boolean>;

  // ── idempotency ─────────────────────────────────────────────────────────

  /** Takes an idempotency key for a request, or reports what became of the earlier one. */
  claimIdempotencyKey(
    tenant: string,
    key: string,
    fingerprint: string,
    lockMs: number,
    ttlSeconds: number,
  ): Promise<IdempotencyClaim>;
  completeIdempotencyKey(tenant: string, key: string, outcome: IdempotentOutcome): Promise<void>;
  /** Frees a key whose request failed in a way worth retrying. */
  releaseIdempotencyKey(tenant: string, key: string): Promise<void>;

  // ── retention ───────────────────────────────────────────────────────────

  /**
   * Deletes up to `batch` responses past their expiry (with their items, events and jobs) and
   * up to `batch` expired idempotency keys; says how many of each went. With PostgreSQL only one
   * replica purges at a time (the others purge nothing).
   */
  purgeExpired(nowSeconds: number, batch: number): Promise<{ responses: number; idempotencyKeys: number }>;

  /**
   * A deployment-wide secret by name: the stored value, or `create()`'s, stored first. Replicas
   * starting together agree on one value (the first insert wins).
   */
  getOrCreateSecret(name: string, create: () => string): Promise<string>;
  /** Cheap liveness check of the database. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
