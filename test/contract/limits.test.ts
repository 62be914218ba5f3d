import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WINDOW_MS } from '../../src/limits/sliding-window.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';
import { zstdBomb } from '../support/zstd-frames.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function expectEnvelope(response: Response, status: number, code: string): Promise<ErrorBody['error']> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('x-request-id')).toMatch(/^req_/);
  const { error } = (await response.json()) as ErrorBody;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(error.code).toBe(code);
  return error;
}

describe('rate limits over HTTP', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  const clock = { now: 20 * WINDOW_MS };
  const rpmKey = 'sk-rpm-limited-0123';
  const concurrencyKey = 'sk-concurrency-0123';

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry(
      {
        backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
        apiKeys: {
          [rpmKey]: { tenant: 'team-a', requestsPerMinute: 2 },
          [concurrencyKey]: { tenant: 'team-b', concurrentRequests: 1 },
        },
        // Exact counts hold within a replica; test/limits/shared-limits.test.ts covers replicas.
        instances: 1,
      },
      { clock: () => clock.now },
    );
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  const client = (apiKey: string) =>
    new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });

  it('sends x-ratelimit headers on successes and errors, a 429 with Retry-After when over, and recovers', async () => {
    const first = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'one' },
      { authorization: `Bearer ${rpmKey}` },
    );
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    expect(first.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m[\d.]+s$/);
    // A client mistake is counted too, and carries the headers.
    const invalid = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm' },
      { authorization: `Bearer ${rpmKey}` },
    );
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get('x-ratelimit-remaining-requests')).toBe('0');

    const before = fake.requests.length;
    const refused = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'x' },
      { authorization: `Bearer ${rpmKey}` },
    );
    const error = await expectEnvelope(refused, 429, 'rate_limit_exceeded');
    expect(error).toMatchObject({ type: 'requests', param: null });
    expect(error.message).toMatch(/requests per minute: limit 2/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after-ms'))).toBeGreaterThan(0);
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(fake.requests.length).toBe(before);
    // The official SDK sees a RateLimitError.
    await expect(client(rpmKey).responses.create({ model: 'm', input: 'x' })).rejects.toBeInstanceOf(
      OpenAI.RateLimitError,
    );

    // Two minutes later everything has faded.
    clock.now += 2 * WINDOW_MS;
    const recovered = await client(rpmKey).responses.create({ model: 'm', input: 'again' }).withResponse();
    expect(recovered.data.status).toBe('completed');
    expect(recovered.response.headers.get('x-ratelimit-remaining-requests')).toBe('1');
  });

  it('limits concurrent requests: a held stream blocks the next request until it ends', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'slow' },
        { type: 'wait', ms: 15_000 },
        { type: 'text', text: 'end' },
      ],
    });
    const controller = new AbortController();
    const held = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'hold', stream: true },
      { authorization: `Bearer ${concurrencyKey}` },
    );
    expect(held.status).toBe(200);
    const reader = held.body!.getReader();
    await reader.read();
    const refused = await ferry.fetch('/v1/models', {
      headers: { authorization: `Bearer ${concurrencyKey}` },
    });
    const error = await expectEnvelope(refused, 429, 'rate_limit_exceeded');
    expect(error.message).toMatch(/concurrent requests: limit 1/);
    expect(refused.headers.get('retry-after')).toBe('1');
    // Probes are never limited.
    expect((await ferry.fetch('/healthz')).status).toBe(200);

    controller.abort();
    await reader.cancel();
    await fake.waitForAbort();
    await vi.waitFor(
      async () => {
        const ok = await ferry.fetch('/v1/models', {
          headers: { authorization: `Bearer ${concurrencyKey}` },
        });
        expect(ok.status).toBe(200);
      },
      { timeout: 5_000, interval: 50 },
    );
  });
});

