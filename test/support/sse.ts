/** A Server-Sent Events frame as received: its `event:` name, its data, and whether it was split. */
export interface SseFrame {
  event: string | undefined;
  /** Parsed JSON, or the literal string for non-JSON data such as `[DONE]`. */
  data: unknown;
  raw: string;
}

export interface SseCapture {
  status: number;
  headers: Headers;
  frames: SseFrame[];
  comments: string[];
  /** Frames that arrived split across network reads (must be none: each frame is written whole). */
  splitFrames: number;
}

/**
 * Reads a whole SSE response, keeping track of how frames lined up with network reads.
 * Bounded by `timeoutMs` so a stream that never ends fails the test instead of hanging it.
 */
export async function captureSse(response: Response, timeoutMs = 15_000): Promise<SseCapture> {
  const frames: SseFrame[] = [];
  const comments: string[] = [];
  let splitFrames = 0;
  let pending = '';
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  const timer = setTimeout(
    () => void reader.cancel(new Error(`SSE stream did not end within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, { stream: true });
      // A frame left incomplete at the end of one read and small enough to fit one write was split.
      if (pending && pending.length < 16_384) splitFrames++;
      pending += chunk;
      let boundary = pending.indexOf('\n\n');
      while (boundary !== -1) {
        const block = pending.slice(0, boundary);
        pending = pending.slice(boundary + 2);
        parseBlock(block, frames, comments);
        boundary = pending.indexOf('\n\n');
      }
    }
  } finally {
    clearTimeout(timer);
  }
  if (pending.trim()) parseBlock(pending, frames, comments);
  return { status: response.status, headers: response.headers, frames, comments, splitFrames };
}

function parseBlock(block: string, frames: SseFrame[], comments: string[]): void {
  let event: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) comments.push(line.slice(1).trim());
    else if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return;
  const text = data.join('\n');
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Keep non-JSON data (e.g. [DONE]) as text.
  }
  frames.push({ event, data: parsed, raw: block });
}
