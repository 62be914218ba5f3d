import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ApiError, toApiError } from '../api/errors.js';
import { isDatabaseUnavailable } from '../store/errors.js';
import { newRequestId } from '../api/ids.js';
import { decodeBody, parseJson, tooLarge } from './body.js';
import type { AppContext } from './context.js';
import { installAuthentication } from './plugins/auth.js';
import { installObservability } from './plugins/observability.js';
import { installRateLimits } from './plugins/rate-limit.js';
import { clientErrorHandler, frameworkErrorHandler, installRequestLimits } from './plugins/request-limits.js';
import { registerCompatibilityRoutes } from './routes/compatibility.js';
import { registerModelRoutes } from './routes/models.js';
import { registerOpsRoutes } from './routes/ops.js';
import { registerResponseRoutes } from './routes/responses.js';

const VALID_REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The HTTP server: request ids, observation (logs, metrics, traces), request limits, auth,
 * rate limits, body decoding and the OpenAI error envelope as hooks, in that order; one plugin
 * per API family. Handlers stay thin: parse, call the engine, encode.
 */
export async function buildServer(context: AppContext): Promise<FastifyInstance> {
  const { config, logger } = context;
  const app = Fastify({
    bodyLimit: config.limits.bodyBytes,
    // A path parameter may be as long as the whole URL limit (414 beyond it, with the envelope).
    routerOptions: { maxParamLength: config.limits.urlBytes, ignoreTrailingSlash: true },
    return503OnClosing: true,
    keepAliveTimeout: 75_000,
    requestTimeout: 0,
    logger: false,
    http: { maxHeaderSize: config.limits.headerBytes },
    clientErrorHandler: clientErrorHandler(context.metrics, config.limits.headerBytes),
    frameworkErrors: frameworkErrorHandler(context.metrics, config.limits.urlBytes),
  });

  app.decorateRequest('requestId', '');
  // Every onRequest hook is synchronous (callback style): an async hook costs each request a
  // promise and a microtask turn, and only the key lookup in auth ever waits.
  app.addHook('onRequest', (request, reply, done) => {
    const given = request.headers['x-request-id'];
    request.requestId = typeof given === 'string' && VALID_REQUEST_ID.test(given) ? given : newRequestId();
    reply.header('x-request-id', request.requestId);
    done();
  });
  installObservability(app, context);
  installRequestLimits(app, config.limits);
  installAuthentication(app, context);
  installRateLimits(app, context.rateLimiter);

  // Every body is JSON, whatever the content type says; compressed bodies are decoded first.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      const encoding = request.headers['content-encoding'];
      done(null, parseJson(decodeBody(body as Buffer, encoding, config.limits.decompressedBodyBytes)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const apiError = fromFastifyError(error, config.limits.bodyBytes);
    if (request.observation) request.observation.errorCode = apiError.code ?? apiError.type;
    if (!(error instanceof ApiError) && apiError.status >= 500)
      logger.error({ reqId: request.requestId, err: error }, 'request failed');
    else if (apiError.status >= 500)
      logger.warn(
        { reqId: request.requestId, code: apiError.code, message: apiError.message },
        'request failed',
      );
    void reply.code(apiError.status).headers(apiError.headers).send(apiError.toBody());
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError(404, `Invalid URL (${request.method} ${request.url.split('?', 1)[0]}).`, {
      code: 'unknown_url',
    });
    void reply.code(404).send(error.toBody());
  });

  registerOpsRoutes(app, context);
  registerModelRoutes(app, context);
  registerResponseRoutes(app, context);
  registerCompatibilityRoutes(app);
  return app;
}

function fromFastifyError(error: FastifyError | ApiError, bodyLimit: number): ApiError {
  if (error instanceof ApiError) return error;
  if (isDatabaseUnavailable(error)) {
    return new ApiError(503, 'The database is unavailable right now; retry shortly.', {
      type: 'server_error',
      code: 'database_unavailable',
      headers: { 'retry-after': '1' },
    });
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'Unsupported Content-Type: send application/json.', {
        code: 'unsupported_media_type',
      });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'The Content-Length header does not match the body.', {
        code: 'invalid_body',
      });
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500)
    return new ApiError(status === 408 ? 400 : status, error.message, { code: 'invalid_request' });
  return toApiError(error);
}
