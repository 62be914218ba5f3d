/**
 * `npm run bench [-- --quick | --smoke] [-- --target URL --backend-port N] [-- --no-postgres] [-- --out DIR]`
 *
 * Measures what Ferry adds on top of a backend, side by side in one run, the way the Busbar
 * "On the Bench" harness does: the same fast fake backend is called directly and through
 * Ferry, and the difference is what Ferry costs. Ferry runs pinned to one core, the fake
 * backend and the load generator to the other (when `taskset` exists). Writes
 * <out>/<date>-<commit>.{json,md} and <out>/latest.{json,md} (`out` is bench/results unless
 * `--out` says otherwise), and prints the table. `--smoke` runs every section for a moment:
 * its figures mean nothing, it proves the harness works (test/bench/run.test.ts), and it writes
 * to the system's temporary directory unless `--out` says otherwise.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { request } from 'undici';
import type { HoldResult, LoadSpec, RequestsResult, StreamResult } from './load.js';
import {
  PINNING,
  ROOT,
  buildChain,
  cpuMicros,
  load,
  peakRssMb,
  post,
  rssMb,
  sleep,
  startBareProxy,
  startFake,
  startFerry,
  type Ferry,
} from './processes.js';

import { renderMarkdown, type BenchReport, type ChainPoint, type RunMode } from './report.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    /** Every section for a moment, for CI: proves the harness runs, measures nothing. */
    smoke: { type: 'boolean', default: false },
    /** Another gateway's base URL, timed the same way as Ferry (needs `--backend-port`). */
    target: { type: 'string' },
    /**
     * The fake backend's port (default: any free one). Another gateway compared with `--target`
     * must be configured beforehand with an Ollama backend at http://127.0.0.1:<this port>.
     */
    'backend-port': { type: 'string', default: '0' },
    'no-postgres': { type: 'boolean', default: false },
    /** Where the results are written (default bench/results). */
    out: { type: 'string' },
    /** Run only these sections (comma-separated: latency, throughput, state, streaming); for iterating. */
    only: { type: 'string' },
    postgres: {
      type: 'string',
      default: process.env.FERRY_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
  },
});
const mode: RunMode = args.smoke ? 'smoke' : args.quick ? 'quick' : 'full';
if (args.target && args['backend-port'] === '0') {
  process.stderr.write(
    'bench: --target needs --backend-port N, and the other gateway configured with an Ollama backend at http://127.0.0.1:N (model "bench")\n',
  );
  process.exit(2);
}

const PLANS = {
  full: {
    latencyMs: 5000,
    warmUpMs: 2000,
    sweepMs: 3000,
    sweep: [1, 2, 4, 8, 16, 32, 64, 128],
    streamTokens: 64,
    streamIntervalMs: 20,
    streams: 30,
    streamWarmups: 2000,
    hold: [250, 500, 1000, 1500],
    chain: 1000,
    jobs: 1_000,
    jobWarmups: 2_000,
    followUpMs: 3000,
    endpointMs: 2000,
    deletions: 6_000,
    /** How long Ferry rests after the sweep before its memory "after load" is read. */
    settleMs: 3000,
  },
  quick: {
    latencyMs: 1000,
    warmUpMs: 1000,
    sweepMs: 800,
    sweep: [1, 4, 16, 32, 128],
    streamTokens: 64,
    streamIntervalMs: 20,
    streams: 3,
    streamWarmups: 300,
    hold: [250, 1000],
    chain: 1000,
    jobs: 100,
    jobWarmups: 200,
    followUpMs: 600,
    endpointMs: 400,
    deletions: 1_000,
    settleMs: 2000,
  },
  smoke: {
    latencyMs: 150,
    warmUpMs: 150,
    sweepMs: 150,
    sweep: [1, 8],
    streamTokens: 8,
    streamIntervalMs: 5,
    streams: 2,
    streamWarmups: 5,
    hold: [20],
    chain: 100,
    jobs: 10,
    jobWarmups: 10,
    followUpMs: 150,
    endpointMs: 60,
    deletions: 100,
    settleMs: 200,
  },
};
const plan = PLANS[mode];

// ── bodies ─────────────────────────────────────────────────────────────────

const DIRECT_BODY = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'hello' }],
  stream: false,
  options: { num_ctx: 8192 },
});
const DIRECT_STREAM_BODY = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'hello' }],
  stream: true,
  options: { num_ctx: 8192 },
});
const responsesBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'bench', input: 'hello', ...extra });

/**
 * Another gateway (`--target`), timed like Ferry with store:false (a gateway that keeps no
 * responses must not be charged for Ferry's storing), at its `/v1/responses`.
 */