describe('request size limits', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      limits: { bodyBytes: 64 * 1024, decompressedBodyBytes: 256 * 1024, headerBytes: 4096, urlBytes: 1024 },
      defaultContextWindow: 1_000_000,
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  it('answers a URL over limits.urlBytes with 414, and a malformed one with 400, in the envelope', async () => {
    // A long id (the router's parameter limit) and a long query string (the hook) alike.
    for (const path of [`/v1/responses/resp_${'a'.repeat(2000)}`, `/v1/models?pad=${'b'.repeat(2000)}`]) {
      const error = await expectEnvelope(await ferry.fetch(path), 414, 'url_too_long');
      expect(error.message).toContain('1024 bytes');
    }
    expect((await ferry.fetch(`/v1/responses/resp_${'a'.repeat(900)}`)).status).toBe(404);
    await expectEnvelope(await ferry.fetch('/v1/responses/%E0%A4%A'), 400, 'invalid_url');
  });

  it('answers headers over limits.headerBytes with 431 in the error envelope', async () => {
    const response = await ferry.fetch('/v1/models', { headers: { 'x-padding': 'p'.repeat(8 * 1024) } });
    const error = await expectEnvelope(response, 431, 'request_headers_too_large');
    expect(error.message).toContain('4096 bytes');
    expect((await ferry.fetch('/v1/models', { headers: { 'x-padding': 'p'.repeat(1024) } })).status).toBe(
      200,
    );
  });

  it('refuses bodies that are too large on the wire or once decompressed, whatever the encoding', async () => {
    await expectEnvelope(
      await postJson(ferry, '/v1/responses', { model: 'm', input: 'x'.repeat(100 * 1024) }),
      413,
      'request_too_large',
    );
    const expanded = Buffer.alloc(1024 * 1024, 0x20);
    const bombs: [string, Buffer][] = [
      ['gzip', gzipSync(expanded)],
      ['deflate', deflateSync(expanded)],
      ['br', brotliCompressSync(expanded)],
      ['zstd', zstdBomb(1024 * 1024)],
      // Many small frames one after another: the cap counts them all.
      ['zstd', Buffer.concat(Array.from({ length: 40 }, () => zstdBomb(8 * 1024)))],
    ];
    const before = fake.requests.length;
    for (const [encoding, body] of bombs) {
      expect(body.length, encoding).toBeLessThan(64 * 1024);
      const response = await ferry.fetch('/v1/responses', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body,
      });
      const error = await expectEnvelope(response, 413, 'request_too_large');
      expect(error.message, encoding).toContain('once decompressed');
    }
    expect(fake.requests.length).toBe(before);
    // Under both limits is fine: 200 KiB of JSON, compressed to a few hundred bytes.
    const fits = Buffer.from(JSON.stringify({ model: 'm', input: 'y'.repeat(200 * 1024) }));
    const small = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
      body: brotliCompressSync(fits),
    });
    expect(small.status).toBe(200);
  });
});

