import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FerryConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { ChangeFeed } from '../../store/change-feed.js';
import type { ClaimedJob, Store, StoredEvent } from '../../store/types.js';
import { toStreamError } from '../backend-errors.js';
import type { JobPayload, ResponsePlan, ResponsesEngine } from '../engine.js';
import { ResponseBuilder } from '../response-builder.js';
import { EventLogWriter, toStoredEvent, type EventHub } from './event-log.js';

/** Why a running job was stopped before its backend finished. */
const CANCELLED = 'cancelled';
const SHUTDOWN = 'shutdown';
const LEASE_LOST = 'lease lost';

/** A background stream's first two events (`response.created`, `response.queued`) are logged at enqueue. */
export const QUEUED_EVENTS = 2;

interface RunningJob {
  backend: string;
  controller: AbortController;
  done: Promise<void>;
}

export interface WorkerDeps {
  store: Store;
  engine: ResponsesEngine;
  hub: EventHub;
  changes: ChangeFeed;
  config: FerryConfig;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * Runs background responses. Jobs are claimed from the store by lease, oldest first, within
 * each backend's concurrency; a lease is renewed while the job runs, so a crashed replica's
 * job is taken over once its lease runs out (and failed for good after `maxAttempts` starts).
 * Cancel requests reach a job at once when it runs in this process and within one poll
 * interval otherwise. On shutdown, new work stops, running jobs get a grace period, and the
 * rest go back to the queue.
 */
export class BackgroundWorker {
  /** This process's name on the leases it holds. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly deps: WorkerDeps;
  private readonly running = new Map<string, RunningJob>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  /**
   * Backends whose queue was empty at the last look, since no job was announced: a slot they
   * free needs no look (an empty claim costs a transaction). The poll clears it too, for jobs
   * nobody announces (a lease that ran out, a job another replica gave back).
   */
  private readonly drained = new Set<string>();
  /** Counts announcements, so a look that raced one does not mark its backends drained. */
  private announcements = 0;
  /** The poll also asks the store for cancel requests whose notice this replica missed. */
  private checkCancels = true;
  private stopping = false;
  private lastError: string | null = null;

  constructor(deps: WorkerDeps) {
    this.deps = deps;
  }

  start(): void {
    const { pollIntervalMs } = this.deps.config.background;
    this.deps.metrics?.backgroundJobs.watchQueueDepth(() => this.deps.store.countQueuedJobs());
    this.timer = setInterval(() => {
      this.checkCancels = true;
      this.wake();
    }, pollIntervalMs);
    this.timer.unref();
    this.wake();
  }

  /** Looks for work now: a job was queued (here, or announced by another replica). */
  wake(): void {
    this.announcements++;
    this.drained.clear();
    this.look();
  }

  private look(): void {
    if (this.stopping) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick()
      .catch((error: unknown) => {
        this.lastError = error instanceof Error ? error.message : String(error);
        this.deps.logger.error({ err: error }, 'background worker could not poll the store');
      })
      .finally(() => {
        this.ticking = undefined;
        if (this.again) {
          this.again = false;
          this.look();
        }
      });
  }

  /** Stops a job running in this process; true when there was one. */
  cancelLocal(responseId: string): boolean {
    const job = this.running.get(responseId);
    if (!job) return false;
    job.controller.abort(CANCELLED);
    return true;
  }

  /** Health for /readyz. */
  status(): { ok: boolean; running: number; lastError: string | null } {
    return {
      ok: !this.stopping && this.lastError === null,
      running: this.running.size,
      lastError: this.lastError,
    };
  }

