import type { ApiKeyResolver, Principal } from '../access/api-keys.js';
import type { FerryConfig } from '../config/schema.js';
import type { EventHub } from '../engine/background/event-log.js';
import type { BackgroundWorker } from '../engine/background/worker.js';
import type { ResponsesEngine } from '../engine/engine.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Readiness } from '../observability/readiness.js';
import type { RequestObservation } from '../observability/request-observation.js';
import type { Tracing } from '../observability/tracing.js';
import type { Router } from '../router/router.js';
import type { ChangeFeed } from '../store/change-feed.js';
import type { Store } from '../store/types.js';

/** What route handlers work with. */
export interface AppContext {
  config: FerryConfig;
  engine: ResponsesEngine;
  store: Store;
  router: Router;
  logger: Logger;
  worker: BackgroundWorker;
  hub: EventHub;
  /** Tells the other replicas (and this one) about new events, cancels and queued jobs. */
  changes: ChangeFeed;
  /** Open background-stream followers, ended at shutdown. */
  followers: Set<AbortController>;
  metrics: Metrics;
  /** Undefined when tracing is off. */
  tracing: Tracing | undefined;
  keys: ApiKeyResolver;
  rateLimiter: RateLimiter;
  /** `/readyz` runs every check registered here (the job worker registers its own). */
  readiness: Readiness;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** `x-request-id`: the caller's, or one Ferry made. */
    requestId: string;
    /** Who owns what this request stores and may read. */
    tenant: string;
    /** The key (and its tenant and limits) the request authenticated with. */
    principal: Principal | null;
    /** What the request's log line, metrics and span report; the engine fills in its part. */
    observation: RequestObservation;
  }
}