const target = args.target ? new URL(args.target) : undefined;
function targetSpec(concurrency: number, durationMs: number): LoadSpec | undefined {
  if (!target) return undefined;
  const path = `${target.pathname.replace(/\/$/, '')}/v1/responses`;
  return requestsSpec(target.origin, path, responsesBody({ store: false }), concurrency, durationMs);
}

function requestsSpec(
  origin: string,
  path: string,
  body: string,
  concurrency: number,
  durationMs: number,
): LoadSpec {
  return {
    mode: 'requests',
    origin,
    path,
    body,
    concurrency,
    durationMs,
    warmupMs: Math.min(500, durationMs / 2),
  };
}

// ── scenarios ──────────────────────────────────────────────────────────────

async function addedLatency(
  fakeUrl: string,
  bareUrl: string,
  ferry: Ferry,
  report: BenchReport,
): Promise<void> {
  const direct = await load<RequestsResult>(
    requestsSpec(fakeUrl, '/api/chat', DIRECT_BODY, 1, plan.latencyMs),
  );
  const stored = await load<RequestsResult>(
    requestsSpec(ferry.url, '/v1/responses', responsesBody(), 1, plan.latencyMs),
  );
  const unstored = await load<RequestsResult>(
    requestsSpec(ferry.url, '/v1/responses', responsesBody({ store: false }), 1, plan.latencyMs),
  );
  const streamed = await load<RequestsResult>(
    requestsSpec(
      ferry.url,
      '/v1/responses',
      responsesBody({ stream: true, store: false }),
      1,
      plan.latencyMs,
    ),
  );
  const directStreamed = await load<RequestsResult>(
    requestsSpec(fakeUrl, '/api/chat', DIRECT_STREAM_BODY, 1, plan.latencyMs),
  );
  const bareProxy = await load<RequestsResult>(
    requestsSpec(bareUrl, '/v1/responses', responsesBody(), 1, plan.latencyMs),
  );
  report.latency = { direct, stored, unstored, streamed, directStreamed, bareProxy };
  const other = targetSpec(1, plan.latencyMs);
  if (other) report.target = { url: args.target!, latency: await load<RequestsResult>(other), sweep: [] };
}

/**
 * Brings Ferry, the bare proxy and the backend to the steady state of a server that has been
 * running a while (code optimised by the JIT, pools and caches filled) before anything is
 * measured: a fresh process otherwise spends the first seconds of the first measurement
 * compiling, and the reference would look slower than it is.
 */
async function warmUp(fakeUrl: string, bareUrl: string, ferry: Ferry): Promise<void> {
  const ms = plan.warmUpMs;
  await load(requestsSpec(fakeUrl, '/api/chat', DIRECT_BODY, 4, ms));
  await load(requestsSpec(bareUrl, '/v1/responses', responsesBody(), 4, ms));
  await load({ ...requestsSpec(bareUrl, '/', '', 4, ms), method: 'GET' });
  for (const extra of [{}, { store: false }, { stream: true, store: false }])
    await load(requestsSpec(ferry.url, '/v1/responses', responsesBody(extra), 4, ms));
  const other = targetSpec(4, ms);
  if (other) await load(other);
}

/**
 * Every endpoint besides creating a response, one request at a time, next to the floor: a bare
 * Node server answering a GET at once (`bench/bare-proxy.ts`). None of these calls a backend
 * (model listings are cached), so what they add over the floor is Ferry's own work.
 */
