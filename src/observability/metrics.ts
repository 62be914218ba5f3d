import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every Prometheus metric Ferry exports, in one registry per gateway (so several gateways in
 * one process, as in the tests, never share counters), with one method per thing that happens.
 *
 * Label values are bounded: routes are patterns (`/v1/responses/:id`), never ids; models go
 * through `modelLabel` (configured or served models only); backends and tenants are names an
 * operator configured. docs/operations.md explains each metric; ops/grafana/ferry.json charts them.
 */

export type RunMode = 'blocking' | 'stream' | 'background';
/** How a response run ended; `rejected` is a client-caused refusal before generation (4xx). */
export type RunStatus = 'completed' | 'incomplete' | 'failed' | 'cancelled' | 'rejected';
export type BackendOperation = 'chat' | 'chat_stream' | 'list_models';
export type IdempotencyOutcome = 'hit' | 'miss' | 'conflict' | 'in_progress';
export type AuthFailure = 'missing' | 'invalid' | 'revoked';
export type RateLimitScope = 'key' | 'tenant';
export type RateLimitKind = 'requests_per_minute' | 'concurrent_requests';

/** Label for a model name that was never configured nor served. */
export const UNKNOWN_MODEL = '(unknown)';
/** Label once `MAX_MODEL_LABELS` distinct models have been seen. */
export const OTHER_MODEL = '(other)';
const MAX_MODEL_LABELS = 200;

const SECONDS_HTTP = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const SECONDS_GENERATION = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];
const SECONDS_FIRST_TOKEN = [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120];
const SECONDS_PER_TOKEN = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1];
const SECONDS_GAP = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
const SECONDS_DB = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
const SECONDS_QUEUE = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

export interface MetricsOptions {
  /** Models from the configuration: always their own label. */
  configuredModels?: Iterable<string>;
  /** Ferry's version, for `ferry_build_info`. */
  version?: string;
  /** Node's process and event-loop metrics (off in unit tests that build many registries). */
  processMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly knownModels = new Set<string>();

  // HTTP
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;
  private readonly httpInFlight: Gauge;
  // Access and limits
  private readonly authFailures: Counter<'reason'>;
  private readonly rateLimitRejections: Counter<'scope' | 'limit' | 'tenant'>;
  private readonly rateLimitSyncErrors: Counter;
  // Responses
  private readonly responses: Counter<'model' | 'mode' | 'status'>;
  private readonly responseErrors: Counter<'model' | 'mode' | 'code'>;
  private readonly responseDuration: Histogram<'model' | 'mode'>;
  private readonly responsesActive: Gauge<'mode'>;
  private readonly timeToFirstToken: Histogram<'model'>;
  private readonly timePerOutputToken: Histogram<'model'>;
  private readonly interTokenGapMax: Histogram<'model'>;
  private readonly inputTokens: Counter<'model'>;
  private readonly outputTokens: Counter<'model'>;
  private readonly reasoningTokens: Counter<'model'>;
  private readonly cachedInputTokens: Counter<'model'>;
  private readonly tenantTokens: Counter<'tenant' | 'type'>;
  private readonly streamDisconnects: Counter<'mode'>;
  // Backends
  private readonly backendRequests: Counter<'backend' | 'model' | 'operation' | 'outcome'>;
  private readonly backendDuration: Histogram<'backend' | 'model' | 'operation' | 'outcome'>;
  private readonly backendUp: Gauge<'backend'>;
  // Background jobs (the job worker calls `backgroundJobs`)
  private readonly jobsEnqueued: Counter<'model'>;
  private readonly jobsRunning: Gauge;
  private readonly jobsQueued: Gauge;
  private readonly jobsFinished: Counter<'model' | 'status'>;
  private readonly jobsRetried: Counter<'reason'>;
  private readonly jobsExpired: Counter;
  private readonly jobsQueueWait: Histogram;
  // Idempotency, database
  private readonly idempotency: Counter<'outcome'>;
  private readonly dbDuration: Histogram<'operation' | 'table'>;
  private readonly dbErrors: Counter<'operation' | 'table'>;

  private backendHealth: (() => { name: string; ok: boolean }[]) | undefined;
  private queueDepth: (() => Promise<number> | number) | undefined;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    for (const model of options.configuredModels ?? []) this.knownModels.add(model);

