/**
 * What can go wrong with a backend, in terms the engine can act on. The engine maps these to
 * HTTP errors before the first byte, and to `error` + `response.failed` after it.
 */
export type BackendErrorKind =
  /** Connection refused, reset before a status, DNS failure. */
  | 'unavailable'
  /** Connect, first-byte or idle-stream timeout. */
  | 'timeout'
  /** The backend is overloaded (Ollama's 503 when its queue is full, a 429). */
  | 'overloaded'
  /** The backend does not know the model. */
  | 'model_not_found'
  /** The prompt does not fit the context window. */
  | 'context_length_exceeded'
  /** The backend rejected the request as invalid (4xx). */
  | 'invalid_request'
  /** A 5xx, a mid-stream error line, malformed output, a stream cut short. */
  | 'upstream_error';

export class BackendError extends Error {
  readonly backend: string;
  readonly kind: BackendErrorKind;
  /** The upstream HTTP status, when there was one. */
  readonly status: number | undefined;
  /** Seconds the backend asked us to wait, when it said. */
  readonly retryAfter: number | undefined;

  constructor(
    backend: string,
    kind: BackendErrorKind,
    message: string,
    options: { status?: number; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'BackendError';
    this.backend = backend;
    this.kind = kind;
    this.status = options.status;
    this.retryAfter = options.retryAfter;
  }
}