/** A TCP server that accepts connections and never says anything (not even a TLS handshake). */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An OpenAI-compatible server that sends a 200 and half a JSON body, then goes quiet. */
async function stallingChatServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createHttpServer((request, response) => {
    if (request.url?.endsWith('/models')) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }));
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.write('{"id":"chatcmpl-1","object":"chat.completion","choices":[');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Each upstream timeout fires on its own setting and becomes a clear error naming it. */
describe('backend timeouts', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  const timeouts = { connectMs: 300, firstByteMs: 400, idleMs: 400, requestMs: 600 };

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({ backends: [{ name: 'slow', kind: 'ollama', url: fake.url }], timeouts });
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  it('a backend that never accepts the connection: 504 naming timeouts.connectMs', async () => {
    const silent = await silentServer();
    const gateway = await startFerry({
      backends: [{ name: 'mute', kind: 'openai-chat', url: silent.url }],
      timeouts,
    });
    try {
      const error = await expectEnvelope(
        await postJson(gateway, '/v1/responses', { model: 'm', input: 'x' }),
        504,
        'backend_timeout',
      );
      expect(error.type).toBe('server_error');
      expect(error.message).toMatch(
        /backend 'mute'.*did not accept a connection within 300 ms \(timeouts\.connectMs\)/,
      );
    } finally {
      await gateway.close();
      await silent.close();
    }
  });

  it('a stream whose first byte is late: 504 naming timeouts.firstByteMs, before any event', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'too late' }], headerDelayMs: 5_000 });
    const response = await postJson(ferry, '/v1/responses', { model: 'm', input: 'x', stream: true });
    const error = await expectEnvelope(response, 504, 'backend_timeout');
    expect(error.message).toContain('did not start answering within 400 ms (timeouts.firstByteMs)');
    await fake.waitForAbort();
  });

  it('a blocking generation longer than the request budget: 504 naming timeouts.requestMs', async () => {
    fake.enqueue({
      steps: [
        { type: 'wait', ms: 5_000 },
        { type: 'text', text: 'done' },
      ],
    });
    const response = await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' });
    const error = await expectEnvelope(response, 504, 'backend_timeout');
    expect(error.message).toContain('did not answer within 600 ms (timeouts.requestMs)');
    await fake.waitForAbort();
  });

  it('a blocking generation is bounded by requestMs, not firstByteMs (its headers come at the end)', async () => {
    const gateway = await startFerry({
      backends: [{ name: 'slow', kind: 'ollama', url: fake.url }],
      timeouts: { ...timeouts, firstByteMs: 300, requestMs: 5_000 },
    });
    try {
      fake.enqueue({
        steps: [
          { type: 'wait', ms: 1_500 },
          { type: 'text', text: 'worth it' },
        ],
      });
      const response = await gateway.client.responses.create({ model: 'm', input: 'x' });
      expect(response.output_text).toBe('worth it');
    } finally {
      await gateway.close();
    }
  });

  it('a stream that goes silent mid-way: error + response.failed naming timeouts.idleMs', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'half an answer' },
        { type: 'wait', ms: 5_000 },
        { type: 'text', text: 'never' },
      ],
    });
    const response = await postJson(ferry, '/v1/responses', { model: 'm', input: 'x', stream: true });
    expect(response.status).toBe(200);
    const capture = await captureSse(response);
    const events = capture.frames.map((frame) => frame.data) as { type: string }[];
    const checked = checkStream(events);
    expect(checked.terminalType).toBe('response.failed');
    const error = events.find((event) => event.type === 'error') as unknown as { error: { code: string } };
    expect(error.error.code).toBe('backend_timeout');
    const final = checked.final as unknown as { id: string; error: { code: string; message: string } };
    expect(final.error.code).toBe('backend_timeout');
    expect(final.error.message).toContain('went silent for more than 400 ms (timeouts.idleMs)');
    const stored = await ferry.client.responses.retrieve(final.id);
    expect(stored.status).toBe('failed');
  });

  it('a blocking answer that stalls after its headers: 504 naming timeouts.idleMs', async () => {
    const stalling = await stallingChatServer();
    const gateway = await startFerry({
      backends: [{ name: 'stall', kind: 'openai-chat', url: stalling.url }],
      timeouts,
    });
    try {
      const error = await expectEnvelope(
        await postJson(gateway, '/v1/responses', { model: 'm', input: 'x' }),
        504,
        'backend_timeout',
      );
      expect(error.message).toContain('went silent for more than 400 ms (timeouts.idleMs)');
    } finally {
      await gateway.close();
      await stalling.close();
    }
  });

  it('per-backend timeouts override the global ones', async () => {
    const gateway = await startFerry({
      backends: [{ name: 'patient', kind: 'ollama', url: fake.url, timeouts: { firstByteMs: 3_000 } }],
      timeouts,
    });
    try {
      fake.enqueue({ steps: [{ type: 'text', text: 'worth the wait' }], headerDelayMs: 700 });
      const response = await postJson(gateway, '/v1/responses', { model: 'm', input: 'x', stream: true });
      expect(response.status).toBe(200);
      const capture = await captureSse(response);
      expect(checkStream(capture.frames.map((frame) => frame.data)).terminalType).toBe('response.completed');
    } finally {
      await gateway.close();
    }
  });
});
