/**
 * `npm run bench:profile [-- --concurrency 16] [-- --seconds 5] [-- --warmup-seconds 4] [-- --body stored|unstored|stream] [-- --depth 1000] [-- --plain | --allocations]`
 *
 * Profiles Ferry under the benchmark's load: the fake backend and Ferry as `npm run bench`
 * starts them, Ferry under `node --cpu-prof`, a closed loop of requests for a few seconds,
 * then a summary of where Ferry's CPU went (by area: Ferry's own folders, each library, Node's
 * internals, the garbage collector) and the functions with the most self time. The profile
 * itself is kept for a flame graph (Chrome DevTools or speedscope open `.cpuprofile` files).
 * `--plain` runs the same load without the profiler (which slows Ferry), for before/after rates,
 * and prints Ferry's CPU per request by thread and its young-generation collections (how often,
 * how long). `--node-flags=--trace-gc --ferry-output` shows every collection as it happens.
 * `--allocations` samples what Ferry allocates per request instead (bench/allocation-sampler.mjs).
 * `--depth N` first builds a `previous_response_id` chain of N turns and then sends every
 * request as a follow-up to its last response: the cost of a deep conversation.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RequestsResult } from './load.js';
import { CLOCK_TICKS, ROOT, buildChain, cpuMicros, load, sleep, startFake, startFerry } from './processes.js';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '5' },
    /** Load before measuring, so the JIT has compiled the request path (V8's compiler threads quiet). */
    'warmup-seconds': { type: 'string', default: '4' },
    body: { type: 'string', default: 'stored' },
    /** Send every request as a follow-up at this `previous_response_id` depth (0: none). */
    depth: { type: 'string', default: '0' },
    top: { type: 'string', default: '30' },
    plain: { type: 'boolean', default: false },
    /** Sample what Ferry allocates per request (V8's sampling heap profiler) instead of its CPU. */
    allocations: { type: 'boolean', default: false },
    /** Show Ferry's stdout: its logs, and what flags such as `--trace-gc` print. */
    'ferry-output': { type: 'boolean', default: false },
    /** Extra `node` flags for Ferry, space-separated (e.g. "--max-semi-space-size=32"). */
    'node-flags': { type: 'string', default: '' },
  },
});

const BODIES: Record<string, object> = {
  stored: { model: 'bench', input: 'hello' },
  unstored: { model: 'bench', input: 'hello', store: false },
  stream: { model: 'bench', input: 'hello', stream: true, store: false },
};

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the system a frame belongs to. */
function areaOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const library = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (library) return library[1]!;
  const own = /\/dist\/([^/]+)\//.exec(url);
  if (own) return `ferry ${own[1]}`;
  if (url.startsWith('node:')) return `node ${url.slice(5).split('/').slice(0, 2).join('/')}`;
  return url;
}

/** Self time per function and per area, counting only samples in [from, to] (monotonic µs). */
function summarise(profile: CpuProfile, from: number, to: number, top: number): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    at += delta;
    if (at >= from && at <= to) selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
  });
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') continue;
    busy += micros;
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + micros);
    const name = functionName(frame);
    functions.set(name, (functions.get(name) ?? 0) + micros);
  }
  return `Busy CPU ${(busy / 1e6).toFixed(2)} s\n\nBy area (self time)\n${shares(areas, busy, 40)}\n\nTop functions (self time)\n${shares(functions, busy, top)}\n`;
}

/** `name → amount` as percentages of `total`, largest first. */
function shares(rows: Map<string, number>, total: number, limit: number): string {
  return [...rows]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, amount]) => `${((100 * amount) / total).toFixed(1).padStart(5)} %  ${name}`)
    .join('\n');
}

function functionName(frame: ProfileNode['callFrame']): string {
  return `${frame.functionName || '(anonymous)'}  ${frame.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, 'dist/')}:${frame.lineNumber + 1}`;
}

interface AllocationNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children: AllocationNode[];
}

/** Bytes allocated per request, by area and by allocating function, from a sampling heap profile. */
function summariseAllocations(head: AllocationNode, requests: number, top: number): string {
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  const visit = (node: AllocationNode) => {
    if (node.selfSize > 0) {
      total += node.selfSize;
      const area = areaOf(node.callFrame);
      areas.set(area, (areas.get(area) ?? 0) + node.selfSize);
      const name = functionName(node.callFrame);
      functions.set(name, (functions.get(name) ?? 0) + node.selfSize);
    }
    node.children.forEach(visit);
  };
  visit(head);
  return `Allocated ${(total / 1e6).toFixed(1)} MB: ${(total / requests / 1024).toFixed(1)} KB per request\n\nBy area (bytes allocated)\n${shares(areas, total, 40)}\n\nTop allocating functions\n${shares(functions, total, top)}\n`;
}

/** CPU time per thread name (user plus system, microseconds), the main thread apart. */
function cpuByThread(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Node's own threads are all called "node"; the main thread's id is the process id.
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const micros = ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
      byName.set(name, (byName.get(name) ?? 0) + micros);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return byName;
}

/**
 * How many times the kernel took the core from Ferry's main thread while it could still run
 * (`nonvoluntary_ctxt_switches`): each is a request that waits for another thread or the host.
 */
function mainThreadPreemptions(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1] ?? NaN);
}

/** Minor (young-generation) collections so far and their total seconds, from Ferry's `/metrics`. */
async function minorGcs(origin: string): Promise<{ count: number; seconds: number }> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const read = (suffix: string) =>
    Number(
      new RegExp(`^nodejs_gc_duration_seconds_${suffix}\\{kind="minor"\\} (\\S+)$`, 'm').exec(text)?.[1] ??
        NaN,
    );
  return { count: read('count'), seconds: read('sum') };
}