    new Gauge({
      name: 'ferry_build_info',
      help: 'Always 1; the labels say which Ferry and Node.js versions run.',
      labelNames: ['version', 'node_version'],
      registers,
    }).set({ version: options.version ?? 'unknown', node_version: process.version }, 1);

    this.httpRequests = new Counter({
      name: 'ferry_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status (499: the client left first).',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'ferry_http_request_duration_seconds',
      help: 'Time from a request arriving to its response ending (streams: the whole stream).',
      labelNames: ['method', 'route', 'status_class'],
      buckets: SECONDS_HTTP,
      registers,
    });
    this.httpInFlight = new Gauge({
      name: 'ferry_http_requests_in_flight',
      help: 'HTTP requests being served right now (open streams included).',
      registers,
    });

    this.authFailures = new Counter({
      name: 'ferry_auth_failures_total',
      help: 'Requests refused with 401, by reason: missing, invalid or revoked key.',
      labelNames: ['reason'],
      registers,
    });
    this.rateLimitRejections = new Counter({
      name: 'ferry_rate_limit_rejections_total',
      help: 'Requests refused with 429, by scope (key, tenant), limit and tenant.',
      labelNames: ['scope', 'limit', 'tenant'],
      registers,
    });
    this.rateLimitSyncErrors = new Counter({
      name: 'ferry_rate_limit_sync_errors_total',
      help: 'Failed exchanges of rate-limit counts with the other replicas (limits fall back to this replica).',
      registers,
    });

    this.responses = new Counter({
      name: 'ferry_responses_total',
      help: 'Response runs by model, mode (blocking, stream, background) and final status.',
      labelNames: ['model', 'mode', 'status'],
      registers,
    });
    this.responseErrors = new Counter({
      name: 'ferry_response_errors_total',
      help: 'Failed or rejected response runs, by model, mode and error code.',
      labelNames: ['model', 'mode', 'code'],
      registers,
    });
    this.responseDuration = new Histogram({
      name: 'ferry_response_duration_seconds',
      help: 'Time from sending a response run to a backend until it ended.',
      labelNames: ['model', 'mode'],
      buckets: SECONDS_GENERATION,
      registers,
    });
    this.responsesActive = new Gauge({
      name: 'ferry_responses_active',
      help: 'Response runs generating on a backend right now, by mode.',
      labelNames: ['mode'],
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'ferry_time_to_first_token_seconds',
      help: 'Streamed runs: time from sending to a backend to the first generated text, reasoning or tool call.',
      labelNames: ['model'],
      buckets: SECONDS_FIRST_TOKEN,
      registers,
    });
    this.timePerOutputToken = new Histogram({
      name: 'ferry_time_per_output_token_seconds',
      help: 'Streamed runs: mean time between output tokens after the first (generation speed).',
      labelNames: ['model'],
      buckets: SECONDS_PER_TOKEN,
      registers,
    });
    this.interTokenGapMax = new Histogram({
      name: 'ferry_inter_token_gap_max_seconds',
      help: 'Streamed runs: the longest silence between two generated chunks (stalls).',
      labelNames: ['model'],
      buckets: SECONDS_GAP,
      registers,
    });
    this.inputTokens = new Counter({
      name: 'ferry_input_tokens_total',
      help: 'Prompt tokens processed, by model (as the backend reported them, else estimated).',
      labelNames: ['model'],
      registers,
    });
    this.outputTokens = new Counter({
      name: 'ferry_output_tokens_total',
      help: 'Tokens generated, by model (reasoning tokens included).',
      labelNames: ['model'],
      registers,
    });
    this.reasoningTokens = new Counter({
      name: 'ferry_reasoning_tokens_total',
      help: 'Reasoning tokens generated, by model (a part of ferry_output_tokens_total).',
      labelNames: ['model'],
      registers,
    });
    this.cachedInputTokens = new Counter({
      name: 'ferry_cached_input_tokens_total',
      help: 'Prompt tokens the backend served from its cache, by model (a part of ferry_input_tokens_total).',
      labelNames: ['model'],
      registers,
    });
    this.tenantTokens = new Counter({
      name: 'ferry_tenant_tokens_total',
      help: 'Tokens by tenant and type (input, output), for usage accounting.',
      labelNames: ['tenant', 'type'],
      registers,
    });
    this.streamDisconnects = new Counter({
      name: 'ferry_stream_disconnects_total',
      help: 'Event streams whose client left before the end, by mode (stream: the run was cancelled).',
      labelNames: ['mode'],
      registers,
    });

