import type { FastifyInstance } from 'fastify';
import { modelNotFound } from '../../api/errors.js';
import type { AppContext } from '../context.js';

/** `/v1/models`: the models every backend serves, aggregated. */
export function registerModelRoutes(app: FastifyInstance, context: AppContext): void {
  const list = async () =>
    (await context.router.listModels()).map((model) => ({
      id: model.id,
      object: 'model' as const,
      created: model.created,
      owned_by: model.ownedBy,
    }));

  app.get('/v1/models', async () => ({ object: 'list', data: await list() }));

  // Model ids may contain slashes (`openai/gpt-oss-20b`, `hf.co/…`).
  app.get('/v1/models/*', async (request) => {
    const id = (request.params as { '*': string })['*'];
    const model = (await list()).find((entry) => entry.id === id);
    if (!model) throw modelNotFound(id);
    return model;
  });
}
