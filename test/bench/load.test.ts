import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  percentiles,
  runLoad,
  type HoldResult,
  type RequestsResult,
  type StreamResult,
} from '../../bench/load.js';

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** A loopback server for the load generator to measure; returns its origin. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Stream mode: `count` NDJSON streams one after another, tokens marked as the bench marks them. */
const ndjsonStreams = async (origin: string, count: number) =>
  (await runLoad({
    mode: 'stream',
    origin,
    path: '/api/chat',
    body: '{}',
    concurrency: 1,
    count,
    tokenMarker: '"content":"w',
  })) as StreamResult;

describe("the benchmark's load generator", () => {
  it('reads percentiles from unsorted samples', () => {
    const samples = Array.from({ length: 100 }, (_, index) => 100 - index);
    expect(percentiles(samples)).toEqual({ p50: 51, p90: 91, p99: 100, max: 100, mean: 50.5 });
    expect(percentiles([]).p50).toBeNaN();
  });

  it('counts answered requests and every answer that is not a 200 as an error', async () => {
    let served = 0;
    const origin = await serve((request, response) => {
      request.resume();
      served++;
      response.writeHead(served % 4 === 0 ? 500 : 200).end('{}');
    });
    const result = (await runLoad({
      mode: 'requests',
      origin,
      path: '/v1/responses',
      body: '{}',
      concurrency: 2,
      warmupMs: 20,
      durationMs: 200,
    })) as RequestsResult;
    expect(result.requests).toBeGreaterThan(10);
    // One in four failed: the errors are counted apart from the measured requests.
    expect(result.errors).toBeGreaterThan(result.requests / 6);
    expect(result.errors).toBeLessThan(result.requests / 2);
    expect(result.rps).toBeGreaterThan(0);
    expect(result.latency.p50).toBeGreaterThan(0);
    expect(result.latency.p99).toBeGreaterThanOrEqual(result.latency.p50);
  });

  it('uses each of a list of paths once, with its method, and stops when they run out', async () => {
    const seen: string[] = [];
    const origin = await serve((request, response) => {
      seen.push(`${request.method} ${request.url}`);
      response.writeHead(200).end();
    });
    const paths = Array.from({ length: 40 }, (_, index) => `/v1/responses/resp_${index}`);
    const result = (await runLoad({
      mode: 'requests',
      method: 'DELETE',
      origin,
      path: '',
      paths,
      body: '',
      concurrency: 1,
      warmupMs: 0,
      durationMs: 10_000,
    })) as RequestsResult;
    expect(seen).toEqual(paths.map((path) => `DELETE ${path}`));
    expect(result.requests).toBe(40);
    expect(result.errors).toBe(0);
  });

  it('times the first token and the gaps between tokens of a paced stream', async () => {
    const origin = await serve(async (request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (let token = 0; token < 5; token++) {
        response.write(`{"message":{"content":"w${token}"}}\n`);
        await wait(15);
      }
      response.end('{"done":true}\n');
    });
    const result = await ndjsonStreams(origin, 3);
    expect(result).toMatchObject({ streams: 3, errors: 0, tokensPerStream: 5 });
    expect(result.ttft.p50).toBeGreaterThan(0);
    // The first token, not the last (which comes about 60 ms after the request).
    expect(result.ttft.p50).toBeLessThan(45_000);
    // Four gaps per stream, each at least most of the 15 ms pacing.
    expect(result.gap.p50).toBeGreaterThan(10_000);
  });

  it('counts a stream that fails as an error, not as a measurement', async () => {
    const origin = await serve((request, response) => {
      request.resume();
      response.writeHead(503).end('{"error":"busy"}');
    });
    const result = await ndjsonStreams(origin, 2);
    expect(result).toMatchObject({ streams: 0, errors: 2 });
  });

  it('holds streams open at once and reports the one that stalled for over a second', async () => {
    let opened = 0;
    const origin = await serve(async (request, response) => {
      request.resume();
      const stalls = opened++ === 0;
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('event: response.output_text.delta\ndata: {}\n\n');
      await wait(stalls ? 1_100 : 20);
      response.end('event: response.output_text.delta\ndata: {}\n\n');
    });
    const result = (await runLoad({
      mode: 'hold',
      origin,
      path: '/v1/responses',
      body: '{}',
      concurrency: 5,
      tokenMarker: 'event: response.output_text.delta',
    })) as HoldResult;
    expect(result).toMatchObject({ streams: 5, completed: 5, errors: 0, stalled: 1 });
    expect(result.gap.max).toBeGreaterThan(1_000_000);
  });
});
