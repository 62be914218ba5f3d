import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.js';
import { newRequestId } from '../../api/ids.js';
import type { FerryConfig } from '../../config/schema.js';
import type { Metrics } from '../../observability/metrics.js';

/** The route label of requests Node refused before Fastify saw them (malformed, headers too large). */
export const CLIENT_ERROR_ROUTE = '(client_error)';

/** Refuses URLs longer than `limits.urlBytes` with a 414 before anything else is done. */
export function installRequestLimits(app: FastifyInstance, limits: FerryConfig['limits']): void {
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.raw.url!.length > limits.urlBytes) {
      throw new ApiError(414, `The request URL is too long: the limit is ${limits.urlBytes} bytes.`, {
        code: 'url_too_long',
      });
    }
    done();
  });
}

/**
 * Answers what Fastify's router refuses before any hook runs (a path parameter longer than the
 * router allows, a malformed URL) with the envelope: 414 and 400.
 */
export function frameworkErrorHandler(metrics: Metrics, urlBytes: number) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const apiError =
      error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new ApiError(414, `The request URL is too long: the limit is ${urlBytes} bytes.`, {
            code: 'url_too_long',
          })
        : new ApiError(400, 'The request URL is malformed.', { code: 'invalid_url' });
    metrics.httpRequest(request.method, CLIENT_ERROR_ROUTE, apiError.status, 0);
    void reply.code(apiError.status).header('x-request-id', newRequestId()).send(apiError.toBody());
  };
}

/**
 * Answers what Node's HTTP parser refuses before Fastify runs (headers beyond
 * `limits.headerBytes`, malformed requests) with the OpenAI envelope instead of a bare status
 * line: 431 for oversized headers, 400 otherwise. Fastify's `clientErrorHandler`.
 */
export function clientErrorHandler(metrics: Metrics, headerBytes: number) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const status = tooLarge ? 431 : 400;
    const body = JSON.stringify(
      (tooLarge
        ? new ApiError(431, `The request headers are too large: the limit is ${headerBytes} bytes.`, {
            code: 'request_headers_too_large',
          })
        : new ApiError(400, 'The HTTP request is malformed.', { code: 'invalid_http_request' })
      ).toBody(),
    );
    metrics.httpRequest('unknown', CLIENT_ERROR_ROUTE, status, 0);
    if (!socket.writable) {
      socket.destroy(error);
      return;
    }
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        'content-type: application/json; charset=utf-8\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        `x-request-id: ${newRequestId()}\r\n` +
        'connection: close\r\n\r\n' +
        body,
    );
  };
}
