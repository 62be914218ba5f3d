/**
 * The benchmark's load generator, run as its own process (so its work never shares an event
 * loop with what it measures). Closed loop over undici keep-alive connections, timing every
 * request with the monotonic clock in microseconds. One process serves a whole run, so its
 * own code stays compiled and no measurement waits for a process to start:
 *
 *   node --import tsx bench/load.ts --serve   ← a JSON LoadSpec per line on stdin
 *                                             → its result (or {"error":…}) per line on stdout
 */
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

export interface LoadSpec {
  mode: 'requests' | 'stream' | 'hold';
  /** Requests mode: GET, DELETE or POST (default; the only one that sends `body`). */
  method?: 'GET' | 'POST' | 'DELETE';
  origin: string;
  path: string;
  /**
   * Requests mode: paths to use once each, in order, instead of `path` (e.g. a DELETE per
   * stored response); the run ends early when they are used up.
   */
  paths?: string[];
  body: string;
  headers?: Record<string, string>;
  /** Concurrent connections (requests, hold). */
  concurrency: number;
  /** How long to run (requests), after a warm-up. */
  durationMs?: number;
  /** How many requests (stream mode: sequential streams). */
  count?: number;
  warmupMs?: number;
  /** Text that marks one token in a streamed body (NDJSON or SSE). */
  tokenMarker?: string;
  /** Stream mode: requests sent first, unmeasured, to warm the target up (e.g. an unpaced model). */
  warmupBody?: string;
  warmupCount?: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface RequestsResult {
  requests: number;
  errors: number;
  rps: number;
  /** Microseconds. */
  latency: Percentiles;
}

export interface StreamResult {
  streams: number;
  errors: number;
  /** Microseconds from sending the request to the first token. */
  ttft: Percentiles;
  /** Microseconds between consecutive tokens. */
  gap: Percentiles;
  tokensPerStream: number;
}

export interface HoldResult {
  streams: number;
  completed: number;
  errors: number;
  /** Streams that had a gap over a second (a stall). */
  stalled: number;
  /** Microseconds. */
  gap: Percentiles;
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let sum = 0;
  for (const value of sorted) sum += value;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted.at(-1)!, mean: sum / sorted.length };
}

const microseconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1000;

async function requests(pool: Pool, spec: LoadSpec): Promise<RequestsResult> {
  const headers = { 'content-type': 'application/json', ...spec.headers };
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  let used = 0;
  const nextPath = () => (spec.paths ? spec.paths[used++] : spec.path);
  const one = async (path: string) => {
    const start = process.hrtime.bigint();
    try {
      const response =
        spec.method === 'GET' || spec.method === 'DELETE'
          ? await pool.request({ method: spec.method, path })
          : await pool.request({ method: 'POST', path, headers, body: spec.body });
      await response.body.dump();
      if (response.statusCode !== 200) throw new Error(String(response.statusCode));
      if (measuring) latencies.push(microseconds(start));
    } catch {
      if (measuring) errors++;
    }
  };
  const workers = Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      for (let path = nextPath(); !stop && path !== undefined; path = nextPath()) await one(path);
    }),
  );
  const elapse = (ms: number) => Promise.race([workers, new Promise((resolve) => setTimeout(resolve, ms))]);
  await elapse(spec.warmupMs ?? 500);
  measuring = true;
  const started = process.hrtime.bigint();
  await elapse(spec.durationMs ?? 2000);
  measuring = false;
  const elapsed = microseconds(started) / 1e6;
  stop = true;
  await workers;
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / elapsed,
    latency: percentiles(latencies),
  };
}

/** One streamed request: when each token arrived (µs since the request was sent). */
async function streamTimes(pool: Pool, spec: LoadSpec): Promise<number[]> {
  const marker = Buffer.from(spec.tokenMarker!);
  const start = process.hrtime.bigint();
  const response = await pool.request({
    method: 'POST',
    path: spec.path,
    headers: { 'content-type': 'application/json', ...spec.headers },
    body: spec.body,
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`HTTP ${response.statusCode}`);
  }
  const times: number[] = [];
  for await (const chunk of response.body) {
    const at = microseconds(start);
    for (
      let index = (chunk as Buffer).indexOf(marker);
      index !== -1;
      index = (chunk as Buffer).indexOf(marker, index + 1)
    ) {
      times.push(at);
    }
  }
  return times;
}

async function stream(pool: Pool, spec: LoadSpec): Promise<StreamResult> {
  for (let i = 0; i < (spec.warmupCount ?? 0); i++)
    await streamTimes(pool, { ...spec, body: spec.warmupBody ?? spec.body });
  const ttft: number[] = [];
  const gaps: number[] = [];
  let errors = 0;
  let tokens = 0;
  for (let i = 0; i < (spec.count ?? 20); i++) {
    try {
      const times = await streamTimes(pool, spec);
      ttft.push(times[0]!);
      for (let t = 1; t < times.length; t++) gaps.push(times[t]! - times[t - 1]!);
      tokens = times.length;
    } catch {
      errors++;
    }
  }
  return {
    streams: ttft.length,
    errors,
    ttft: percentiles(ttft),
    gap: percentiles(gaps),
    tokensPerStream: tokens,
  };
}

/** Opens `concurrency` streams at once and checks every one completes without a stall. */
async function hold(pool: Pool, spec: LoadSpec): Promise<HoldResult> {
  const gaps: number[] = [];
  let completed = 0;
  let errors = 0;
  let stalled = 0;
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      try {
        const times = await streamTimes(pool, spec);
        let worst = 0;
        for (let t = 1; t < times.length; t++) {
          const gap = times[t]! - times[t - 1]!;
          gaps.push(gap);
          worst = Math.max(worst, gap);
        }
        if (worst > 1_000_000) stalled++;
        if (times.length > 0) completed++;
      } catch {
        errors++;
      }
    }),
  );
  return { streams: spec.concurrency, completed, errors, stalled, gap: percentiles(gaps) };
}

export async function runLoad(spec: LoadSpec): Promise<RequestsResult | StreamResult | HoldResult> {
  const pool = new Pool(spec.origin, {
    connections: spec.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  try {
    if (spec.mode === 'requests') return await requests(pool, spec);
    if (spec.mode === 'stream') return await stream(pool, spec);
    return await hold(pool, spec);
  } finally {
    await pool.close();
  }
}

if (process.argv[2] === '--serve') {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    let answer: unknown;
    try {
      answer = await runLoad(JSON.parse(line) as LoadSpec);
    } catch (error) {
      answer = { error: String(error) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
}
