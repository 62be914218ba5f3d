import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';

/** Liveness, readiness and Prometheus metrics. */
export function registerOpsRoutes(app: FastifyInstance, context: AppContext): void {
  // Liveness only: the process answers. Never touches the database or a backend.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Ready when every critical check passes (the database, at least one backend, the job worker
  // when one is registered); the body reports each check under its name.
  app.get('/readyz', async (_request, reply) => {
    const { ready, checks } = await context.readiness.run();
    void reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'unready', ...checks };
  });

  if (context.config.metrics.enabled) {
    app.get('/metrics', async (_request, reply) => {
      void reply.type(context.metrics.contentType);
      return context.metrics.expose();
    });
  }
}

/** The checks every gateway has: its database and its backends. */
export function registerCoreReadinessChecks(
  context: Pick<AppContext, 'readiness' | 'store' | 'router'>,
): void {
  context.readiness.register('database', async () => {
    const started = performance.now();
    try {
      await context.store.ping();
      const latencyMs = Math.round((performance.now() - started) * 10) / 10;
      return { ok: true, report: { dialect: context.store.dialect, ok: true, error: null, latencyMs } };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return {
        ok: false,
        report: { dialect: context.store.dialect, ok: false, error: message, latencyMs: null },
      };
    }
  });
  // Ready while at least one backend answers; the report lists each with its latency and last error.
  context.readiness.register('backends', async () => {
    const backends = await context.router.probe();
    return { ok: backends.some((backend) => backend.ok), report: backends };
  });
}
