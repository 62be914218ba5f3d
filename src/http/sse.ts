import type { ServerResponse } from 'node:http';
import type { StreamEvent } from '../api/wire.js';

/**
 * Writes a Server-Sent Events stream. Each event is one `write` of a whole
 * `event: …\ndata: …\n\n` frame (clients that parse per network read must never see half a
 * frame), and a quiet stream gets a comment every `keepAliveMs` so proxies and clients with
 * idle timeouts hold on through slow prompt processing or long reasoning. Frames written in the
 * same tick (the headers, `response.created` and `response.in_progress`; an item's opening
 * events and its first delta) leave in one socket write: on loopback each write is a syscall
 * that costs about as much as building the frames.
 */
export class SseWriter {
  private readonly res: ServerResponse;
  private readonly keepAliveMs: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private corked = false;

  constructor(res: ServerResponse, keepAliveMs: number) {
    this.res = res;
    this.keepAliveMs = keepAliveMs;
    res.once('close', () => this.stop());
  }

  start(headers: Record<string, string | number | string[] | undefined>): void {
    this.batchThisTick();
    this.res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.res.flushHeaders();
    this.arm();
  }

  event(event: StreamEvent): void {
    this.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /** A frame already serialised (a replayed event log entry). */
  frame(type: string, data: string): void {
    this.write(`event: ${type}\ndata: ${data}\n\n`);
  }

  /** Resolves when the client has taken what was written (backpressure), or at once. */
  drained(): Promise<void> | undefined {
    if (this.closed || !this.res.writableNeedDrain) return undefined;
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  end(): void {
    this.stop();
    if (!this.res.writableEnded) this.res.end();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private write(chunk: string): void {
    if (this.closed) return;
    this.batchThisTick();
    this.res.write(chunk);
    this.arm();
  }

  private batchThisTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.res.cork();
    process.nextTick(() => {
      this.corked = false;
      this.res.uncork();
    });
  }

  private arm(): void {
    if (this.closed) return;
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.closed) {
          this.res.write(': keep-alive\n\n');
          this.arm();
        }
      }, this.keepAliveMs);
      this.timer.unref();
    }
  }

  private stop(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
