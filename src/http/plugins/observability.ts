import { SpanStatusCode } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { RequestObservation } from '../../observability/request-observation.js';

/** The route label of requests no route matched (bounded: never the raw URL). */
export const UNMATCHED_ROUTE = '(unmatched)';

/**
 * One observation per request: the request's span (when tracing), the HTTP metrics, and one
 * structured log line when the response has ended, with what the engine added (model,
 * backend, tokens). Everything is reported on the socket's `close`, which also fires for
 * streams whose client left mid-way (reported as status 499 when nothing was sent yet).
 */
export function installObservability(
  app: FastifyInstance,
  { metrics, tracing, logger }: Pick<AppContext, 'metrics' | 'tracing' | 'logger'>,
): void {
  app.decorateRequest('observation', null as unknown as RequestObservation);

  app.addHook('onRequest', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const span = tracing?.startRequestSpan(`${request.method} ${route}`, request.headers, {
      'http.request.method': request.method,
      'http.route': route,
      'url.path': request.url.split('?', 1)[0]!,
      'ferry.request_id': request.requestId,
      'user_agent.original': request.headers['user-agent'] ?? '',
    });
    request.observation = new RequestObservation(request.requestId, span);
    metrics.httpStarted();
    reply.raw.once('close', () => report(request, reply, route));
    done();
  });

  function report(request: FastifyRequest, reply: FastifyReply, route: string): void {
    const observation = request.observation;
    const status = reply.raw.headersSent ? reply.raw.statusCode : 499;
    const ms = performance.now() - observation.startedAt;
    metrics.httpEnded();
    metrics.httpRequest(request.method, route, status, ms / 1000);

    const span = observation.span;
    if (span) {
      span.setAttribute('http.response.status_code', status);
      if (request.tenant) span.setAttribute('ferry.tenant', request.tenant);
      if (observation.model) span.setAttribute('gen_ai.request.model', observation.model);
      if (observation.responseId) span.setAttribute('gen_ai.response.id', observation.responseId);
      if (observation.inputTokens !== undefined)
        span.setAttribute('gen_ai.usage.input_tokens', observation.inputTokens);
      if (observation.outputTokens !== undefined)
        span.setAttribute('gen_ai.usage.output_tokens', observation.outputTokens);
      if (observation.errorCode) span.setAttribute('error.type', observation.errorCode);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: observation.errorCode });
      span.end();
    }

    const trace = span?.spanContext();
    logger.info(
      {
        reqId: request.requestId,
        tenant: request.tenant || undefined,
        keyId: request.principal?.keyId ?? undefined,
        method: request.method,
        route,
        url: request.url,
        status,
        ms: Math.round(ms * 100) / 100,
        model: observation.model,
        backend: observation.backend,
        responseId: observation.responseId,
        responseStatus: observation.responseStatus,
        inputTokens: observation.inputTokens,
        outputTokens: observation.outputTokens,
        errorCode: observation.errorCode,
        traceId: trace?.traceId,
        spanId: trace?.spanId,
      },
      'request',
    );
  }
}
