import { z } from 'zod';

const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'] as const;

/** 32 bytes, as base64 (44 characters) or hex (64 characters). */
const EncryptionKey = z
  .string()
  .trim()
  .regex(
    /^(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/,
    'must be 32 bytes, as base64 (44 characters) or hex (64)',
  );

/**
 * Ferry's whole configuration. A config file (JSON) may set any of it; environment variables
 * and command-line flags override the most common settings (see `load.ts` and the README).
 */

const Timeouts = z.strictObject({
  /** Establishing a TCP connection to a backend. */
  connectMs: z.int().positive().default(5_000),
  /** From sending a request to the backend's response headers (queueing and prompt processing). */
  firstByteMs: z.int().positive().default(300_000),
  /** Longest silence between two chunks of a streamed backend answer. */
  idleMs: z.int().positive().default(120_000),
  /** Longest a non-streamed (blocking) generation may take. */
  requestMs: z.int().positive().default(600_000),
});

export const BackendConfig = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'use letters, digits, _ . or -'),
  kind: z.enum(['ollama', 'openai-chat']),
  url: z.url(),
  /** Bearer key sent to an OpenAI-compatible backend. */
  apiKey: z.string().optional(),
  /** Keep-alive connections to this backend. */
  connections: z.int().positive().default(64),
  /** Models this backend serves, when its own listing should not be asked (or be extended). */
  models: z.array(z.string()).default([]),
  timeouts: Timeouts.partial().optional(),
});
export type BackendConfig = z.infer<typeof BackendConfig>;

