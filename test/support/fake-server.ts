import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  echoScenario,
  type FakeBackend,
  type RecordedRequest,
  type Scenario,
  type ScenarioHandler,
  type ScenarioStep,
} from './scenario.js';

/**
 * The machinery the fake backends share: a loopback HTTP server that records every request,
 * hands out scenarios (queued first, then the handler), paces streamed answers and notices
 * clients that go away. Each fake only adds its routes and its wire format.
 */

/** One step of a streamed answer on the wire: bytes to write, a pause, or an abrupt disconnect. */
export type WireAction = { write: string } | { wait: number } | { drop: true };

export type ToolCallStep = Extract<ScenarioStep, { type: 'tool_call' }>;

export interface FakeRoute {
  method: 'GET' | 'POST' | 'HEAD';
  path: string;
  handle(exchange: FakeExchange, fake: FakeServer): void | Promise<void>;
}

export interface FakeServerOptions {
  models: string[];
  routes: FakeRoute[];
  /** Path prefix added to the server's URL (`/v1` for chat servers). */
  basePath?: string;
  /** How this server answers an unknown path. */
  notFound(exchange: FakeExchange): void;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** One request being answered: what was recorded, plus ways to answer it like a real server. */
export class FakeExchange {
  readonly startedAt = process.hrtime.bigint();
  /** Set when the request body was not valid JSON (the recorded body is then `{}`). */
  readonly parseError: string | undefined;
  private readonly connection = new AbortController();
  private droppedByServer = false;

  constructor(
    readonly recorded: RecordedRequest,
    req: IncomingMessage,
    readonly res: ServerResponse,
    parseError: string | undefined,
    onClientAbort: (request: RecordedRequest) => void,
  ) {
    this.parseError = parseError;
    res.on('finish', () => {
      recorded.completed = true;
    });
    const closed = () => {
      // A close without 'finish' means the connection ended before the answer did.
      if (!res.writableFinished && !this.droppedByServer) onClientAbort(recorded);
      this.connection.abort();
    };
    // The client may already have gone while its request body was being read.
    if (req.socket.destroyed) closed();
    else res.on('close', closed);
  }

  get body(): Record<string, unknown> {
    return this.recorded.body;
  }

  /** Whether the connection is gone (client abort, drop, or fake closing). */
  get isClosed(): boolean {
    return this.connection.signal.aborted;
  }

  /** Waits `ms`, cut short when the connection closes; resolves whether it is still open. */
  async pause(ms: number): Promise<boolean> {
    if (ms > 0 && !this.isClosed) {
      await sleep(ms, undefined, { signal: this.connection.signal }).catch(() => undefined);
    }
    return !this.isClosed;
  }

  /** Answers with one JSON body (no trailing newline, as Ollama and llama.cpp write it). */
  sendJson(status: number, body: unknown, contentType = JSON_TYPE): void {
    this.sendText(status, JSON.stringify(body), contentType);
  }

  sendText(status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
    if (this.isClosed) return;
    this.res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
    this.res.end(text);
  }

  /**
   * Streams `actions` after sending the headers at once (so a pause before the first chunk
   * is an idle stream, not a slow first byte). `chunkDelayMs` separates consecutive writes.
   */
  async stream(
    headers: Record<string, string>,
    actions: Iterable<WireAction>,
    chunkDelayMs = 0,
  ): Promise<void> {
    if (this.isClosed) return;
    this.res.writeHead(200, headers);
    this.res.flushHeaders();
    let wroteBefore = false;
    for (const action of actions) {
      if (this.isClosed) return;
      if ('wait' in action) {
        if (!(await this.pause(action.wait))) return;
      } else if ('drop' in action) {
        this.drop();
        return;
      } else {
        if (wroteBefore && chunkDelayMs > 0 && !(await this.pause(chunkDelayMs))) return;
        wroteBefore = true;
        if (!this.res.write(action.write)) await this.drained();
      }
    }
    if (!this.isClosed) this.res.end();
  }

  /** Cuts the connection without finishing the answer (what a crashing server looks like). */
  drop(): void {
    this.droppedByServer = true;
    // destroySoon lets what was already written reach the client before the connection ends.
    this.res.socket?.destroySoon();
  }

