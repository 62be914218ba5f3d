import type { StreamEvent } from '../../api/wire.js';
import type { Store, StoredEvent } from '../../store/types.js';

/**
 * The event log of background streams.
 *
 * A running job's `EventLogWriter` serialises each event once, hands it at once to followers in
 * this process (through the `EventHub`) and writes the log to the database in batches, never
 * one row per token. `followEvents` replays the log from any point and then follows it live:
 * from the hub when the job runs here, from the database when it runs on another replica.
 * Both sources carry the same bytes, so a replay is identical to the live stream.
 */

const TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete']);

export function isTerminalEvent(type: string): boolean {
  return TERMINAL.has(type);
}

export function toStoredEvent(event: StreamEvent): StoredEvent {
  return { sequence: event.sequence_number, type: event.type, data: JSON.stringify(event) };
}

type Listener = (event: StoredEvent) => void;

interface LiveLog {
  /** Events emitted but not yet in the database. */
  pending: StoredEvent[];
  listeners: Set<Listener>;
  /** Whether a job in this process is writing this log now. */
  writing: boolean;
}

/** Live events of the jobs running in this process, by response id. */
export class EventHub {
  private readonly logs = new Map<string, LiveLog>();
  /** Wakes followers when the database may hold new events (a flush here, a notice from elsewhere). */
  private readonly nudges = new Map<string, Set<() => void>>();

  /** Starts writing a log (a job begins here); followers that came early are kept. */
  open(responseId: string): LiveLog {
    const log = this.entry(responseId);
    log.writing = true;
    log.pending.length = 0;
    return log;
  }

  /** The job is done: its events are in the database. */
  close(responseId: string): void {
    const log = this.logs.get(responseId);
    if (!log) return;
    log.writing = false;
    log.pending.length = 0;
    this.forget(responseId);
  }

  /**
   * Subscribes to a response's live events; returns the events emitted but not yet stored, so
   * a follower that reads the database next misses nothing in between.
   */
  subscribe(responseId: string, listener: Listener): { pending: StoredEvent[]; unsubscribe(): void } {
    const log = this.entry(responseId);
    log.listeners.add(listener);
    return {
      pending: [...log.pending],
      unsubscribe: () => {
        log.listeners.delete(listener);
        this.forget(responseId);
      },
    };
  }

  /** Lets followers of `responseId` know that the database may hold new events. */
  nudge(responseId: string): void {
    for (const wake of this.nudges.get(responseId) ?? []) wake();
  }

  onNudge(responseId: string, wake: () => void): () => void {
    let set = this.nudges.get(responseId);
    if (!set) {
      set = new Set();
      this.nudges.set(responseId, set);
    }
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0) this.nudges.delete(responseId);
    };
  }

  private entry(responseId: string): LiveLog {
    let log = this.logs.get(responseId);
    if (!log) {
      log = { pending: [], listeners: new Set(), writing: false };
      this.logs.set(responseId, log);
    }
    return log;
  }

  private forget(responseId: string): void {
    const log = this.logs.get(responseId);
    if (log && !log.writing && log.listeners.size === 0) this.logs.delete(responseId);
  }
}

/** Collects a running job's events: live to the hub at once, to the database every `flushMs`. */
export class EventLogWriter {
  private readonly log: LiveLog;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly hub: EventHub,
    private readonly responseId: string,
    private readonly options: {
      flushMs: number;
      /** New events are in the database: followers elsewhere may read them. */
      onFlushed: () => void;
      onFlushError: (error: unknown) => void;
    },
  ) {
    this.log = hub.open(responseId);
  }

  /** The builder's sink. Serialises at once: the event object may change afterwards. */
  readonly sink = (event: StreamEvent): void => {
    const stored = toStoredEvent(event);
    this.log.pending.push(stored);
    this.publish([stored]);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.flushMs);
  };

  /** Hands events to the followers in this process. */
  publish(events: readonly StoredEvent[]): void {
    for (const event of events) for (const listener of this.log.listeners) listener(event);
  }

  /** Writes the pending events; on failure they stay pending for the next try. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const batch = this.log.pending.slice();
    if (batch.length === 0) return Promise.resolve();
    this.flushing = this.store
      .appendEvents(this.responseId, batch)
      .then(
        () => {
          this.log.pending.splice(0, batch.length);
          this.options.onFlushed();
        },
        (error: unknown) => this.options.onFlushError(error),
      )
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  /** Stops flushing and hands over what is still pending, to be written with the job's final state. */
  async drain(): Promise<StoredEvent[]> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    return this.log.pending.slice();
  }

  /** The log is complete in the database. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.hub.close(this.responseId);
    this.hub.nudge(this.responseId);
  }
}

export interface FollowOptions {
  store: Store;
  hub: EventHub;
  responseId: string;
  /** Replay events after this sequence number (-1: everything). */
  startingAfter: number;
  signal: AbortSignal;
  /** How often to look at the database when nothing else wakes the follower. */
  pollMs: number;
}

/** Replays and then follows a background stream until its terminal event (or the signal). */
export async function* followEvents(options: FollowOptions): AsyncGenerator<StoredEvent> {
  const { store, hub, responseId, signal } = options;
  const ready = new Map<number, StoredEvent>();
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  const subscription = hub.subscribe(responseId, (event) => {
    ready.set(event.sequence, event);
    poke();
  });
  const stopNudges = hub.onNudge(responseId, poke);
  signal.addEventListener('abort', poke, { once: true });
  for (const event of subscription.pending) ready.set(event.sequence, event);

  let last = options.startingAfter;
  try {
    while (!signal.aborted) {
      // Emit everything contiguous we hold; otherwise fill the gap from the database.
      let next = ready.get(last + 1);
      if (!next) {
        for (const event of await store.readEvents(responseId, last, 500)) ready.set(event.sequence, event);
        next = ready.get(last + 1);
      }
      if (next) {
        for (const [sequence] of ready) if (sequence <= last + 1) ready.delete(sequence);
        last = next.sequence;
        yield next;
        if (isTerminalEvent(next.type)) return;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    subscription.unsubscribe();
    stopNudges();
    signal.removeEventListener('abort', poke);
  }
}
