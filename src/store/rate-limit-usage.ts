import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { PublishedUsage, SharedUsage, Usage } from '../limits/rate-limiter.js';
import { WINDOW_MS } from '../limits/sliding-window.js';

export interface RateLimitUsageTable {
  /** The replica that counted (random per process). */
  replica: string;
  /** `key:<id>` or `tenant:<name>`. */
  subject: string;
  /** Start of the minute window `current_count` belongs to (unix ms). */
  window_start: number;
  current_count: number;
  previous_count: number;
  in_flight: number;
  /** Unix ms of the replica's last publication of this row. */
  updated_at: number;
}

type UsageDatabase = { rate_limit_usage: RateLimitUsageTable };

/**
 * Rate-limit counts shared through the database: one row per replica and subject, replaced by
 * its replica at every exchange, summed by the others. One upsert and one aggregate query per
 * exchange, whatever the traffic.
 */
export class SqlRateLimitUsage implements SharedUsage {
  private readonly db: Kysely<Database & UsageDatabase>;

  constructor(
    db: Kysely<Database>,
    readonly replica: string,
  ) {
    this.db = db.withTables<UsageDatabase>();
  }

  async publish(rows: PublishedUsage[], now: number): Promise<void> {
    const values = rows.map((row) => ({
      replica: this.replica,
      subject: row.subject,
      window_start: row.windowStart,
      current_count: row.current,
      previous_count: row.previous,
      in_flight: row.inFlight,
      updated_at: now,
    }));
    for (let start = 0; start < values.length; start += 200) {
      await this.db
        .insertInto('rate_limit_usage')
        .values(values.slice(start, start + 200))
        .onConflict((conflict) =>
          conflict.columns(['replica', 'subject']).doUpdateSet((eb) => ({
            window_start: eb.ref('excluded.window_start'),
            current_count: eb.ref('excluded.current_count'),
            previous_count: eb.ref('excluded.previous_count'),
            in_flight: eb.ref('excluded.in_flight'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
  }

  async collect(windowStart: number, freshSince: number): Promise<Map<string, Usage>> {
    const previousWindow = windowStart - WINDOW_MS;
    // A row last written in the previous window counts its `current` as this window's `previous`.
    const rows = await this.db
      .selectFrom('rate_limit_usage')
      .select([
        'subject',
        sql<number>`sum(case when window_start = ${windowStart} then current_count else 0 end)`.as('current'),
        sql<number>`sum(case when window_start = ${windowStart} then previous_count when window_start = ${previousWindow} then current_count else 0 end)`.as(
          'previous',
        ),
        sql<number>`sum(case when updated_at >= ${freshSince} then in_flight else 0 end)`.as('in_flight'),
      ])
      .where('replica', '<>', this.replica)
      .where((eb) => eb.or([eb('window_start', '>=', previousWindow), eb('updated_at', '>=', freshSince)]))
      .groupBy('subject')
      .execute();
    const usage = new Map<string, Usage>();
    for (const row of rows) {
      usage.set(row.subject, {
        current: Number(row.current),
        previous: Number(row.previous),
        inFlight: Number(row.in_flight),
      });
    }
    return usage;
  }

  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('rate_limit_usage').where('updated_at', '<', before).execute();
  }
}
