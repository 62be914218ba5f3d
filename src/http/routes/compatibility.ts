import type { FastifyInstance } from 'fastify';
import { compatibilityManifest } from '../../compat/manifest.js';
import { FERRY_VERSION } from '../../version.js';

/** `GET /v1/compatibility`: what this Ferry supports, supports conditionally, or refuses, and the test proving each. */
export function registerCompatibilityRoutes(app: FastifyInstance): void {
  const body = JSON.stringify(compatibilityManifest(FERRY_VERSION));
  app.get('/v1/compatibility', async (_request, reply) => reply.type('application/json').send(body));
}
