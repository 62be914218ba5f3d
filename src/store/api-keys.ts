import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * API keys stored in the database (`ferry keys create|list|revoke`). Only a key's SHA-256 hash
 * and a short hint for display are kept; the key itself is shown once, when created.
 */

export interface ApiKeysTable {
  id: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  /** What `ferry keys list` shows: the key's first and last characters. */
  hint: string;
  tenant: string;
  name: string | null;
  requests_per_minute: number | null;
  concurrent_requests: number | null;
  /** Unix seconds. */
  created_at: number;
  revoked_at: number | null;
}

export interface StoredApiKey {
  id: string;
  hint: string;
  tenant: string;
  name: string | null;
  requestsPerMinute: number | null;
  concurrentRequests: number | null;
  createdAt: number;
  revokedAt: number | null;
}

export interface NewApiKey extends Omit<StoredApiKey, 'revokedAt'> {
  hash: string;
}

export interface ApiKeyStore {
  create(key: NewApiKey): Promise<void>;
  /** Every key, newest first; only one tenant's when given. */
  list(tenant?: string): Promise<StoredApiKey[]>;
  /** Revokes a key and returns it; undefined when no key has that id. Revoking twice keeps the first time. */
  revoke(id: string, at: number): Promise<StoredApiKey | undefined>;
  /** The key with this hash, revoked or not. */
  findByHash(hash: string): Promise<StoredApiKey | undefined>;
  /** Whether any key was ever created (revoked ones count: revoking every key never opens the gateway). */
  hasAny(): Promise<boolean>;
}

type KeyDatabase = { api_keys: ApiKeysTable };

export class SqlApiKeyStore implements ApiKeyStore {
  private readonly db: Kysely<Database & KeyDatabase>;

  /** Works over any Kysely instance of a migrated Ferry database (`SqlStore.db`). */
  constructor(db: Kysely<Database>) {
    this.db = db.withTables<KeyDatabase>();
  }

  async create(key: NewApiKey): Promise<void> {
    await this.db
      .insertInto('api_keys')
      .values({
        id: key.id,
        hash: key.hash,
        hint: key.hint,
        tenant: key.tenant,
        name: key.name,
        requests_per_minute: key.requestsPerMinute,
        concurrent_requests: key.concurrentRequests,
        created_at: key.createdAt,
        revoked_at: null,
      })
      .execute();
  }

  async list(tenant?: string): Promise<StoredApiKey[]> {
    let query = this.db.selectFrom('api_keys').selectAll().orderBy('created_at', 'desc').orderBy('id');
    if (tenant !== undefined) query = query.where('tenant', '=', tenant);
    return (await query.execute()).map(toStoredKey);
  }

  async revoke(id: string, at: number): Promise<StoredApiKey | undefined> {
    await this.db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    const row = await this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toStoredKey(row) : undefined;
  }

  async findByHash(hash: string): Promise<StoredApiKey | undefined> {
    const row = await this.db.selectFrom('api_keys').selectAll().where('hash', '=', hash).executeTakeFirst();
    return row ? toStoredKey(row) : undefined;
  }

  async hasAny(): Promise<boolean> {
    return (await this.db.selectFrom('api_keys').select('id').limit(1).executeTakeFirst()) !== undefined;
  }
}

function toStoredKey(row: ApiKeysTable): StoredApiKey {
  return {
    id: row.id,
    hint: row.hint,
    tenant: row.tenant,
    name: row.name,
    requestsPerMinute: row.requests_per_minute,
    concurrentRequests: row.concurrent_requests,
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}
