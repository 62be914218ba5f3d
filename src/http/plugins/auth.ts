import type { FastifyInstance } from 'fastify';
import { OPEN_PRINCIPAL, type ApiKeyResolver } from '../../access/api-keys.js';
import { ApiError } from '../../api/errors.js';
import type { Metrics } from '../../observability/metrics.js';

/** Paths that answer without an API key (probes and scrapers). */
export const OPEN_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Authentication: `Authorization: Bearer <key>` → the key's principal (tenant, key id, limits).
 * A gateway without any key is open and everything belongs to tenant `default`.
 */
export function installAuthentication(
  app: FastifyInstance,
  { keys, metrics }: { keys: ApiKeyResolver; metrics: Metrics },
): void {
  app.decorateRequest('tenant', '');
  app.decorateRequest('principal', null);

  app.addHook('onRequest', (request, _reply, done) => {
    if (keys.open) {
      request.principal = OPEN_PRINCIPAL;
      request.tenant = OPEN_PRINCIPAL.tenant;
      return done();
    }
    if (OPEN_PATHS.has(request.url.split('?', 1)[0]!)) return done();
    const authorization = request.headers.authorization;
    const key = authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() : undefined;
    if (!key) {
      metrics.authFailed('missing');
      throw new ApiError(
        401,
        "You didn't provide an API key. Send it in an Authorization header: 'Authorization: Bearer <key>'.",
        { type: 'invalid_request_error', code: 'invalid_api_key' },
      );
    }
    keys.check(key).then((check) => {
      if ('failure' in check) {
        metrics.authFailed(check.failure);
        // A revoked key gets the same answer as a wrong one: nothing confirms it ever existed.
        return done(
          new ApiError(401, 'Incorrect API key provided. Ask your Ferry operator for a valid key.', {
            type: 'invalid_request_error',
            code: 'invalid_api_key',
          }),
        );
      }
      request.principal = check.principal;
      request.tenant = check.principal.tenant;
      done();
    }, done);
  });
}
