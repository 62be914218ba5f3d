/**
 * A reference point, not a gateway: the least a Node.js proxy can do per request (read the
 * request, call the backend over a pooled keep-alive connection, return its answer). Measured
 * in the same run as Ferry, it shows how much of Ferry's added latency is the proxy hop itself
 * on this machine, and how much is Ferry's work. A GET is answered at once with a small JSON
 * body, without the backend: the least any Node.js HTTP answer costs here, the floor for
 * Ferry's endpoints that never call a backend (retrieve, input items, delete, probes). A POST
 * to the backend's own path (`/api/chat`) is forwarded as sent and its answer piped back chunk
 * by chunk as it arrives: the floor for a streamed answer's time to first token.
 *
 *   node --import tsx bench/bare-proxy.ts --backend http://127.0.0.1:PORT   → prints {"port":N}
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({ options: { backend: { type: 'string' } } });
const upstream = new Pool(values.backend!, { connections: 4096, pipelining: 1 });
const body = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'hello' }],
  stream: false,
});

const FLOOR_BODY = JSON.stringify({ object: 'list', data: [] });

const server = createServer((request, response) => {
  if (request.method === 'GET') {
    request.resume();
    response.writeHead(200, { 'content-type': 'application/json' }).end(FLOOR_BODY);
    return;
  }
  if (request.url === '/api/chat') {
    void pipeStream(request, response);
    return;
  }
  request.resume();
  request.on('end', async () => {
    try {
      const answer = await upstream.request({
        method: 'POST',
        path: '/api/chat',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const text = await answer.body.text();
      response.writeHead(200, { 'content-type': 'application/json' }).end(text);
    } catch {
      response.writeHead(502).end();
    }
  });
});
async function pipeStream(request: IncomingMessage, response: ServerResponse): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const answer = await upstream.request({
      method: 'POST',
      path: '/api/chat',
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat(chunks),
    });
    response.writeHead(answer.statusCode, { 'content-type': 'application/x-ndjson' });
    for await (const chunk of answer.body) response.write(chunk);
    response.end();
  } catch {
    if (!response.headersSent) response.writeHead(502);
    response.end();
  }
}

server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
