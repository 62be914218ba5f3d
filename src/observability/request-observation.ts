import type { Span } from '@opentelemetry/api';

/**
 * What one HTTP request reports when it ends: the HTTP layer creates it, the engine fills in
 * the generation's part (model, backend, tokens), and the request's log line and span read it.
 * One small object per request; it links a log line to its trace through `span`.
 */
export class RequestObservation {
  readonly requestId: string;
  readonly startedAt = performance.now();
  /** The request's span, when tracing is on. */
  span: Span | undefined;
  model: string | undefined;
  backend: string | undefined;
  responseId: string | undefined;
  responseStatus: string | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  errorCode: string | undefined;

  constructor(requestId: string, span?: Span) {
    this.requestId = requestId;
    this.span = span;
  }
}
