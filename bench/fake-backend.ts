/**
 * The benchmark's backend: a minimal, fast Ollama `/api/chat` (and `/api/tags`) that answers a
 * fixed reply, blocking or streamed with configurable pacing, and shows the last chat request it
 * got at `GET /debug/last-chat`. It never parses the request JSON
 * (it only looks for `"stream":false`), so its cost does not grow with the prompt, and Ferry's
 * own cost is what a comparison shows. Run as a child process:
 *
 *   node --import tsx bench/fake-backend.ts --port 0 --tokens 16 --interval 0
 *
 * It prints `{"port":N}` on stdout once listening.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    /** Reply length in tokens (one short word each). */
    tokens: { type: 'string', default: '16' },
    /** Milliseconds between streamed tokens. */
    interval: { type: 'string', default: '0' },
    /** Milliseconds before the answer starts (model latency). */
    latency: { type: 'string', default: '0' },
  },
});
const tokens = Number(values.tokens);
const intervalMs = Number(values.interval);
const latencyMs = Number(values.latency);

const words = Array.from({ length: tokens }, (_, i) => `w${i % 10} `);
const text = words.join('');
const model = 'bench';
const createdAt = '2026-01-01T00:00:00Z';
const doneFields = `"done":true,"done_reason":"stop","total_duration":1000000,"load_duration":1000,"prompt_eval_count":12,"prompt_eval_duration":100000,"eval_count":${tokens},"eval_duration":900000`;
const whole = `{"model":"${model}","created_at":"${createdAt}","message":{"role":"assistant","content":${JSON.stringify(text)}},${doneFields}}`;
const lines = words.map(
  (word) =>
    `{"model":"${model}","created_at":"${createdAt}","message":{"role":"assistant","content":${JSON.stringify(word)}},"done":false}\n`,
);
const lastLine = `{"model":"${model}","created_at":"${createdAt}","message":{"role":"assistant","content":""},${doneFields}}\n`;
const tags = JSON.stringify({ models: [{ name: model, model, modified_at: createdAt, size: 1 }] });

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// The last chat request, so the bench can send a gateway's exact upstream body directly.
let lastChat: Buffer = Buffer.alloc(0);

const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/api/tags') {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(tags);
    return;
  }
  if (request.method === 'GET' && request.url === '/debug/last-chat') {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(lastChat);
    return;
  }
  if (request.method !== 'POST' || request.url !== '/api/chat') {
    response.writeHead(404).end('{"error":"not found"}');
    return;
  }
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks);
    lastChat = body;
    // Ollama streams unless told otherwise; the model "warmup" is never paced (it warms callers up).
    const streamed = !body.includes('"stream":false');
    void answer(streamed, response, body.includes('"model":"warmup"'));
  });
});

async function answer(streamed: boolean, response: ServerResponse, unpaced: boolean): Promise<void> {
  if (latencyMs && !unpaced) await wait(latencyMs);
  if (!streamed) {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(whole);
    return;
  }
  response.writeHead(200, { 'content-type': 'application/x-ndjson' });
  if (!intervalMs || unpaced) {
    response.end(lines.join('') + lastLine);
    return;
  }
  for (const line of lines) {
    if (response.destroyed) return;
    response.write(line);
    await wait(intervalMs);
  }
  response.end(lastLine);
}

server.keepAliveTimeout = 60_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
