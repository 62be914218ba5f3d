import { SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import type { CreateResponseRequest } from '../api/create-response.js';
import { ApiError } from '../api/errors.js';
import type { ResponseObject } from '../api/wire.js';
import { BackendError } from '../backends/errors.js';
import type { BackendPart } from '../backends/types.js';
import type { Route } from '../router/router.js';
import type { Logger } from './logger.js';
import type { Metrics, RunMode, RunStatus } from './metrics.js';
import type { RequestObservation } from './request-observation.js';
import type { Tracing } from './tracing.js';

/** What the engine knows about a response run when it starts one. */
export interface RunInfo {
  tenant: string;
  /** The model the client asked for. */
  model: string;
  mode: RunMode;
  /** Whether the backend is asked to stream (time-to-first-token is only meaningful then). */
  streamed: boolean;
  request: CreateResponseRequest;
  responseId: string;
  /** The HTTP request that started the run, if one did (a background worker's run has none). */
  observation?: RequestObservation;
}

/** Metrics, traces and logs for the engine: one RunObserver per response run. */
export class Telemetry {
  constructor(
    readonly metrics: Metrics,
    readonly tracing: Tracing | undefined,
    readonly logger: Logger,
  ) {}

  startRun(info: RunInfo): RunObserver {
    return new RunObserver(this, info);
  }
}

/**
 * Follows one response run through the engine: each backend attempt (a CLIENT span with the
 * OpenTelemetry GenAI attributes, a backend-call metric), the timing of generated parts, and
 * the outcome (response metrics, token counts, the request's log fields). Per part it only
 * compares two timestamps; everything else happens once per run.
 */
export class RunObserver {
  private readonly telemetry: Telemetry;
  private readonly info: RunInfo;
  private startedAt = 0;
  private attemptStartedAt = 0;
  private route: Route | undefined;
  private span: Span | undefined;
  private generating = false;
  private firstPartAt = 0;
  private lastPartAt = 0;
  private maxGapMs = 0;
  private finishReason: string | undefined;
  /** The model's metric label, once a backend accepted the run (then the model is real). */
  private servedLabel: string | undefined;

  constructor(telemetry: Telemetry, info: RunInfo) {
    this.telemetry = telemetry;
    this.info = info;
  }

  /** A backend is being asked (the first, or the next after a failover). */
  attempt(route: Route): void {
    const now = performance.now();
    if (this.startedAt === 0) this.startedAt = now;
    this.attemptStartedAt = now;
    this.route = route;
    const tracing = this.telemetry.tracing;
    if (tracing) {
      this.span = tracing.startChildSpan(
        this.info.observation?.span,
        `chat ${route.upstreamModel}`,
        this.requestAttributes(route),
      );
    }
  }

  /** The backend accepted the request: generation is under way. */
  accepted(): void {
    this.generating = true;
    this.servedLabel = this.telemetry.metrics.modelLabel(this.info.model, true);
    this.telemetry.metrics.runStarted(this.info.mode);
    const observation = this.info.observation;
    if (observation) {
      observation.backend = this.route?.backend.name;
      observation.responseId = this.info.responseId;
    }
  }

  /** The current attempt failed before the first byte (another backend may be tried). */
  attemptFailed(error: unknown, aborted: boolean): void {
    const route = this.route;
    if (!route) return;
    const outcome = aborted ? 'cancelled' : outcomeOf(error);
    this.backendCall(route, outcome);
    if (this.span) {
      this.span.setAttribute('error.type', outcome);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      this.span.end();
      this.span = undefined;
    }
    if (this.info.observation) this.info.observation.backend = route.backend.name;
  }

  /** No backend accepted the run; `error` is what the client gets. */
  notStarted(error: unknown, aborted: boolean): void {
    const { metrics } = this.telemetry;
    const clientCaused = error instanceof ApiError && error.status < 500;
    const status: RunStatus = aborted ? 'cancelled' : clientCaused ? 'rejected' : 'failed';
    const code = aborted ? null : error instanceof ApiError ? error.code : 'server_error';
    metrics.response(this.modelLabel(), this.info.mode, status, undefined, code);
    if (this.info.observation) this.info.observation.responseStatus = status;
  }

  /** Called for every part the backend yields: only timestamps, nothing allocated. */
  part(part: BackendPart): void {
    if (part.type === 'usage') return;
    if (part.type === 'finish') {
      this.finishReason = part.reason;
      return;
    }
    const now = performance.now();
    if (this.firstPartAt === 0) this.firstPartAt = now;
    else if (now - this.lastPartAt > this.maxGapMs) this.maxGapMs = now - this.lastPartAt;
    this.lastPartAt = now;
  }

  /** The run ended with this response (completed, incomplete, failed or cancelled). */
  finished(response: ResponseObject): void {
    const { metrics, logger } = this.telemetry;
    const { info } = this;
    const route = this.route;
    const now = performance.now();
    const model = this.modelLabel();
    const status = response.status as RunStatus;
    const code = response.error?.code ?? null;
    if (this.generating) metrics.runEnded(info.mode);
    metrics.response(model, info.mode, status, (now - this.startedAt) / 1000, code);

    const usage = response.usage;
    if (usage) {
      metrics.tokens(model, info.tenant, {
        input: usage.input_tokens,
        output: usage.output_tokens,
        reasoning: usage.output_tokens_details.reasoning_tokens,
        cached: usage.input_tokens_details.cached_tokens,
      });
    }
    if (info.streamed && this.firstPartAt !== 0) {
      const generatedMs = this.lastPartAt - this.firstPartAt;
      const output = usage?.output_tokens ?? 0;
      metrics.streamTiming(
        model,
        (this.firstPartAt - this.startedAt) / 1000,
        output > 1 && generatedMs > 0 ? generatedMs / 1000 / (output - 1) : undefined,
        generatedMs > 0 ? this.maxGapMs / 1000 : undefined,
      );
    }
    if (info.mode === 'stream' && status === 'cancelled') metrics.streamDisconnected('stream');

    if (route) this.backendCall(route, outcomeOfResponse(response));
    const span = this.span;
    if (span) {
      const attributes: Attributes = {
        'gen_ai.response.id': response.id,
        'gen_ai.response.model': route?.upstreamModel ?? info.model,
        'gen_ai.response.finish_reasons': [this.finishReason ?? finishReasonOf(response)],
      };
      if (usage) {
        attributes['gen_ai.usage.input_tokens'] = usage.input_tokens;
        attributes['gen_ai.usage.output_tokens'] = usage.output_tokens;
      }
      if (this.firstPartAt !== 0)
        attributes['gen_ai.response.time_to_first_chunk'] = (this.firstPartAt - this.attemptStartedAt) / 1000;
      span.setAttributes(attributes);
      if (status === 'failed') {
        span.setAttribute('error.type', code ?? 'server_error');
        span.setStatus({ code: SpanStatusCode.ERROR, message: response.error?.message });
      }
      span.end();
      this.span = undefined;
    }

    const observation = info.observation;
    if (observation) {
      observation.responseStatus = status;
      observation.inputTokens = usage?.input_tokens;
      observation.outputTokens = usage?.output_tokens;
      if (code) observation.errorCode = code;
    }
    // Prompts and answers are the users' data: only at debug level, never at info.
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        {
          reqId: observation?.requestId,
          responseId: response.id,
          instructions: info.request.instructions,
          input: info.request.input,
          output: response.output,
        },
        'response bodies',
      );
    }
  }

  private backendCall(route: Route, outcome: string): void {
    const { metrics } = this.telemetry;
    metrics.backendCall(
      route.backend.name,
      this.modelLabel(),
      this.info.streamed ? 'chat_stream' : 'chat',
      outcome,
      (performance.now() - this.attemptStartedAt) / 1000,
    );
  }

  /** A model name becomes a label only once a backend served it (or it is configured). */
  private modelLabel(): string {
    return this.servedLabel ?? this.telemetry.metrics.modelLabel(this.info.model);
  }

  private requestAttributes(route: Route): Attributes {
    const { request } = this.info;
    const system = route.backend.kind === 'ollama' ? 'ollama' : 'openai';
    const attributes: Attributes = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': system,
      'gen_ai.provider.name': system,
      'gen_ai.request.model': route.upstreamModel,
      'gen_ai.request.stream': this.info.streamed,
      'ferry.backend': route.backend.name,
      'ferry.model': this.info.model,
    };
    if (request.max_output_tokens != null)
      attributes['gen_ai.request.max_tokens'] = request.max_output_tokens;
    if (request.temperature != null) attributes['gen_ai.request.temperature'] = request.temperature;
    if (request.top_p != null) attributes['gen_ai.request.top_p'] = request.top_p;
    try {
      const url = new URL(route.backend.url);
      attributes['server.address'] = url.hostname;
      attributes['server.port'] = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    } catch {
      // A backend URL was validated at start-up; nothing to add otherwise.
    }
    return attributes;
  }
}

/** The `outcome` label of a backend call that failed before answering. */
function outcomeOf(error: unknown): string {
  if (error instanceof BackendError) return error.kind;
  if (error instanceof ApiError) return error.status < 500 ? 'invalid_request' : 'error';
  return 'error';
}

/** The `outcome` label of a backend call that ended with this response. */
function outcomeOfResponse(response: ResponseObject): string {
  switch (response.status) {
    case 'completed':
    case 'incomplete':
      return 'ok';
    case 'cancelled':
      return 'cancelled';
    default:
      switch (response.error?.code) {
        case 'backend_timeout':
          return 'timeout';
        case 'context_length_exceeded':
          return 'context_length_exceeded';
        default:
          return 'upstream_error';
      }
  }
}

function finishReasonOf(response: ResponseObject): string {
  if (response.status === 'incomplete')
    return response.incomplete_details?.reason === 'content_filter' ? 'content_filter' : 'length';
  if (response.status === 'failed') return 'error';
  if (response.status === 'cancelled') return 'cancelled';
  return response.output.some((item) => item.type === 'function_call') ? 'tool_calls' : 'stop';
}