async function endpointLatency(bareUrl: string, ferry: Ferry, report: BenchReport): Promise<void> {
  const stored = await post(`${ferry.url}/v1/responses`, { model: 'bench', input: 'keep me' });
  const background = await post(`${ferry.url}/v1/responses`, {
    model: 'bench',
    input: 'keep me',
    background: true,
  });
  const streamed = await backgroundStream(ferry);
  await waitUntilFinished(ferry, String(background.id));
  const doomed = await createMany(ferry, plan.deletions, { model: 'bench', input: 'delete me' });

  const timed = (path: string, method: LoadSpec['method'] = 'GET', origin = ferry.url) =>
    load<RequestsResult>({ ...requestsSpec(origin, path, '', 1, plan.endpointMs), method });
  const floor = await timed('/', 'GET', bareUrl);
  const rows: { name: string; result: RequestsResult }[] = [];
  const row = async (name: string, path: string, method?: LoadSpec['method']) =>
    rows.push({ name, result: await timed(path, method) });
  await row('`GET /healthz`', '/healthz');
  await row('`GET /readyz` (database and backend checks)', '/readyz');
  await row('`GET /metrics`', '/metrics');
  await row("`GET /v1/models` (the backends' listings, cached)", '/v1/models');
  await row('`GET /v1/models/{model}`', '/v1/models/bench');
  await row('`GET /v1/compatibility`', '/v1/compatibility');
  await row('`GET /v1/responses/{id}`', `/v1/responses/${String(stored.id)}`);
  await row('`GET /v1/responses/{id}/input_items`', `/v1/responses/${String(stored.id)}/input_items`);
  await row(
    `\`GET /v1/responses/{id}?stream=true\` (replays a finished background stream of ${streamed.events} events)`,
    `/v1/responses/${streamed.id}?stream=true`,
  );
  await row(
    '`POST /v1/responses/{id}/cancel` (a finished background response, answered as it is)',
    `/v1/responses/${String(background.id)}/cancel`,
    'POST',
  );
  rows.push({
    name: '`DELETE /v1/responses/{id}` (each request deletes another stored response)',
    result: await load<RequestsResult>({
      ...requestsSpec(ferry.url, '', '', 1, plan.endpointMs),
      method: 'DELETE',
      paths: doomed.map((id) => `/v1/responses/${id}`),
    }),
  });
  report.endpoints = { floor, rows };
}