  private async drained(): Promise<void> {
    await once(this.res, 'drain', { signal: this.connection.signal }).catch(() => undefined);
  }
}

export class FakeServer implements FakeBackend {
  readonly requests: RecordedRequest[] = [];
  models: string[];
  private readonly queue: Scenario[] = [];
  private handler: ScenarioHandler = echoScenario;
  private readonly routes = new Map<string, FakeRoute>();
  /** Aborted requests already handed out by waitForAbort, so each wait sees a new one. */
  private readonly reportedAborts = new WeakSet<RecordedRequest>();
  private readonly abortWaiters = new Set<{
    resolve(request: RecordedRequest): void;
    reject(error: Error): void;
  }>();
  private readonly server: Server;
  private baseUrl = '';

  private constructor(private readonly options: FakeServerOptions) {
    this.models = [...options.models];
    for (const route of options.routes) this.routes.set(`${route.method} ${route.path}`, route);
    this.server = createServer((req, res) => void this.dispatch(req, res));
    // Keep idle keep-alive connections from holding the process open between tests.
    this.server.keepAliveTimeout = 5_000;
  }

  static async start(options: FakeServerOptions): Promise<FakeServer> {
    const fake = new FakeServer(options);
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    const { port } = fake.server.address() as AddressInfo;
    fake.baseUrl = `http://127.0.0.1:${port}${options.basePath ?? ''}`;
    return fake;
  }

  get url(): string {
    return this.baseUrl;
  }

  enqueue(...scenarios: Scenario[]): void {
    this.queue.push(...scenarios);
  }

  setHandler(handler: ScenarioHandler): void {
    this.handler = handler;
  }

  setModels(models: string[]): void {
    this.models = [...models];
  }

  /** The scenario for a generation request: the next queued one, else the handler's. */
  nextScenario(request: RecordedRequest): Scenario {
    return this.queue.shift() ?? this.handler(request);
  }

