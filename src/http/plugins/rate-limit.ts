import type { FastifyInstance } from 'fastify';
import { UNLIMITED, type RateLimiter } from '../../limits/rate-limiter.js';
import { formatDuration } from '../../limits/sliding-window.js';
import { OPEN_PATHS } from './auth.js';

/**
 * Per-key and per-tenant limits on every authenticated request: a 429 (with `Retry-After`)
 * when over, else the `x-ratelimit-*-requests` headers; the concurrency slot is given back
 * when the response ends, however it ends.
 */
export function installRateLimits(app: FastifyInstance, limiter: RateLimiter): void {
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.principal || OPEN_PATHS.has(request.url.split('?', 1)[0]!)) return done(); // probes, scrapers
    const admission = limiter.admit(request.principal);
    if (admission === UNLIMITED) return done();
    const headers = admission.headers;
    if (headers) {
      reply.header('x-ratelimit-limit-requests', headers.limit);
      reply.header('x-ratelimit-remaining-requests', headers.remaining);
      reply.header('x-ratelimit-reset-requests', formatDuration(headers.resetMs));
    }
    reply.raw.once('close', () => admission.release());
    done();
  });
}
