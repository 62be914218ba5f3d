import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Serves recorded response bodies byte for byte, optionally cut into separate writes at
 * chosen offsets so a client's line and event splitting is exercised across TCP reads.
 */

export interface ReplayRoute {
  /** Default `POST`. */
  method?: string;
  path: string;
  /** Default 200. */
  status?: number;
  contentType: string;
  /** A file whose bytes are served verbatim (read when the server starts). */
  file?: string;
  /** The bytes to serve, when there is no file. */
  body?: string | Uint8Array;
  /** Byte offsets where the body is cut into separate writes. */
  splitAt?: number[];
  /** Milliseconds between the pieces (default: just enough for separate reads). */
  pieceGapMs?: number;
}

export interface ReplayedRequest {
  method: string;
  path: string;
  body: string;
}

export interface ReplayServer {
  /** `http://127.0.0.1:PORT` (add the API prefix the client expects, such as `/v1`). */
  readonly url: string;
  readonly requests: ReplayedRequest[];
  /** TCP connections accepted so far (a kept-alive client reuses one). */
  readonly connections: number;
  close(): Promise<void>;
}

/** Milliseconds between the pieces of a split body: enough for each to arrive as its own read. */
const PIECE_GAP_MS = 2;

export async function startReplayServer(routes: ReplayRoute[]): Promise<ReplayServer> {
  const prepared = new Map(
    routes.map((route) => [`${route.method ?? 'POST'} ${route.path}`, prepare(route)]),
  );
  const requests: ReplayedRequest[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      requests.push({ method: req.method ?? 'GET', path, body: await readBody(req) });
      const route = prepared.get(`${req.method} ${path}`);
      if (!route) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no recording for this path');
        return;
      }
      const headers: Record<string, string | number> = { 'content-type': route.contentType };
      // A body sent whole gets a Content-Length; a split one goes out chunked, as streams do.
      if (route.pieces.length === 1) headers['content-length'] = route.bytes.length;
      res.writeHead(route.status, headers);
      for (const [index, piece] of route.pieces.entries()) {
        if (res.destroyed) return;
        if (index > 0) await sleep(route.pieceGapMs);
        await new Promise<void>((resolve) => res.write(piece, () => resolve()));
      }
      res.end();
    })().catch(() => res.destroy());
  });
  let connections = 0;
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function prepare(route: ReplayRoute): {
  status: number;
  contentType: string;
  bytes: Buffer;
  pieces: Buffer[];
  pieceGapMs: number;
} {
  const bytes = route.file !== undefined ? readFileSync(route.file) : Buffer.from(route.body ?? '');
  return {
    status: route.status ?? 200,
    contentType: route.contentType,
    bytes,
    pieces: splitBytes(bytes, route.splitAt ?? []),
    pieceGapMs: route.pieceGapMs ?? PIECE_GAP_MS,
  };
}

/** Cuts `bytes` at the given offsets (out-of-range and repeated offsets are ignored). */
export function splitBytes(bytes: Buffer, offsets: number[]): Buffer[] {
  const cuts = [...new Set(offsets)]
    .filter((offset) => offset > 0 && offset < bytes.length)
    .sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    pieces.push(bytes.subarray(start, cut));
    start = cut;
  }
  return pieces;
}

/**
 * Offsets where cutting a recorded body is most likely to trip a parser: after the first
 * byte, inside the first multi-byte UTF-8 character, right before the first line ending,
 * between the two newlines ending the first SSE event, inside a later `data:` prefix, and
 * one byte before the end.
 */
export function awkwardOffsets(bytes: Uint8Array): number[] {
  const offsets = [1, bytes.length - 1];
  const multiByte = bytes.findIndex((byte) => byte >= 0xc0);
  if (multiByte !== -1) offsets.push(multiByte + 1);
  const newline = bytes.indexOf(0x0a);
  if (newline !== -1) offsets.push(newline);
  const eventEnd = Buffer.from(bytes).indexOf('\n\n');
  if (eventEnd !== -1) offsets.push(eventEnd + 1);
  const laterData = Buffer.from(bytes).indexOf('data:', Math.floor(bytes.length / 2));
  if (laterData !== -1) offsets.push(laterData + 2);
  return offsets;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