    this.backendRequests = new Counter({
      name: 'ferry_backend_requests_total',
      help: 'Calls to backends by backend, model, operation and outcome (ok, timeout, unavailable, …).',
      labelNames: ['backend', 'model', 'operation', 'outcome'],
      registers,
    });
    this.backendDuration = new Histogram({
      name: 'ferry_backend_request_duration_seconds',
      help: 'Duration of backend calls (streams: until the last byte), by backend, model, operation and outcome.',
      labelNames: ['backend', 'model', 'operation', 'outcome'],
      buckets: SECONDS_GENERATION,
      registers,
    });
    this.backendUp = new Gauge({
      name: 'ferry_backend_up',
      help: '1 when the backend answered its last call or probe, 0 when it could not be reached.',
      labelNames: ['backend'],
      registers,
      collect: () => {
        for (const backend of this.backendHealth?.() ?? [])
          this.backendUp.set({ backend: backend.name }, backend.ok ? 1 : 0);
      },
    });

    this.jobsEnqueued = new Counter({
      name: 'ferry_background_jobs_enqueued_total',
      help: 'Background responses queued, by model.',
      labelNames: ['model'],
      registers,
    });
    this.jobsRunning = new Gauge({
      name: 'ferry_background_jobs_running',
      help: 'Background responses this replica is running right now.',
      registers,
    });
    this.jobsQueued = new Gauge({
      name: 'ferry_background_jobs_queued',
      help: 'Background responses waiting for a worker (all replicas).',
      registers,
      collect: async () => {
        if (this.queueDepth) this.jobsQueued.set(await this.queueDepth());
      },
    });
    this.jobsFinished = new Counter({
      name: 'ferry_background_jobs_finished_total',
      help: 'Background responses finished, by model and final status.',
      labelNames: ['model', 'status'],
      registers,
    });
    this.jobsRetried = new Counter({
      name: 'ferry_background_jobs_retried_total',
      help: 'Background jobs run again, by reason (e.g. lease_expired: their replica stopped).',
      labelNames: ['reason'],
      registers,
    });
    this.jobsExpired = new Counter({
      name: 'ferry_background_jobs_expired_total',
      help: 'Background jobs given up on (too old, too many attempts) and failed.',
      registers,
    });
    this.jobsQueueWait = new Histogram({
      name: 'ferry_background_job_queue_wait_seconds',
      help: 'Time background jobs waited between being queued and starting.',
      buckets: SECONDS_QUEUE,
      registers,
    });

