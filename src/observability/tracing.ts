import {
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { FerryConfig } from '../config/schema.js';

export type { Span };

export interface TracingOptions {
  /** Export here instead of OTLP, synchronously (tests pass an in-memory exporter). */
  exporter?: SpanExporter;
  version?: string;
}

/**
 * OpenTelemetry traces: a SERVER span per HTTP request (continuing the caller's `traceparent`)
 * and a CLIENT span per backend call under it. Parents are passed explicitly, not through a
 * global context manager, so nothing is installed process-wide. A gateway with tracing off never
 * loads this module (app.ts imports it on demand); every call site checks for its absence.
 */
export class Tracing {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(config: FerryConfig['tracing'], options: TracingOptions = {}) {
    const exporter =
      options.exporter ?? new OTLPTraceExporter({ url: config.endpoint, headers: config.headers });
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({
        [ATTR_SERVICE_NAME]: config.serviceName,
        [ATTR_SERVICE_VERSION]: options.version ?? 'unknown',
      }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [
        options.exporter ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter }),
      ],
    });
    this.tracer = this.provider.getTracer('ferry', options.version);
  }

  /** The span of one HTTP request, a child of the caller's `traceparent` when it sent one. */
  startRequestSpan(name: string, headers: Record<string, unknown>, attributes: Attributes): Span {
    const parent = headers.traceparent
      ? this.propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter)
      : ROOT_CONTEXT;
    return this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  }

  /** A span under `parent` (or a new trace without one), e.g. a backend call. */
  startChildSpan(
    parent: Span | undefined,
    name: string,
    attributes: Attributes,
    kind: SpanKind = SpanKind.CLIENT,
  ): Span {
    const context = parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    return this.tracer.startSpan(name, { kind, attributes }, context);
  }

  /** Flushes what is buffered (bounded) and stops exporting. */
  async shutdown(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.provider.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }
}