  /**
   * Resolves with an aborted request not handed out by an earlier call (one that already
   * happened, or the next one), or rejects after `timeoutMs`.
   */
  waitForAbort(timeoutMs = 5_000): Promise<RecordedRequest> {
    const seen = this.requests.find((request) => request.aborted && !this.reportedAborts.has(request));
    if (seen) {
      this.reportedAborts.add(seen);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (request: RecordedRequest) => {
          clearTimeout(timer);
          this.abortWaiters.delete(waiter);
          resolve(request);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          this.abortWaiters.delete(waiter);
          reject(error);
        },
      };
      const timer = setTimeout(
        () => waiter.reject(new Error(`the fake backend saw no aborted request within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.abortWaiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    for (const waiter of [...this.abortWaiters]) waiter.reject(new Error('the fake backend was closed'));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Streams still in progress (or paused in a `wait`) must not keep the server open.
    this.server.closeAllConnections();
    await closed;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const { body, parseError } = parseJsonBody(await readBody(req));
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path,
      headers: { ...req.headers },
      body,
      aborted: false,
      completed: false,
    };
    this.requests.push(recorded);
    const exchange = new FakeExchange(recorded, req, res, parseError, (request) => this.markAborted(request));
    const route = this.routes.get(`${recorded.method} ${path}`);
    try {
      if (route) await route.handle(exchange, this);
      else this.options.notFound(exchange);
    } catch (error) {
      // A bug in a fake should fail the test loudly, not hang it.
      if (!res.headersSent) exchange.sendText(500, `fake backend failed: ${String(error)}`);
      else res.destroy();
    }
  }

  private markAborted(request: RecordedRequest): void {
    request.aborted = true;
    const [waiter] = this.abortWaiters;
    if (!waiter) return;
    this.reportedAborts.add(request);
    waiter.resolve(request);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of req) chunks.push(chunk as Buffer);
  } catch {
    // The client went away while sending; answer what arrived.
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonBody(text: string): { body: Record<string, unknown>; parseError?: string } {
  if (!text) return { body: {} };
  try {
    const value = JSON.parse(text) as unknown;
    const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
    if (isObject) return { body: value as Record<string, unknown> };
    return { body: {}, parseError: 'the request body is not a JSON object' };
  } catch (error) {
    return { body: {}, parseError: (error as Error).message };
  }
}

// ---- Rendering helpers shared by the fakes ----

/**
 * Splits text the way a model streams it: one word per piece (with its leading whitespace),
 * or `size` characters per piece. Never splits a UTF-16 surrogate pair.
 */
export function* textPieces(text: string, size?: number): Generator<string> {
  if (!text) return;
  if (size === undefined || size <= 0) {
    yield* text.match(/\s*\S+|\s+/g) ?? [text];
    return;
  }
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + size, text.length);
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end++;
    yield text.slice(start, end);
    start = end;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** Groups consecutive tool calls, which servers that send calls whole put in one message. */
export function* groupToolCalls(steps: ScenarioStep[]): Generator<ScenarioStep | ToolCallStep[]> {
  let group: ToolCallStep[] = [];
  for (const step of steps) {
    if (step.type === 'tool_call') {
      group.push(step);
      continue;
    }
    if (group.length) yield group;
    group = [];
    yield step;
  }
  if (group.length) yield group;
}

export interface TokenCounts {
  input: number;
  output: number;
  reasoning: number;
  cached: number;
}

/** The scenario's stated token counts, or rough estimates (4 characters a token) from the texts. */
export function tokenCounts(scenario: Scenario, request: RecordedRequest): TokenCounts {
  if (scenario.usage) {
    const { input, output, reasoning = 0, cached = 0 } = scenario.usage;
    return { input, output, reasoning, cached };
  }
  let thinking = 0;
  let answer = 0;
  for (const step of scenario.steps) {
    if (step.type === 'thinking') thinking += step.text.length;
    else if (step.type === 'text') answer += step.text.length;
    else if (step.type === 'tool_call') answer += step.name.length + argumentsText(step.arguments).length;
  }
  const reasoning = Math.ceil(thinking / 4);
  return {
    input: Math.max(1, Math.ceil(promptLength(request) / 4)),
    output: reasoning + Math.ceil(answer / 4),
    reasoning,
    cached: 0,
  };
}

function promptLength(request: RecordedRequest): number {
  const messages = request.body.messages;
  return Array.isArray(messages) ? JSON.stringify(messages).length : 0;
}

/** A tool call's arguments as JSON text (how chat servers send them). */
export function argumentsText(args: Record<string, unknown> | string): string {
  return typeof args === 'string' ? args : JSON.stringify(args);
}

/** A tool call's arguments as an object (how Ollama sends them); text that is not JSON stays text. */
export function argumentsObject(args: Record<string, unknown> | string): Record<string, unknown> | string {
  if (typeof args !== 'string') return args;
  try {
    return JSON.parse(args) as Record<string, unknown>;
  } catch {
    return args;
  }
}

/** Everything a non-streamed answer carries, gathered from a scenario. */
export interface WholeAnswer {
  text: string;
  thinking: string;
  toolCalls: ToolCallStep[];
  /** Set when the scenario fails; the fake answers with a 500. */
  error?: string;
}

/**
 * Walks a scenario for a non-streamed answer, honouring its pauses. Resolves `undefined` when
 * the answer must not be sent: the scenario dropped the connection or the client went away.
 */
export async function collectWholeAnswer(
  exchange: FakeExchange,
  scenario: Scenario,
): Promise<WholeAnswer | undefined> {
  const answer: WholeAnswer = { text: '', thinking: '', toolCalls: [] };
  for (const step of scenario.steps) {
    switch (step.type) {
      case 'thinking':
        answer.thinking += step.text;
        break;
      case 'text':
        answer.text += step.text;
        break;
      case 'tool_call':
        answer.toolCalls.push(step);
        break;
      case 'error':
        return { ...answer, error: step.message };
      case 'drop':
        exchange.drop();
        return undefined;
      case 'wait':
        if (!(await exchange.pause(step.ms))) return undefined;
        break;
    }
  }
  return exchange.isClosed ? undefined : answer;
}

/** Whether a scenario asks for an HTTP error instead of a generation. */
export function wantsErrorStatus(scenario: Scenario): boolean {
  return (scenario.status !== undefined && scenario.status !== 200) || scenario.errorBody !== undefined;
}

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A random id of `length` characters from `alphabet` (ids only need to look like the server's). */
export function randomId(length: number, alphabet = ALPHANUMERIC): string {
  let id = '';
  for (let i = 0; i < length; i++) id += alphabet[Math.floor(Math.random() * alphabet.length)];
  return id;
}