    this.idempotency = new Counter({
      name: 'ferry_idempotency_requests_total',
      help: 'Requests with an Idempotency-Key, by outcome (hit: answered from the store; miss; conflict; in_progress).',
      labelNames: ['outcome'],
      registers,
    });
    this.dbDuration = new Histogram({
      name: 'ferry_db_query_duration_seconds',
      help: 'Database query duration by operation (select, insert, update, delete, other) and table.',
      labelNames: ['operation', 'table'],
      buckets: SECONDS_DB,
      registers,
    });
    this.dbErrors = new Counter({
      name: 'ferry_db_query_errors_total',
      help: 'Database queries that failed, by operation and table.',
      labelNames: ['operation', 'table'],
      registers,
    });

    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The label for a model: its name when configured or served before, else a placeholder. */
  modelLabel(model: string | undefined, served = false): string {
    if (!model) return UNKNOWN_MODEL;
    if (this.knownModels.has(model)) return model;
    if (!served) return UNKNOWN_MODEL;
    if (this.knownModels.size >= MAX_MODEL_LABELS) return OTHER_MODEL;
    this.knownModels.add(model);
    return model;
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status });
    this.httpDuration.observe({ method, route, status_class: `${Math.floor(status / 100)}xx` }, seconds);
  }

  httpStarted(): void {
    this.httpInFlight.inc();
  }

  httpEnded(): void {
    this.httpInFlight.dec();
  }

  authFailed(reason: AuthFailure): void {
    this.authFailures.inc({ reason });
  }

  rateLimited(scope: RateLimitScope, limit: RateLimitKind, tenant: string): void {
    this.rateLimitRejections.inc({ scope, limit, tenant });
  }

  rateLimitSyncFailed(): void {
    this.rateLimitSyncErrors.inc();
  }

  runStarted(mode: RunMode): void {
    this.responsesActive.inc({ mode });
  }

  runEnded(mode: RunMode): void {
    this.responsesActive.dec({ mode });
  }

  /** One response run's outcome; `seconds` is undefined when no backend call was made. */
  response(
    model: string,
    mode: RunMode,
    status: RunStatus,
    seconds: number | undefined,
    errorCode?: string | null,
  ): void {
    this.responses.inc({ model, mode, status });
    if (errorCode) this.responseErrors.inc({ model, mode, code: errorCode });
    if (seconds !== undefined) this.responseDuration.observe({ model, mode }, seconds);
  }

  tokens(
    model: string,
    tenant: string,
    usage: { input: number; output: number; reasoning: number; cached: number },
  ): void {
    if (usage.input) {
      this.inputTokens.inc({ model }, usage.input);
      this.tenantTokens.inc({ tenant, type: 'input' }, usage.input);
    }
    if (usage.output) {
      this.outputTokens.inc({ model }, usage.output);
      this.tenantTokens.inc({ tenant, type: 'output' }, usage.output);
    }
    if (usage.reasoning) this.reasoningTokens.inc({ model }, usage.reasoning);
    if (usage.cached) this.cachedInputTokens.inc({ model }, usage.cached);
  }

  /** Streamed timing of one run; undefined values were not measurable (e.g. one token only). */
  streamTiming(
    model: string,
    firstTokenSeconds: number,
    perTokenSeconds: number | undefined,
    maxGapSeconds: number | undefined,
  ): void {
    this.timeToFirstToken.observe({ model }, firstTokenSeconds);
    if (perTokenSeconds !== undefined) this.timePerOutputToken.observe({ model }, perTokenSeconds);
    if (maxGapSeconds !== undefined) this.interTokenGapMax.observe({ model }, maxGapSeconds);
  }

  streamDisconnected(mode: RunMode): void {
    this.streamDisconnects.inc({ mode });
  }

  backendCall(
    backend: string,
    model: string,
    operation: BackendOperation,
    outcome: string,
    seconds: number,
  ): void {
    this.backendRequests.inc({ backend, model, operation, outcome });
    this.backendDuration.observe({ backend, model, operation, outcome }, seconds);
  }

  /** Where `ferry_backend_up` reads each backend's health when scraped. */
  watchBackends(health: () => { name: string; ok: boolean }[]): void {
    this.backendHealth = health;
  }

  /** For the job worker: background-job lifecycle events. */
  readonly backgroundJobs = {
    enqueued: (model: string) => this.jobsEnqueued.inc({ model: this.modelLabel(model, true) }),
    started: (queuedSeconds: number) => {
      this.jobsRunning.inc();
      this.jobsQueueWait.observe(queuedSeconds);
    },
    finished: (model: string, status: string) => {
      this.jobsRunning.dec();
      this.jobsFinished.inc({ model: this.modelLabel(model, true), status });
    },
    retried: (reason: string) => this.jobsRetried.inc({ reason }),
    expired: (count = 1) => this.jobsExpired.inc(count),
    /** How to count the queue (all replicas) when scraped, e.g. a `count(*)` on the jobs table. */
    watchQueueDepth: (depth: () => Promise<number> | number) => {
      this.queueDepth = depth;
    },
  };

  /** For the idempotency layer: what happened to a request carrying an Idempotency-Key. */
  idempotencyRequest(outcome: IdempotencyOutcome): void {
    this.idempotency.inc({ outcome });
  }

  dbQuery(operation: string, table: string, seconds: number, failed: boolean): void {
    this.dbDuration.observe({ operation, table }, seconds);
    if (failed) this.dbErrors.inc({ operation, table });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  expose(): Promise<string> {
    return this.registry.metrics();
  }
}
