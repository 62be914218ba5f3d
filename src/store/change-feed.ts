import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { SqlStore } from './sql-store.js';

/** Something other replicas may want to act on at once instead of at their next poll. */
export type Change =
  /** New events of a background stream were written: followers should read them. */
  | { kind: 'events'; responseId: string }
  /** A running job was asked to stop: its worker should abort. */
  | { kind: 'cancel'; responseId: string }
  /** A job was queued: idle workers should look. */
  | { kind: 'job' };

export interface ChangeFeed {
  /** Acts on the change here at once, and tells the other replicas. */
  publish(change: Change): void;
  close(): Promise<void>;
}

const CHANNEL = 'ferry_changes';
const RECONNECT_MS = [250, 1_000, 2_000, 5_000, 10_000];

/**
 * Tells every replica about changes. With SQLite there is one process, so a change is only
 * acted on locally. With PostgreSQL it also goes out by NOTIFY and each replica LISTENs on a
 * connection of its own (reconnecting when it drops). Notices are a shortcut, never the only
 * way: workers and followers still poll, so a notice lost during a reconnect only costs time.
 */
export function openChangeFeed(
  store: SqlStore,
  database: string,
  onChange: (change: Change) => void,
  logger: Logger,
): ChangeFeed {
  const deliver = (change: Change) => {
    try {
      onChange(change);
    } catch (error) {
      logger.error({ err: error, change }, 'could not act on a change');
    }
  };
  if (store.dialect === 'sqlite') {
    return { publish: (change) => queueMicrotask(() => deliver(change)), close: async () => undefined };
  }
  return new PostgresChangeFeed(store, database, deliver, logger);
}

class PostgresChangeFeed implements ChangeFeed {
  /** Marks this replica's own notices, which it has already acted on. */
  private readonly replica = randomBytes(6).toString('hex');
  private client: pg.Client | undefined;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: SqlStore,
    private readonly database: string,
    private readonly deliver: (change: Change) => void,
    private readonly logger: Logger,
  ) {
    void this.listen();
  }

  publish(change: Change): void {
    queueMicrotask(() => this.deliver(change));
    const payload = JSON.stringify({ ...change, from: this.replica });
    sql`select pg_notify(${CHANNEL}, ${payload})`.execute(this.store.db).catch((error: unknown) => {
      this.logger.warn(
        { err: error },
        'could not notify the other replicas; they will notice at their next poll',
      );
    });
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.database });
    this.client = client;
    const retry = (error?: unknown) => {
      if (this.closed || this.client !== client) return;
      this.client = undefined;
      client.removeAllListeners();
      // A dying connection may still report errors: they are expected now.
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      const delay = RECONNECT_MS[Math.min(this.failures++, RECONNECT_MS.length - 1)]!;
      this.logger.warn({ err: error, retryInMs: delay }, 'lost the change feed connection to PostgreSQL');
      this.timer = setTimeout(() => void this.listen(), delay);
      this.timer.unref();
    };
    client.on('error', retry);
    client.on('end', () => retry());
    client.on('notification', (message) => {
      if (message.channel !== CHANNEL || !message.payload) return;
      try {
        const { from, ...change } = JSON.parse(message.payload) as Change & { from: string };
        if (from !== this.replica) this.deliver(change as Change);
      } catch (error) {
        this.logger.warn({ err: error }, 'ignored a malformed change notice');
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.failures = 0;
    } catch (error) {
      retry(error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}