/** Creates a background response with `stream: true`, reads its stream to the end. */
async function backgroundStream(ferry: Ferry): Promise<{ id: string; events: number }> {
  const response = await request(`${ferry.url}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: responsesBody({ background: true, stream: true }),
  });
  const text = await response.body.text();
  const id = /"id":"(resp_[^"]+)"/.exec(text)?.[1];
  if (response.statusCode !== 200 || !id)
    throw new Error(`background stream: ${response.statusCode} ${text}`);
  return { id, events: text.split('\nevent: ').length };
}

/** Stores `count` responses, eight requests at a time; returns their ids. */
async function createMany(ferry: Ferry, count: number, body: Record<string, unknown>): Promise<string[]> {
  const ids: string[] = [];
  let sent = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (sent++ < count) ids.push(String((await post(`${ferry.url}/v1/responses`, body)).id));
    }),
  );
  return ids;
}

/** Polls a (background) response until it is no longer queued or in progress. */
async function waitUntilFinished(ferry: Ferry, id: string): Promise<void> {
  for (let attempt = 0; attempt < 3_000; attempt++) {
    const response = await request(`${ferry.url}/v1/responses/${id}`);
    const body = (await response.body.json()) as { status: string };
    if (body.status !== 'queued' && body.status !== 'in_progress') return;
    await sleep(20);
  }
  throw new Error(`response ${id} did not finish`);
}

async function throughput(
  fakeUrl: string,
  bareUrl: string,
  ferry: Ferry,
  report: BenchReport,
): Promise<void> {
  report.sweep = [];
  let peakRss = 0;
  for (const concurrency of plan.sweep) {
    const direct = await load<RequestsResult>(
      requestsSpec(fakeUrl, '/api/chat', DIRECT_BODY, concurrency, plan.sweepMs),
    );
    const bareProxy = await load<RequestsResult>(
      requestsSpec(bareUrl, '/v1/responses', responsesBody(), concurrency, plan.sweepMs),
    );
    const { result: viaFerry, peakMb } = await peakRssMb(ferry.pid, () =>
      load<RequestsResult>(
        requestsSpec(ferry.url, '/v1/responses', responsesBody(), concurrency, plan.sweepMs),
      ),
    );
    peakRss = Math.max(peakRss, peakMb);
    report.sweep.push({ concurrency, direct, bareProxy, ferry: viaFerry });
    const other = targetSpec(concurrency, plan.sweepMs);
    if (other && report.target) {
      // Ferry too with store:false: the other gateway is timed so, and keeps nothing.
      const unstored = await load<RequestsResult>(
        requestsSpec(ferry.url, '/v1/responses', responsesBody({ store: false }), concurrency, plan.sweepMs),
      );
      report.target.sweep.push({ concurrency, result: await load<RequestsResult>(other), ferry: unstored });
    }
  }
  report.memory.underLoadMb = peakRss;
}

async function streaming(report: BenchReport): Promise<void> {
  const fake = await startFake(plan.streamTokens, plan.streamIntervalMs);
  const ferry = await startFerry(fake.url, 'sqlite');
  // Every path is first warmed up with unpaced streams (model "warmup"), so the paced ones
  // measure steady-state code rather than the first calls of a fresh process.
  const warmup = { warmupCount: plan.streamWarmups };
  // The same NDJSON stream from the backend directly, and piped through the floor: a bare Node
  // proxy (`bench/bare-proxy.ts`).
  const ndjson = (origin: string) =>
    load<StreamResult>({
      mode: 'stream',
      origin,
      path: '/api/chat',
      body: DIRECT_STREAM_BODY,
      warmupBody: DIRECT_STREAM_BODY.replace('"model":"bench"', '"model":"warmup"'),
      ...warmup,
      concurrency: 1,
      count: plan.streams,
      tokenMarker: '"content":"w',
    });
  const direct = await ndjson(fake.url);
  const bare = await startBareProxy(fake.url);
  const bareProxy = await ndjson(bare.url);
  bare.child.kill();
  const viaFerry = await load<StreamResult>({
    mode: 'stream',
    origin: ferry.url,
    path: '/v1/responses',
    body: responsesBody({ stream: true }),
    warmupBody: JSON.stringify({ model: 'warmup', input: 'hello', stream: true, store: false }),
    ...warmup,
    concurrency: 1,
    count: plan.streams,
    tokenMarker: 'event: response.output_text.delta',
  });
  report.streaming = {
    tokens: plan.streamTokens,
    intervalMs: plan.streamIntervalMs,
    direct,
    bareProxy,
    ferry: viaFerry,
    held: [],
  };
  for (const streams of plan.hold) {
    const { result: held, peakMb } = await peakRssMb(ferry.pid, () =>
      load<HoldResult>({
        mode: 'hold',
        origin: ferry.url,
        path: '/v1/responses',
        body: responsesBody({ stream: true }),
        concurrency: streams,
        tokenMarker: 'event: response.output_text.delta',
      }),
    );
    report.streaming.held.push({ ...held, rssMb: peakMb });
    if (held.completed < streams || held.stalled > 0) break;
  }
  await ferry.stop();
  fake.child.kill();
}

/** Rounds of the chain measurement; the median one is reported (see `chainCosts`). */
const CHAIN_ROUNDS = 3;

/**
 * Builds a previous_response_id chain and times follow-ups at several depths, each next to the
 * same conversation sent to the backend directly (the body Ferry sent upstream, replayed): a deep
 * follow-up is a long prompt, and the backend reading it is not Ferry's cost. The depths are
 * timed in interleaved rounds, so that the VM's slow drifts fall on every depth alike, and each
 * depth reports its median round (by added p50).
 */
async function chainCosts(ferry: Ferry, fakeUrl: string): Promise<ChainPoint[]> {
  const depths = [...new Set([1, 10, 100, plan.chain])].filter((depth) => depth <= plan.chain);
  const chain = await buildChain(ferry.url, plan.chain);
  const bodies = new Map<number, { followUp: string; upstream: string }>();
  for (const depth of depths) {
    const followUp = { model: 'bench', input: 'and now?', previous_response_id: chain[depth - 1] };
    await post(`${ferry.url}/v1/responses`, followUp);
    const upstream = await (await request(`${fakeUrl}/debug/last-chat`)).body.text();
    bodies.set(depth, { followUp: JSON.stringify(followUp), upstream });
  }
  const rounds = new Map<number, ChainPoint[]>(depths.map((depth) => [depth, []]));
  const roundMs = plan.followUpMs / CHAIN_ROUNDS;
  for (let round = 0; round < CHAIN_ROUNDS; round++) {
    for (const depth of depths) {
      const { followUp, upstream } = bodies.get(depth)!;
      rounds.get(depth)!.push({
        depth,
        direct: await load<RequestsResult>(requestsSpec(fakeUrl, '/api/chat', upstream, 1, roundMs)),
        latency: await load<RequestsResult>(requestsSpec(ferry.url, '/v1/responses', followUp, 1, roundMs)),
      });
    }
  }
  const added = (point: ChainPoint) => point.latency.latency.p50 - point.direct.latency.p50;
  return depths.map((depth) => {
    const sorted = rounds.get(depth)!.sort((a, b) => added(a) - added(b));
    return sorted[Math.floor(sorted.length / 2)]!;
  });
}

/**
 * Queues background jobs as fast as possible and times until all are done, with Ferry's CPU per
 * job. A first batch, not timed, brings the background path to a running server's steady
 * state: it kept getting cheaper for a few thousand jobs (the JIT, and V8's young generation
 * growing to its working size).
 */
async function backgroundThroughput(ferry: Ferry): Promise<BenchReport['state']['sqlite']['background']> {
  const run = async (jobs: number) => {
    const ids = await createMany(ferry, jobs, { model: 'bench', input: 'job', background: true });
    for (const id of ids) await waitUntilFinished(ferry, id);
  };
  await run(plan.jobWarmups);
  const cpuBefore = cpuMicros(ferry.pid);
  const started = performance.now();
  await run(plan.jobs);
  const seconds = (performance.now() - started) / 1000;
  return {
    jobs: plan.jobs,
    seconds,
    jobsPerSecond: plan.jobs / seconds,
    cpuMicrosPerJob: (cpuMicros(ferry.pid) - cpuBefore) / plan.jobs,
  };
}

async function state(fakeUrl: string, ferry: Ferry, report: BenchReport): Promise<void> {
  report.state = {
    sqlite: { chain: await chainCosts(ferry, fakeUrl), background: await backgroundThroughput(ferry) },
  };
  if (args['no-postgres']) return;
  step('state on PostgreSQL');
  let schema: string | undefined;
  const admin = new pg.Client({ connectionString: args.postgres });
  try {
    await admin.connect();
    schema = `ferry_bench_${Date.now()}`;
    await admin.query(`create schema ${schema}`);
  } catch (error) {
    report.notes.push(`PostgreSQL comparison skipped: ${(error as Error).message}`);
    await admin.end().catch(() => undefined);
    return;
  }
  const url = new URL(args.postgres);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const onPostgres = await startFerry(fakeUrl, url.toString());
  try {
    const stored = await load<RequestsResult>(
      requestsSpec(onPostgres.url, '/v1/responses', responsesBody(), 1, plan.latencyMs),
    );
    report.state.postgres = {
      stored,
      chain: await chainCosts(onPostgres, fakeUrl),
      background: await backgroundThroughput(onPostgres),
    };
  } finally {
    await onPostgres.stop();
    await admin.query(`drop schema ${schema} cascade`);
    await admin.end();
  }
}

// ── main ───────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
  const report: BenchReport = {
    date: new Date().toISOString(),
    commit,
    mode,
    machine: {
      cores: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      pinned: PINNING,
    },
    memory: { idleMb: 0, underLoadMb: 0, afterLoadMb: 0 },
    notes: [],
  } as unknown as BenchReport; // filled in section by section below
  const started = performance.now();
  const fake = await startFake(16, 0, Number(args['backend-port']));
  const ferry = await startFerry(fake.url, 'sqlite');
  await sleep(500);
  report.memory.idleMb = rssMb(ferry.pid);
  const bare = await startBareProxy(fake.url);
  if (target)
    report.notes.push(
      `The other gateway (${args.target}) was timed with store:false against the fake backend at ${fake.url}.`,
    );
  step('warm-up');
  await warmUp(fake.url, bare.url, ferry);

  const only = args.only?.split(',');
  const wanted = (section: string) => !only || only.includes(section);
  if (wanted('latency')) {
    step('added latency');
    await addedLatency(fake.url, bare.url, ferry, report);
    step('every other endpoint');
    await endpointLatency(bare.url, ferry, report);
  }
  if (wanted('throughput')) {
    step('throughput sweep');
    await throughput(fake.url, bare.url, ferry, report);
    await sleep(plan.settleMs);
    report.memory.afterLoadMb = rssMb(ferry.pid);
  }
  if (wanted('state')) {
    step('state');
    await state(fake.url, ferry, report);
  }
  await ferry.stop();
  bare.child.kill();
  if (wanted('streaming')) {
    step('streaming');
    await streaming(report);
  }
  step('done');
  if (only) {
    // A partial run is for iterating: print what was measured, write no report.
    process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
    fake.child.kill();
    return;
  }
  report.seconds = Math.round((performance.now() - started) / 1000);

  const stamp = report.date.slice(0, 19).replace(/[:T]/g, '-');
  // A smoke run's figures mean nothing: they never replace the results kept in the repo.
  const out = args.out
    ? resolve(args.out)
    : mode === 'smoke'
      ? join(tmpdir(), 'ferry-bench-smoke')
      : join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const markdown = renderMarkdown(report);
  for (const name of [`${stamp}-${commit}`, 'latest']) {
    writeFileSync(join(out, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(out, `${name}.md`), markdown);
  }
  process.stdout.write(
    `\n${markdown}\nWritten to ${join(out, `${stamp}-${commit}`)}.{json,md} and ${join(out, 'latest')}.{json,md}\n`,
  );
  fake.child.kill();
}

const benchStarted = performance.now();

/** Announces a section, with the time since the run began (for keeping `--quick` quick). */
function step(name: string): void {
  process.stderr.write(`· ${name} (at ${Math.round((performance.now() - benchStarted) / 1000)} s)\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
