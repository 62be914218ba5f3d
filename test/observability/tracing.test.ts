import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import { captureLogs, type CapturedLogs } from '../support/logs.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN_ID = 'b7ad6b7169203331';

/** OpenTelemetry spans, received by an in-memory exporter. */
describe('traces', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let logs: CapturedLogs;
  const exporter = new InMemorySpanExporter();

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    logs = captureLogs('info');
    ferry = await startFerry(
      {
        backends: [
          { name: 'gone', kind: 'ollama', url: 'http://127.0.0.1:9' },
          { name: 'local', kind: 'ollama', url: fake.url },
        ],
        models: { m: { backends: ['local'] }, failover: { backends: ['gone', 'local'], upstreamModel: 'm' } },
        tracing: { enabled: true, serviceName: 'ferry-under-test' },
      },
      { spanExporter: exporter, logger: logs.logger },
    );
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });
  afterEach(() => exporter.reset());

  /** The spans of one trace, once the request span has ended (bounded wait). */
  async function spansOf(traceId?: string): Promise<{ server: ReadableSpan; clients: ReadableSpan[] }> {
    let server: ReadableSpan | undefined;
    await vi.waitFor(
      () => {
        server = exporter
          .getFinishedSpans()
          .find(
            (span) => span.kind === SpanKind.SERVER && (!traceId || span.spanContext().traceId === traceId),
          );
        expect(server).toBeDefined();
      },
      { timeout: 5_000, interval: 20 },
    );
    const clients = exporter
      .getFinishedSpans()
      .filter(
        (span) =>
          span.kind === SpanKind.CLIENT && span.spanContext().traceId === server!.spanContext().traceId,
      );
    return { server: server!, clients };
  }

  it('continues an incoming traceparent: a SERVER span per request, a CLIENT span per backend call with GenAI attributes', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'traced answer' }], usage: { input: 12, output: 3 } });
    const response = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'hello', max_output_tokens: 64, temperature: 0.5 },
      { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`, 'x-request-id': 'req-traced-1' },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { id: string };
    const { server, clients } = await spansOf(TRACE_ID);

    expect(server.name).toBe('POST /v1/responses');
    expect(server.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
    expect(server.resource.attributes['service.name']).toBe('ferry-under-test');
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/responses',
      'http.response.status_code': 200,
      'ferry.request_id': 'req-traced-1',
      'ferry.tenant': 'default',
      'gen_ai.request.model': 'm',
      'gen_ai.response.id': body.id,
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 3,
    });
    expect(server.status.code).toBe(SpanStatusCode.UNSET);

    expect(clients).toHaveLength(1);
    const [call] = clients;
    expect(call!.name).toBe('chat m');
    expect(call!.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(call!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': 'ollama',
      'gen_ai.provider.name': 'ollama',
      'gen_ai.request.model': 'm',
      'gen_ai.request.max_tokens': 64,
      'gen_ai.request.temperature': 0.5,
      'gen_ai.request.stream': false,
      'gen_ai.response.model': 'm',
      'gen_ai.response.id': body.id,
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 3,
      'gen_ai.response.finish_reasons': ['stop'],
      'server.address': '127.0.0.1',
      'ferry.backend': 'local',
    });
    expect(call!.attributes['server.port']).toBe(Number(new URL(fake.url).port));
  });

  it('starts a new trace without traceparent, and times the first chunk of a stream', async () => {
    const response = await postJson(ferry, '/v1/responses', { model: 'm', input: 'stream it', stream: true });
    await captureSse(response);
    const { server, clients } = await spansOf();
    expect(server.parentSpanContext).toBeUndefined();
    expect(clients[0]!.attributes['gen_ai.request.stream']).toBe(true);
    expect(clients[0]!.attributes['gen_ai.response.time_to_first_chunk']).toEqual(expect.any(Number));
  });

  it('records each failover attempt as its own span, the failed one with its error', async () => {
    const response = await postJson(ferry, '/v1/responses', { model: 'failover', input: 'x' });
    expect(response.status).toBe(200);
    const { clients } = await spansOf();
    expect(clients.map((span) => span.attributes['ferry.backend'])).toEqual(['gone', 'local']);
    expect(clients[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(clients[0]!.attributes['error.type']).toBe('unavailable');
    expect(clients[1]!.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('marks a backend failure mid-stream on the backend span, and a 5xx on the request span', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'part' },
        { type: 'error', message: 'out of memory' },
      ],
    });
    await captureSse(await postJson(ferry, '/v1/responses', { model: 'm', input: 'x', stream: true }));
    const midStream = await spansOf();
    expect(midStream.server.status.code).toBe(SpanStatusCode.UNSET); // the HTTP exchange itself succeeded
    expect(midStream.clients[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(midStream.clients[0]!.attributes['error.type']).toBe('server_error');
    expect(midStream.clients[0]!.attributes['gen_ai.response.finish_reasons']).toEqual(['error']);
    exporter.reset();

    fake.enqueue({ steps: [], status: 503, errorBody: { error: 'server busy' } });
    expect((await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' })).status).toBe(503);
    const refused = await spansOf();
    expect(refused.server.status.code).toBe(SpanStatusCode.ERROR);
    expect(refused.server.attributes['error.type']).toBe('backend_overloaded');
    expect(refused.clients[0]!.attributes['error.type']).toBe('overloaded');
  });

  it('puts the trace id on the request log line, so a log line leads to its trace', async () => {
    await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'find me' },
      {
        traceparent: `00-${TRACE_ID.replace(/^0a/, '1b')}-${PARENT_SPAN_ID}-01`,
        'x-request-id': 'req-log-to-trace',
      },
    );
    const { server } = await spansOf(TRACE_ID.replace(/^0a/, '1b'));
    const line = logs.lines().find((entry) => entry.reqId === 'req-log-to-trace' && entry.msg === 'request');
    expect(line).toMatchObject({
      traceId: server.spanContext().traceId,
      spanId: server.spanContext().spanId,
    });
  });
});

describe('trace sampling and export', () => {
  it('records no new traces at ratio 0, but follows a caller that sampled its trace', async () => {
    const fake = await startFakeOllama({ models: ['m'] });
    const exporter = new InMemorySpanExporter();
    const ferry = await startFerry(
      {
        backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
        tracing: { enabled: true, sampleRatio: 0 },
      },
      { spanExporter: exporter },
    );
    try {
      await postJson(ferry, '/v1/responses', { model: 'm', input: 'unsampled' });
      await postJson(
        ferry,
        '/v1/responses',
        { model: 'm', input: 'sampled' },
        { traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01` },
      );
      await vi.waitFor(() => expect(exporter.getFinishedSpans().length).toBe(2), {
        timeout: 5_000,
        interval: 20,
      });
      expect(new Set(exporter.getFinishedSpans().map((span) => span.spanContext().traceId))).toEqual(
        new Set([TRACE_ID]),
      );
    } finally {
      await ferry.close();
      await fake.close();
    }
  });

  it('exports over OTLP/HTTP to the configured endpoint, with the configured headers', async () => {
    const received: { url?: string; headers: Record<string, unknown>; body: string }[] = [];
    const collector = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ url: request.url, headers: request.headers, body: Buffer.concat(chunks).toString() });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    collector.listen(0, '127.0.0.1');
    await new Promise((resolve) => collector.once('listening', resolve));
    const fake = await startFakeOllama({ models: ['m'] });
    const ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      tracing: {
        enabled: true,
        endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`,
        headers: { 'x-collector-token': 'secret-token' },
      },
    });
    try {
      expect((await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' })).status).toBe(200);
    } finally {
      await ferry.close(); // flushes the batch
      await fake.close();
    }
    await vi.waitFor(() => expect(received.length).toBeGreaterThanOrEqual(1), {
      timeout: 5_000,
      interval: 20,
    });
    expect(received[0]).toMatchObject({
      url: '/v1/traces',
      headers: { 'x-collector-token': 'secret-token', 'content-type': 'application/json' },
    });
    // OTLP/HTTP JSON: resource spans of service "ferry", with the request and backend spans.
    const spans = received.flatMap(
      (request) =>
        (
          JSON.parse(request.body) as {
            resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[];
          }
        ).resourceSpans,
    );
    const names = spans.flatMap((resource) =>
      resource.scopeSpans.flatMap((scope) => scope.spans.map((span) => span.name)),
    );
    expect(names.sort()).toEqual(['POST /v1/responses', 'chat m']);
    expect(received[0]!.body).toContain('"service.name"');
    collector.closeAllConnections();
    await new Promise((resolve) => collector.close(resolve));
  });

  it('is off by default: no tracer, nothing on the request', async () => {
    const fake = await startFakeOllama({ models: ['m'] });
    const ferry = await startFerry({ backends: [{ name: 'local', kind: 'ollama', url: fake.url }] });
    try {
      expect(ferry.app.context.tracing).toBeUndefined();
      expect((await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' })).status).toBe(200);
    } finally {
      await ferry.close();
      await fake.close();
    }
  });
});
