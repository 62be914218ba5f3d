import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { ApiKeyResolver } from './access/api-keys.js';
import { createBackend } from './backends/create.js';
import type { FerryConfig } from './config/schema.js';
import { EventHub } from './engine/background/event-log.js';
import { BackgroundWorker } from './engine/background/worker.js';
import { ResponsesEngine } from './engine/engine.js';
import { decodeReasoningKey, generateReasoningKey, ReasoningCipher } from './engine/reasoning/cipher.js';
import { RetentionJanitor } from './engine/retention.js';
import type { AppContext } from './http/context.js';
import { registerCoreReadinessChecks } from './http/routes/ops.js';
import { buildServer } from './http/server.js';
import { RateLimiter } from './limits/rate-limiter.js';
import { instrumentModelListing } from './observability/backend-listing.js';
import { databaseQueryObserver } from './observability/db-metrics.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { Readiness } from './observability/readiness.js';
import { Telemetry } from './observability/run-observer.js';
import type { Tracing } from './observability/tracing.js';
import { Router } from './router/router.js';
import { SqlApiKeyStore } from './store/api-keys.js';
import { openChangeFeed } from './store/change-feed.js';
import { openStore } from './store/open.js';
import { SqlRateLimitUsage } from './store/rate-limit-usage.js';
import type { Store } from './store/types.js';
import { FERRY_VERSION } from './version.js';

export interface FerryApp {
  readonly context: AppContext;
  readonly server: FastifyInstance;
  /** Starts listening and working on background jobs; resolves with the base URL (`http://host:port`). */
  listen(): Promise<string>;
  /**
   * Stops gracefully: no new background jobs, running ones get the configured grace period and
   * the rest go back to the queue; open streams end; then the server and the database close.
   */
  close(): Promise<void>;
}

export interface CreateAppOptions {
  logger?: Logger;
  /** Export spans here instead of OTLP (tests use an in-memory exporter). */
  spanExporter?: SpanExporter;
  /** The rate limiter's clock (unix ms); tests move time instead of waiting a minute. */
  clock?: () => number;
}

/**
 * Wires a configuration into a running gateway: observability, backends, router, store, key
 * resolver, rate limiter, engine, background worker, HTTP server.
 */
export async function createApp(config: FerryConfig, options: CreateAppOptions = {}): Promise<FerryApp> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = new Metrics({ configuredModels: Object.keys(config.models), version: FERRY_VERSION });
  // The OpenTelemetry SDK is only loaded when tracing is on: a gateway without it pays nothing.
  const tracing: Tracing | undefined = config.tracing.enabled
    ? new (await import('./observability/tracing.js')).Tracing(config.tracing, {
        exporter: options.spanExporter,
        version: FERRY_VERSION,
      })
    : undefined;
  const backends = config.backends.map((backend) =>
    instrumentModelListing(createBackend(backend, config), metrics),
  );
  const router = new Router(config, backends);
  metrics.watchBackends(() =>
    router.backends.map((backend) => ({ name: backend.name, ok: router.isHealthy(backend.name) })),
  );
  const store = await openStore({
    database: config.database,
    poolSize: config.databasePoolSize,
    onQuery: databaseQueryObserver(metrics),
  });
  const replica = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  let reasoningCipher: ReasoningCipher;
  try {
    reasoningCipher = await createReasoningCipher(config, store);
  } catch (error) {
    await store.close();
    throw error;
  }
  const keys = new ApiKeyResolver(config, new SqlApiKeyStore(store.db), logger);
  // Replicas share one PostgreSQL database, so that is where they share their limits.
  const shared = store.dialect === 'postgres' ? new SqlRateLimitUsage(store.db, replica) : undefined;
  const rateLimiter = new RateLimiter(config.rateLimits, { metrics, logger, shared, now: options.clock });
  const readiness = new Readiness();
  const telemetry = new Telemetry(metrics, tracing, logger);
  const engine = new ResponsesEngine({ store, router, config, logger, telemetry, reasoningCipher });
  const hub = new EventHub();
  const changes = openChangeFeed(
    store,
    config.database,
    (change) => {
      if (change.kind === 'events') hub.nudge(change.responseId);
      else if (change.kind === 'cancel') worker.cancelLocal(change.responseId);
      else worker.wake();
    },
    logger,
  );
  const worker = new BackgroundWorker({ store, engine, hub, changes, config, logger, metrics });
  const janitor = new RetentionJanitor(store, config, logger);
  const context: AppContext = {
    config,
    engine,
    store,
    router,
    logger,
    metrics,
    tracing,
    keys,
    rateLimiter,
    readiness,
    worker,
    hub,
    changes,
    followers: new Set(),
  };
  registerCoreReadinessChecks(context);
  readiness.register('worker', async () => {
    const status = worker.status();
    return { ok: status.ok, report: status };
  });
  try {
    await keys.start();
  } catch (error) {
    await changes.close();
    await store.close();
    throw error;
  }
  const server = await buildServer(context);
  rateLimiter.start();

  return {
    context,
    server,
    async listen() {
      await server.listen({ host: config.host, port: config.port });
      worker.start();
      janitor.start();
      const address = server.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `http://${host}:${port}`;
    },
    async close() {
      const graceMs = config.background.shutdownGraceSeconds * 1000;
      janitor.stop();
      await worker.stop(graceMs);
      for (const follower of context.followers) follower.abort();
      // Foreground requests get the same grace; what is still open after it is cut.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        server.close(),
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            server.server.closeAllConnections();
            resolve();
          }, graceMs);
        }),
      ]);
      clearTimeout(timer);
      keys.stop();
      await rateLimiter.close();
      await changes.close();
      await router.close();
      await tracing?.shutdown();
      await store.close();
    },
  };
}

async function createReasoningCipher(config: FerryConfig, store: Store): Promise<ReasoningCipher> {
  const current =
    config.reasoningKey ?? (await store.getOrCreateSecret('reasoning-key', generateReasoningKey));
  const keys = [current, ...config.previousReasoningKeys].map((text) => decodeReasoningKey(text)!);
  return new ReasoningCipher(keys);
}
