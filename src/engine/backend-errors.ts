import { ApiError } from '../api/errors.js';
import { BackendError } from '../backends/errors.js';
import type { StreamErrorInfo } from './response-builder.js';
import { contextExceeded } from './truncation.js';

/**
 * How backend failures reach clients. Before the first byte they are HTTP errors: the client's
 * own mistakes (unknown model, prompt too long, a request the backend refuses) are 4xx, the
 * backend's trouble is 502/503/504 naming the backend. After the first byte they become the
 * `error` event and `response.error` of a failed response.
 */
export function backendErrorToApi(error: BackendError, model: string): ApiError {
  switch (error.kind) {
    case 'model_not_found':
      return new ApiError(
        404,
        `The model '${model}' does not exist or you do not have access to it (${error.message}).`,
        { param: 'model', code: 'model_not_found' },
      );
    case 'context_length_exceeded':
      return contextExceeded(model, undefined, undefined);
    case 'invalid_request':
      // Ollama refuses features the model lacks; name the parameter that asked for them.
      if (/does not support tools/i.test(error.message))
        return new ApiError(400, error.message, { param: 'tools', code: 'model_does_not_support_tools' });
      if (/does not support thinking/i.test(error.message))
        return new ApiError(400, error.message, {
          param: 'reasoning.effort',
          code: 'model_does_not_support_reasoning',
        });
      return new ApiError(400, error.message, { code: 'backend_rejected_request' });
    case 'overloaded':
      return new ApiError(503, `${error.message} The backend is busy; retry later.`, {
        type: 'server_error',
        code: 'backend_overloaded',
        headers: { 'retry-after': String(error.retryAfter ?? 1) },
      });
    case 'unavailable':
      return new ApiError(503, error.message, { type: 'server_error', code: 'backend_unavailable' });
    case 'timeout':
      return new ApiError(504, error.message, { type: 'server_error', code: 'backend_timeout' });
    case 'upstream_error':
      return new ApiError(502, error.message, { type: 'server_error', code: 'backend_error' });
  }
}

export function toStreamError(error: unknown): StreamErrorInfo {
  if (error instanceof BackendError) {
    const code =
      error.kind === 'context_length_exceeded'
        ? 'context_length_exceeded'
        : error.kind === 'timeout'
          ? 'backend_timeout'
          : 'server_error';
    return { type: 'server_error', code, message: error.message, param: null };
  }
  if (error instanceof ApiError) {
    return {
      type: error.type,
      code: error.code ?? 'server_error',
      message: error.message,
      param: error.param,
    };
  }
  return {
    type: 'server_error',
    code: 'server_error',
    message: 'The gateway failed while generating the response.',
    param: null,
  };
}

/** Whether another backend should be tried for this failure (nothing was generated yet). */
export function canFailOver(error: unknown): boolean {
  return (
    error instanceof BackendError &&
    (error.kind === 'unavailable' || error.kind === 'overloaded' || error.kind === 'timeout')
  );
}