export const ModelConfig = z.strictObject({
  /** The backend(s) that serve this model, in order of preference. Default: whichever lists it. */
  backends: z.array(z.string()).optional(),
  /** The name the backend knows the model by, when it differs (`llama3.1` → `llama3.1:8b`). */
  upstreamModel: z.string().optional(),
  /** Context window in tokens: Ollama's `num_ctx` and the limit for `truncation`. */
  contextWindow: z.int().positive().optional(),
  /** Backend options passed through verbatim (Ollama `options`, extra chat-completions fields). */
  options: z.record(z.string(), z.unknown()).optional(),
  /**
   * What `reasoning.effort` the model supports. `efforts` is a list of accepted levels (mapped to
   * the backend's nearest setting), or a map from level to what the backend is sent: Ollama
   * `think` (`true`/`false`/`"low"`…), chat `reasoning_effort` (a string) or
   * `chat_template_kwargs.enable_thinking` (a boolean); `null` sends nothing. Other levels are a 400.
   */
  reasoning: z
    .strictObject({
      efforts: z
        .union([
          z.array(z.enum(REASONING_EFFORTS)),
          z.partialRecord(z.enum(REASONING_EFFORTS), z.union([z.boolean(), z.string(), z.null()])),
        ])
        .optional(),
    })
    .optional(),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

/** Requests-per-minute and concurrency limits of one key or one tenant; absent means unlimited. */
export const RequestLimits = z.strictObject({
  requestsPerMinute: z.int().positive().optional(),
  concurrentRequests: z.int().positive().optional(),
});
export type RequestLimits = z.infer<typeof RequestLimits>;

/** Tenant names become log fields and metric labels, so they stay short and plain. */
export const TenantName = z.string().regex(/^[\w.:@-]{1,64}$/, 'use 1–64 letters, digits, _ . : @ or -');

/** A configured API key: its tenant, or its tenant with a display name and its own limits. */
export const ApiKeyEntry = z.union([
  TenantName,
  z.strictObject({ tenant: TenantName, name: z.string().max(100).optional(), ...RequestLimits.shape }),
]);
export type ApiKeyEntry = z.infer<typeof ApiKeyEntry>;

export const FerryConfig = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.int().min(0).max(65535).default(8080),
  /** A SQLite file path, or a `postgres://` URL. */
  database: z.string().default('./data/ferry.db'),
  /** PostgreSQL connections per replica. */
  databasePoolSize: z.int().positive().default(10),
  backends: z.array(BackendConfig).default([]),
  models: z.record(z.string(), ModelConfig).default({}),
  /** Context window for models without their own setting. */
  defaultContextWindow: z.int().positive().default(8192),
  /**
   * API keys and the tenant each belongs to. With none here and none stored in the database
   * (`ferry keys create`), the gateway is open (single tenant "default").
   */
  apiKeys: z.record(z.string().min(8), ApiKeyEntry).default({}),
  /** How long a stored key's lookup is cached: a revoked key stops working within this time. */
  keyCacheSeconds: z.number().positive().max(3600).default(10),
  timeouts: Timeouts.default({ connectMs: 5_000, firstByteMs: 300_000, idleMs: 120_000, requestMs: 600_000 }),
  limits: z
    .strictObject({
      /** Largest request body accepted on the wire. */
      bodyBytes: z
        .int()
        .positive()
        .default(16 * 1024 * 1024),
      /** Largest request body after gzip/zstd decompression. */
      decompressedBodyBytes: z
        .int()
        .positive()
        .default(32 * 1024 * 1024),
      /** Largest request line plus headers (Node's maxHeaderSize); beyond it a 431. */
      headerBytes: z
        .int()
        .min(1024)
        .default(16 * 1024),
      /** Longest request URL; beyond it a 414. */
      urlBytes: z
        .int()
        .min(256)
        .default(8 * 1024),
    })
    .prefault({}),
  background: z
    .strictObject({
      /**
       * Background jobs run at once per backend on each replica; more wait in the queue, in
       * order. 0 makes a replica that only serves the API.
       */
      concurrency: z.int().min(0).default(4),
      /** Per-backend overrides of `concurrency`. */
      backendConcurrency: z.record(z.string(), z.int().min(0)).default({}),
      /** A job's lease; its worker renews it every third of this. A crashed worker's job is taken over after it. */
      leaseSeconds: z.number().positive().default(30),
      /** Starts before a job that keeps being interrupted is failed for good. */
      maxAttempts: z.int().positive().default(3),
      /** How often each replica looks for queued jobs and cancel requests. */
      pollIntervalMs: z.int().positive().default(500),
      /** On SIGTERM: how long running jobs may take to finish before they are handed back to the queue. */
      shutdownGraceSeconds: z.number().min(0).default(30),
      /** How often a background stream's events are written to the database (in batches). */
      eventFlushMs: z.int().positive().default(100),
    })
    .default({
      concurrency: 4,
      backendConcurrency: {},
      leaseSeconds: 30,
      maxAttempts: 3,
      pollIntervalMs: 500,
      shutdownGraceSeconds: 30,
      eventFlushMs: 100,
    }),
  idempotency: z
    .strictObject({
      /** How long an `Idempotency-Key` is remembered. */
      ttlSeconds: z
        .int()
        .positive()
        .default(24 * 3600),
      /** How long a retry waits for the first request with the same key to finish. */
      waitSeconds: z.number().positive().default(600),
    })
    .default({ ttlSeconds: 24 * 3600, waitSeconds: 600 }),
  /**
   * Requests per minute and concurrent requests, per API key and per tenant (unlimited unless
   * set). Shared through the database when it is PostgreSQL (several replicas), else per process.
   */
  rateLimits: z
    .strictObject({
      /** Default for every key; a key's own settings override it. */
      perKey: RequestLimits.prefault({}),
      /** Default for every tenant (all its keys together). */
      perTenant: RequestLimits.prefault({}),
      /** Per-tenant overrides of `perTenant`. */
      tenants: z.record(z.string(), RequestLimits).default({}),
      /** How often replicas exchange their counts through PostgreSQL. */
      syncIntervalMs: z.int().min(50).max(60_000).default(1_000),
    })
    .prefault({}),
  /** Prometheus metrics on `/metrics`. */
  metrics: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  /** OpenTelemetry traces, exported over OTLP/HTTP (JSON). Off unless enabled. */
  tracing: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** The OTLP/HTTP traces endpoint of a collector. */
      endpoint: z.url().default('http://127.0.0.1:4318/v1/traces'),
      /** Extra headers for the collector (an auth token, for example). */
      headers: z.record(z.string(), z.string()).default({}),
      /** Share of new traces recorded (0–1); a caller's sampled `traceparent` is always followed. */
      sampleRatio: z.number().min(0).max(1).default(1),
      serviceName: z.string().min(1).default('ferry'),
    })
    .prefault({}),
  /** Seconds between SSE keep-alive comments on a quiet stream. */
  streamKeepAliveSeconds: z.number().positive().default(15),
  /** How long stored responses are kept, in seconds (default 30 days). */
  retentionSeconds: z
    .int()
    .positive()
    .default(30 * 24 * 3600),
  retention: z
    .strictObject({
      /** How often expired responses and idempotency keys are purged. */
      purgeIntervalSeconds: z.number().positive().default(300),
      /** Rows purged per transaction. */
      purgeBatchSize: z.int().positive().default(500),
    })
    .default({ purgeIntervalSeconds: 300, purgeBatchSize: 500 }),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Key that seals reasoning items' `encrypted_content`. Unset: a key is generated once and kept
   * in the database, so every replica sharing the database shares it.
   */
  reasoningKey: EncryptionKey.optional(),
  /** Earlier keys, still accepted when a client sends back reasoning sealed before a rotation. */
  previousReasoningKeys: z.array(EncryptionKey).default([]),
});
export type FerryConfig = z.infer<typeof FerryConfig>;
export type FerryConfigInput = z.input<typeof FerryConfig>;
