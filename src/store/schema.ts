/** Table shapes as Kysely sees them. JSON is kept as text: Ferry never queries inside it. */

export interface ResponsesTable {
  id: string;
  tenant: string;
  created_at: number;
  status: string;
  previous_response_id: string | null;
  /**
   * The nearest ancestor still stored: `previous_response_id` when written, moved up to that
   * one's parent when it is deleted. A chain is read by following these links.
   */
  parent_id: string | null;
  /** Always `[]` since migration 0006 (it listed every ancestor id; rows kept the column). */
  ancestors: string;
  /** The Response object as JSON. */
  body: string;
  expires_at: number;
}

export interface ItemsTable {
  response_id: string;
  tenant: string;
  /** 0 for input items, 1 for output items: input comes first in a conversation. */
  kind: number;
  position: number;
  item_id: string;
  body: string;
}

export interface JobsTable {
  response_id: string;
  tenant: string;
  /** The backend whose worker slots this job uses. */
  backend: string;
  state: 'queued' | 'running' | 'done';
  attempts: number;
  lease_owner: string | null;
  /** Unix milliseconds; a running job whose lease expired is taken over. */
  lease_expires_at: number | null;
  cancel_requested: number;
  /** Unix milliseconds: queue order. */
  enqueued_at: number;
  /** JSON: what the worker needs to run the response (see `JobPayload`). */
  payload: string;
}

export interface ResponseEventsTable {
  response_id: string;
  sequence_number: number;
  type: string;
  /** The event exactly as it was streamed. */
  data: string;
}

export interface IdempotencyKeysTable {
  tenant: string;
  key: string;
  /** Hash of method, path and body: the same key with another request is refused. */
  fingerprint: string;
  state: 'pending' | 'done';
  /** Unix milliseconds until which a pending key belongs to the request that took it. */
  locked_until: number;
  /** JSON of the recorded outcome, once done. */
  outcome: string | null;
  /** The response whose event log replays the outcome, for outcomes that are streams. */
  response_id: string | null;
  /** Unix seconds. */
  expires_at: number;
}

/** Deployment-wide secrets (the reasoning encryption key when none is configured). */
export interface SecretsTable {
  name: string;
  value: string;
  created_at: number;
}

/** One row (id 1): how many times responses were deleted, for the chain caches of replicas. */
export interface ResponseDeletionsTable {
  id: number;
  total: number | string;
}

export interface Database {
  responses: ResponsesTable;
  items: ItemsTable;
  jobs: JobsTable;
  response_events: ResponseEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  secrets: SecretsTable;
  response_deletions: ResponseDeletionsTable;
}
