import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { BackendError, type BackendErrorKind } from './errors.js';

export interface UpstreamTimeouts {
  /** Time to establish a TCP connection. */
  connectMs: number;
  /** Time from sending the request to the response headers (queue wait and prompt processing included). */
  firstByteMs: number;
  /** Longest silence allowed between two body chunks. */
  idleMs: number;
  /** Longest a non-streamed generation may take (its headers only come at the end). */
  requestMs: number;
}

export interface UpstreamOptions {
  connections: number;
  timeouts: UpstreamTimeouts;
  /** Headers sent on every request (an API key for the backend, for example). */
  headers?: Record<string, string>;
}

export interface UpstreamResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
}

/**
 * A pooled keep-alive HTTP client for one backend, with the backend's network failures
 * translated into BackendErrors. One per backend, shared by every request.
 */
export class UpstreamClient {
  readonly backend: string;
  readonly baseUrl: URL;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly timeouts: UpstreamTimeouts;

  constructor(backend: string, baseUrl: string, options: UpstreamOptions) {
    this.backend = backend;
    this.baseUrl = new URL(baseUrl);
    this.basePath = this.baseUrl.pathname.replace(/\/+$/, '');
    this.headers = options.headers ?? {};
    this.timeouts = options.timeouts;
    this.pool = new Pool(this.baseUrl.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: options.timeouts.connectMs,
      headersTimeout: options.timeouts.firstByteMs,
      bodyTimeout: options.timeouts.idleMs,
    });
  }

  /** Sends a request; rejects with BackendError for network failures (never for an HTTP status). */
  async request(
    method: 'GET' | 'POST',
    path: string,
    options: {
      body?: string | Buffer;
      signal?: AbortSignal;
      headers?: Record<string, string>;
      whole?: boolean;
    } = {},
  ): Promise<UpstreamResponse> {
    try {
      const response = await this.pool.request({
        method,
        path: this.basePath + path,
        headers: {
          ...this.headers,
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
        body: options.body,
        signal: options.signal,
        ...(options.whole ? { headersTimeout: this.timeouts.requestMs } : {}),
      });
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      throw this.translate(error, options.signal, options.whole);
    }
  }

  /** Sends a JSON request and parses a 2xx JSON answer; any other status becomes a BackendError. */
  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.request(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await this.readText(response, signal);
    if (response.status >= 300) throw this.statusError(response.status, text, response.headers);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new BackendError(this.backend, 'upstream_error', `${this.label()} returned invalid JSON.`, {
        status: response.status,
        cause: error,
      });
    }
  }

  async readText(response: UpstreamResponse, signal?: AbortSignal): Promise<string> {
    try {
      return await response.body.text();
    } catch (error) {
      throw this.translate(error, signal);
    }
  }

  /** Turns a non-2xx answer into a BackendError, keeping the backend's own message. */
  statusError(status: number, bodyText: string, headers?: UpstreamResponse['headers']): BackendError {
    const detail = extractErrorMessage(bodyText) ?? `HTTP ${status}`;
    const retryAfterHeader = headers?.['retry-after'];
    const retryAfter =
      typeof retryAfterHeader === 'string' ? Number(retryAfterHeader) || undefined : undefined;
    return new BackendError(this.backend, classifyStatus(status, bodyText), `${this.label()}: ${detail}`, {
      status,
      retryAfter,
    });
  }

  /**
   * Maps whatever undici (or a stream read) threw into a BackendError; aborts pass through.
   * A timeout's message names the setting that fired, so an operator knows which one to tune.
   */
  translate(error: unknown, signal?: AbortSignal, whole = false): unknown {
    if (error instanceof BackendError) return error;
    if (signal?.aborted) return signal.reason ?? error;
    const code = (error as { code?: string } | undefined)?.code ?? '';
    let kind: BackendErrorKind = 'upstream_error';
    let what = 'failed';
    if (
      error instanceof undiciErrors.ConnectTimeoutError ||
      error instanceof undiciErrors.HeadersTimeoutError ||
      error instanceof undiciErrors.BodyTimeoutError
    ) {
      kind = 'timeout';
      const { connectMs, firstByteMs, idleMs, requestMs } = this.timeouts;
      what =
        error instanceof undiciErrors.ConnectTimeoutError
          ? `did not accept a connection within ${connectMs} ms (timeouts.connectMs)`
          : error instanceof undiciErrors.HeadersTimeoutError
            ? whole
              ? `did not answer within ${requestMs} ms (timeouts.requestMs)`
              : `did not start answering within ${firstByteMs} ms (timeouts.firstByteMs)`
            : `went silent for more than ${idleMs} ms (timeouts.idleMs)`;
    } else if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) {
      kind = 'unavailable';
      what = `is unreachable (${code})`;
    } else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
      what = 'closed the connection unexpectedly';
    } else if (error instanceof Error) {
      what = `failed: ${error.message}`;
    }
    return new BackendError(this.backend, kind, `${this.label()} ${what}.`, { cause: error });
  }

  label(): string {
    return `backend '${this.backend}' (${this.baseUrl.origin})`;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Finds the human message in the error bodies of Ollama, llama.cpp, vLLM and OpenAI-compatible servers. */
export function extractErrorMessage(bodyText: string): string | undefined {
  if (!bodyText) return undefined;
  try {
    const body = JSON.parse(bodyText) as unknown;
    if (body && typeof body === 'object') {
      const record = body as Record<string, unknown>;
      const error = record.error;
      if (typeof error === 'string') return error;
      if (error && typeof error === 'object') {
        const message = (error as Record<string, unknown>).message;
        if (typeof message === 'string') return message;
      }
      if (typeof record.message === 'string') return record.message;
      if (typeof record.detail === 'string') return record.detail;
    }
  } catch {
    // Not JSON: fall through to the raw text.
  }
  return bodyText.length > 500 ? `${bodyText.slice(0, 500)}…` : bodyText;
}

const CONTEXT_PATTERNS = [
  /exceeds? the (available )?context (size|length)/i,
  /exceed_context_size/i,
  /maximum context length/i,
  /context length (is|of)/i,
  /prompt is too long/i,
  /input length exceeds/i,
];

export function looksLikeContextOverflow(text: string): boolean {
  return CONTEXT_PATTERNS.some((pattern) => pattern.test(text));
}

function classifyStatus(status: number, bodyText: string): BackendErrorKind {
  // llama.cpp reports context overflow with 400 or 500 depending on the build.
  if ((status === 400 || status === 500) && looksLikeContextOverflow(bodyText))
    return 'context_length_exceeded';
  if (status === 404) return 'model_not_found';
  if (status === 429 || status === 503) return 'overloaded';
  if (status === 400 || status === 422) return 'invalid_request';
  return 'upstream_error';
}

/**
 * A streamed body's chunks, for a reader that may stop at the backend's last message, before
 * the body has formally ended. Node's own iterator would then destroy the body with an
 * AbortError, building a stack trace on every stream (about 5 % of Ferry's CPU when
 * streaming, BENCHMARKS.md); `release` lets the body finish instead, so its connection returns
 * to the pool, or destroys it if the reader stopped for any other reason.
 */
export function streamedChunks(body: UpstreamResponse['body']): AsyncIterable<Buffer> {
  return body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
}

/** Ends a body read with `streamedChunks`: drained if the backend said it was done, else destroyed. */
export function releaseStreamedBody(body: UpstreamResponse['body'], backendDone: boolean): void {
  if (backendDone) {
    body.dump().catch(() => undefined);
    return;
  }
  // undici destroys with an AbortError; the reader has already stopped, so nobody else listens.
  body.once('error', () => undefined);
  body.destroy();
}

/** Splits a streamed body into lines (NDJSON). Trailing text without a newline is yielded last. */
export async function* readLines(body: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) yield line;
      newline = pending.indexOf('\n');
    }
  }
  pending += decoder.decode();
  const rest = pending.trim();
  if (rest) yield rest;
}