  /** Graceful stop: no new jobs; running ones get `graceMs`, then go back to the queue. */
  async stop(graceMs = this.deps.config.background.shutdownGraceSeconds * 1000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    const all = () => Promise.allSettled([...this.running.values()].map((job) => job.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const job of this.running.values()) job.controller.abort(SHUTDOWN);
    await all();
  }

  private async tick(): Promise<void> {
    const { store } = this.deps;
    if (this.checkCancels) {
      this.checkCancels = false;
      // Cancel requests that arrived at another replica for jobs running here.
      for (const id of await store.cancelRequestedFor(this.owner)) this.cancelLocal(id);
    }
    while (!this.stopping) {
      const free = this.backendsWithFreeSlots().filter((backend) => !this.drained.has(backend));
      if (free.length === 0) break;
      const announcements = this.announcements;
      // A job without a stream has no events, so keeping the queued ones suits every job.
      const job = await store.claimJob(this.owner, free, this.leaseMs(), QUEUED_EVENTS);
      if (!job) {
        if (announcements === this.announcements) for (const backend of free) this.drained.add(backend);
        break;
      }
      this.launch(job);
    }
    this.lastError = null;
  }

  private backendsWithFreeSlots(): string[] {
    const { backends, background } = this.deps.config;
    const busy = new Map<string, number>();
    for (const job of this.running.values()) busy.set(job.backend, (busy.get(job.backend) ?? 0) + 1);
    return backends
      .map((backend) => backend.name)
      .filter(
        (name) => (busy.get(name) ?? 0) < (background.backendConcurrency[name] ?? background.concurrency),
      );
  }

  private leaseMs(): number {
    return this.deps.config.background.leaseSeconds * 1000;
  }

  private launch(job: ClaimedJob): void {
    const jobs = this.deps.metrics?.backgroundJobs;
    jobs?.started(Math.max(0, Date.now() / 1000 - job.response.created_at));
    if (job.attempts > 1) jobs?.retried('restarted');
    const controller = new AbortController();
    const entry: RunningJob = { backend: job.backend, controller, done: Promise.resolve() };
    this.running.set(job.responseId, entry);
    entry.done = this.run(job, controller)
      .catch((error: unknown) => {
        // The store failed under us; the lease runs out and the job starts again elsewhere.
        this.deps.logger.error(
          { err: error, responseId: job.responseId },
          'background job could not be saved',
        );
      })
      .finally(() => {
        this.running.delete(job.responseId);
        this.look();
      });
  }

  private async run(job: ClaimedJob, controller: AbortController): Promise<void> {
    const { store, hub, config, logger } = this.deps;
    const payload = JSON.parse(job.payload) as JobPayload;
    const heartbeat = setInterval(() => {
      store.renewLease(job.responseId, this.owner, this.leaseMs()).then(
        (state) => {
          if (state === 'lost') controller.abort(LEASE_LOST);
          if (state === 'cancel_requested') controller.abort(CANCELLED);
        },
        (error: unknown) =>
          logger.warn({ err: error, responseId: job.responseId }, 'could not renew a job lease'),
      );
    }, this.leaseMs() / 3);
    const eventsWritten = () => this.deps.changes.publish({ kind: 'events', responseId: job.responseId });
    const writer = payload.stream
      ? new EventLogWriter(store, hub, job.responseId, {
          flushMs: config.background.eventFlushMs,
          onFlushed: eventsWritten,
          onFlushError: (error) =>
            logger.warn({ err: error, responseId: job.responseId }, 'could not write stream events yet'),
        })
      : undefined;
    const startSequence = payload.stream ? QUEUED_EVENTS : 0;
    // The plan carries the request's tool shapes and reasoning options; a job whose plan cannot
    // be rebuilt (its model is gone) still gets a builder, to fail with the reason.
    let plan: ResponsePlan | undefined;
    let planError: unknown;
    try {
      plan = await this.deps.engine.restore(job.tenant, payload, job.response);
    } catch (error) {
      planError = error;
    }
    const builder = plan
      ? this.deps.engine.createBuilder(plan, { sink: writer?.sink, startSequence })
      : new ResponseBuilder(job.response, {
          sink: writer?.sink,
          estimatedInputTokens: payload.estimatedInputTokens,
          startSequence,
        });
    try {
      if (job.cancelRequested) {
        builder.cancel({ announce: true });
      } else if (job.attempts > config.background.maxAttempts) {
        this.deps.metrics?.backgroundJobs.expired();
        builder.fail({
          type: 'server_error',
          code: 'job_abandoned',
          message: `The background job was interrupted ${job.attempts - 1} times (its gateway process stopped) and has been given up.`,
          param: null,
        });
      } else {
        builder.inProgress();
        await store.markInProgress(job.tenant, builder.response);
        if (plan) await this.generate(plan, builder, controller.signal);
        else builder.fail(toStreamError(planError));
        const reason: unknown = controller.signal.reason;
        if (reason === SHUTDOWN) {
          await store.releaseJob(job.responseId, this.owner);
          this.deps.metrics?.backgroundJobs.finished(job.response.model, 'released');
          return;
        }
        if (reason === LEASE_LOST) return;
      }
      await this.finish(job, builder, writer);
    } finally {
      clearInterval(heartbeat);
      writer?.close();
    }
  }

  /** Opens the backend and drives it; every failure ends in the builder, never as a throw. */
  private async generate(plan: ResponsePlan, builder: ResponseBuilder, signal: AbortSignal): Promise<void> {
    const { engine } = this.deps;
    try {
      const opened = await engine.open(plan, signal);
      // Followers see a cancelled stream end properly; a shutdown or a lost lease ends nothing.
      await engine.drive(opened, builder, signal, { announceCancel: () => signal.reason === CANCELLED });
    } catch (error) {
      if (signal.aborted) {
        builder.cancel({ announce: signal.reason === CANCELLED });
        return;
      }
      builder.fail(toStreamError(error));
    }
  }

  /** Writes the final response and the rest of the log in one transaction; a cancel wins over a late finish. */
  private async finish(
    job: ClaimedJob,
    builder: ResponseBuilder,
    writer: EventLogWriter | undefined,
  ): Promise<void> {
    const pending = writer ? await writer.drain() : [];
    let terminal: StoredEvent | undefined;
    const outcome = await this.deps.store.finishJob(
      job.tenant,
      job.responseId,
      this.owner,
      (cancelRequested) => {
        if (cancelRequested && builder.response.status !== 'cancelled') builder.cancel();
        terminal = writer ? toStoredEvent(builder.terminalEvent()) : undefined;
        return { response: builder.response, events: terminal ? [...pending, terminal] : pending };
      },
    );
    this.deps.metrics?.backgroundJobs.finished(
      job.response.model,
      outcome === 'finished' ? builder.response.status : 'lease_lost',
    );
    if (outcome === 'finished' && terminal) {
      writer!.publish([terminal]);
      this.deps.changes.publish({ kind: 'events', responseId: job.responseId });
    }
  }
}
