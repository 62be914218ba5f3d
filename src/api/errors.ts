/**
 * One error type for everything a client may see, serialised as the OpenAI envelope
 * `{"error":{"message","type","param","code"}}`.
 *
 * Client mistakes are always 400/401/403/404/413/415/422: the official SDKs retry
 * 408, 409, 429 and 5xx, so those are reserved for the gateway's own and the backends' trouble.
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  /** OpenAI's type for a requests-per-minute (or concurrency) 429. */
  | 'requests'
  | 'server_error'
  | 'backend_error';

export interface ErrorBody {
  message: string;
  type: ErrorType;
  param: string | null;
  code: string | null;
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: {
      type?: ErrorType;
      param?: string | null;
      code?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  toBody(): { error: ErrorBody } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, { param, code });

export const unsupported = (param: string, detail?: string) =>
  new ApiError(400, `'${param}' is not supported by this gateway${detail ? `: ${detail}` : '.'}`, {
    param,
    code: 'unsupported_parameter',
  });

export const notFound = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(404, message, { param, code, type: 'invalid_request_error' });

export const responseNotFound = (id: string) =>
  notFound(`Response with id '${id}' not found.`, null, 'not_found');

export const modelNotFound = (model: string) =>
  notFound(
    `The model '${model}' does not exist or you do not have access to it.`,
    'model',
    'model_not_found',
  );

/** Normalises anything thrown into an ApiError (unknown errors become a 500 without internals). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError(500, 'The server had an error while processing your request.', {
    code: 'server_error',
  });
}