/** How often minor collections came during the measurement, and how long they took. */
function describeGcs(
  after: { count: number; seconds: number },
  before: { count: number; seconds: number },
  requests: number,
): string {
  const count = after.count - before.count;
  if (!(count > 0)) return 'none (or no `/metrics` to read them from)';
  const each = (1000 * (after.seconds - before.seconds)) / count;
  return `one per ${Math.round(requests / count)} requests, ${each.toFixed(2)} ms each`;
}

/** Waits (at most 30 s) for the allocation sampler in Ferry to publish a file. */
async function appears(path: string): Promise<void> {
  for (let waited = 0; !existsSync(path); waited += 50) {
    if (waited > 30_000) throw new Error(`Ferry's allocation sampler wrote no ${path}`);
    await sleep(50);
  }
}

/** V8's profile clock and `process.hrtime` are both the monotonic clock. */
const monotonicMicros = () => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const directory = mkdtempSync(join(tmpdir(), 'ferry-profile-'));
  const fake = await startFake(16, 0);
  const allocationFile = join(directory, 'allocations.heapprofile');
  if (args.allocations) process.env.FERRY_ALLOCATION_PROFILE = allocationFile;
  const flags = [
    ...(args['node-flags'] ? args['node-flags'].split(' ') : []),
    ...(args.allocations
      ? ['--import', join(ROOT, 'bench', 'allocation-sampler.mjs')]
      : args.plain
        ? []
        : ['--cpu-prof', '--cpu-prof-dir', directory]),
  ];
  const ferry = await startFerry(fake.url, 'sqlite', {}, flags, args['ferry-output'] ? 'inherit' : 'ignore');
  const body = BODIES[args.body!];
  if (!body) throw new Error(`--body must be one of ${Object.keys(BODIES).join(', ')}`);
  const depth = Number(args.depth);
  if (depth > 0) Object.assign(body, { previous_response_id: (await buildChain(ferry.url, depth)).at(-1) });
  const spec = {
    mode: 'requests' as const,
    origin: ferry.url,
    path: '/v1/responses',
    body: JSON.stringify(body),
    concurrency: Number(args.concurrency),
  };
  await load<RequestsResult>({ ...spec, durationMs: Number(args['warmup-seconds']) * 1000, warmupMs: 0 });
  const cpuBefore = cpuMicros(ferry.pid);
  const threadsBefore = cpuByThread(ferry.pid);
  const preemptionsBefore = mainThreadPreemptions(ferry.pid);
  const gcBefore = args.plain ? await minorGcs(ferry.url) : undefined;
  if (args.allocations) {
    process.kill(ferry.pid, 'SIGUSR2');
    await appears(`${allocationFile}.started`);
  }
  const started = monotonicMicros();
  const result = await load<RequestsResult>({
    ...spec,
    durationMs: Number(args.seconds) * 1000,
    warmupMs: 0,
  });
  const cpuPerRequest = (cpuMicros(ferry.pid) - cpuBefore) / result.requests;
  const perThread = [...cpuByThread(ferry.pid)]
    .map(([name, micros]) => [name, (micros - (threadsBefore.get(name) ?? 0)) / result.requests] as const)
    .filter(([, micros]) => micros >= 1)
    .sort((a, b) => b[1] - a[1])
    .map(([name, micros]) => `${name} ${Math.round(micros)} µs`)
    .join(', ');
  const preemptions = (mainThreadPreemptions(ferry.pid) - preemptionsBefore) / result.requests;
  const finished = monotonicMicros();
  const gcAfter = gcBefore ? await minorGcs(ferry.url) : undefined;
  if (args.allocations) {
    process.kill(ferry.pid, 'SIGUSR2');
    await appears(allocationFile);
  }
  await ferry.stop();
  fake.child.kill();
  process.stdout.write(
    `${Math.round(result.rps)} rps, p50 ${(result.latency.p50 / 1000).toFixed(3)} ms, p99 ${(result.latency.p99 / 1000).toFixed(3)} ms, ${result.errors} errors (concurrency ${args.concurrency}, ${args.body}${depth > 0 ? ` at depth ${depth}` : ''})\n` +
      `Ferry's CPU per request: ${Math.round(cpuPerRequest)} µs (user + system, from /proc)\n` +
      `by thread: ${perThread}; the main thread lost its core ${preemptions.toFixed(3)} times per request\n` +
      (gcBefore && gcAfter ? `minor GCs: ${describeGcs(gcAfter, gcBefore, result.requests)}\n` : ''),
  );
  if (args.allocations) {
    const profile = JSON.parse(readFileSync(allocationFile, 'utf8')) as { head: AllocationNode };
    process.stdout.write(
      `Allocation profile: ${allocationFile}\n\n${summariseAllocations(profile.head, result.requests, Number(args.top))}`,
    );
    return;
  }
  if (args.plain) return;
  // The main thread's profile: CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile with thread 0
  // (worker threads, such as the WAL checkpointer, write their own).
  const file = readdirSync(directory).find((name) => /\.\d+\.0\.\d+\.cpuprofile$/.test(name));
  if (!file) throw new Error('Ferry wrote no profile');
  const profile = JSON.parse(readFileSync(join(directory, file), 'utf8')) as CpuProfile;
  process.stdout.write(
    `Profile: ${join(directory, file)}\n\n${summarise(profile, started, finished, Number(args.top))}`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`profile failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
