/**
 * The sliding-window counter behind requests-per-minute limits. Requests are counted in fixed
 * one-minute windows; "requests in the last minute" is estimated as the previous window's count,
 * weighted by how much of it the last 60 s still cover, plus the current window's count. Counts
 * (unlike token-bucket state) add up across replicas, which is what makes the limit shareable.
 */

export const WINDOW_MS = 60_000;

export interface WindowCounts {
  previous: number;
  current: number;
}

/** The estimated requests in the last minute, `elapsedMs` into the current window. */
export function estimate(counts: WindowCounts, elapsedMs: number): number {
  return counts.previous * (1 - elapsedMs / WINDOW_MS) + counts.current;
}

/**
 * Milliseconds until the estimate falls to `target` or below if no request arrives: first the
 * previous window fades out, then (from the next window on) the current one does.
 */
export function msUntilAtMost(counts: WindowCounts, elapsedMs: number, target: number): number {
  const excess = estimate(counts, elapsedMs) - target;
  if (excess <= 0) return 0;
  const restOfWindow = WINDOW_MS - elapsedMs;
  const fadesThisWindow = (counts.previous * restOfWindow) / WINDOW_MS;
  if (excess <= fadesThisWindow) return (excess * WINDOW_MS) / counts.previous;
  // At the window's end the estimate equals `current`, which then fades over the next window.
  return restOfWindow + WINDOW_MS * (1 - target / counts.current);
}

export interface WindowState {
  /** Requests still allowed now. */
  remaining: number;
  /** Milliseconds until one more request is allowed (0 when nothing was used). */
  resetMs: number;
}

/** What the `x-ratelimit-*-requests` headers say about a window under `limit`. */
export function windowState(counts: WindowCounts, elapsedMs: number, limit: number): WindowState {
  const used = estimate(counts, elapsedMs);
  const remaining = Math.max(0, Math.floor(limit - used + 1e-9));
  if (remaining >= limit) return { remaining: limit, resetMs: 0 };
  return { remaining, resetMs: Math.ceil(msUntilAtMost(counts, elapsedMs, limit - remaining - 1)) };
}

/** A duration as OpenAI's headers write it: `250ms`, `1.5s`, `6m0s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const seconds = Math.ceil(ms) / 1000;
  if (seconds < 60) return `${trim(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${trim(seconds - minutes * 60)}s`;
}

function trim(seconds: number): string {
  return String(Math.round(seconds * 1000) / 1000);
}
