import type { FerryConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/types.js';

/**
 * Purges what has outlived `retentionSeconds` (responses with their items, event logs and jobs)
 * and expired idempotency keys, in bounded batches so a large backlog never holds the database
 * for long. With PostgreSQL, one replica at a time does it (the store takes an advisory lock).
 */
export class RetentionJanitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly config: FerryConfig,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.config.retention.purgeIntervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** One purge round: batches until nothing more is due (or the janitor stops). */
  runOnce(): Promise<void> {
    this.running ??= (async () => {
      const { purgeBatchSize } = this.config.retention;
      let purged = 0;
      try {
        for (;;) {
          const round = await this.store.purgeExpired(Math.floor(Date.now() / 1000), purgeBatchSize);
          purged += round.responses + round.idempotencyKeys;
          const more = round.responses === purgeBatchSize || round.idempotencyKeys === purgeBatchSize;
          if (!more || this.stopped) break;
          // Let other work at the database between batches.
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        if (purged) this.logger.info({ purged }, 'purged expired responses and idempotency keys');
      } catch (error) {
        this.logger.warn({ err: error }, 'could not purge expired data; will try again');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
