/**
 * The processes a benchmark run starts (fake backend, Ferry, the bare proxy, the load generator),
 * pinned to cores when `taskset` exists. Shared by `run.ts` and `profile.ts`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import type { LoadSpec } from './load.js';

export const ROOT = new URL('..', import.meta.url).pathname;
export const PINNING = hasTaskset();
const FERRY_CPU = '1';
const CLIENT_CPU = '0';

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return cpus().length >= 2;
  } catch {
    return false;
  }
}

export function spawnOn(
  cpu: string,
  command: string[],
  options: { stdio?: 'pipe' | 'ignore' | 'inherit'; stdin?: 'pipe' | 'ignore' } = {},
): ChildProcess {
  const [program, ...rest] = PINNING ? ['taskset', '-c', cpu, ...command] : command;
  return spawn(program!, rest, {
    cwd: ROOT,
    stdio: [options.stdin ?? 'ignore', options.stdio ?? 'pipe', 'inherit'],
  });
}

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

export async function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf('\n');
      if (newline !== -1) resolve(buffer.slice(0, newline));
    });
    child.once('exit', (code) => reject(new Error(`process exited with ${code}`)));
  });
}

/** The reference proxy (bench/bare-proxy.ts), pinned where Ferry runs. */
export async function startBareProxy(backendUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawnOn(FERRY_CPU, [
    process.execPath,
    '--import',
    'tsx',
    'bench/bare-proxy.ts',
    '--backend',
    backendUrl,
  ]);
  children.push(child);
  const { port } = JSON.parse(await firstLine(child)) as { port: number };
  return { url: `http://127.0.0.1:${port}`, child };
}

export async function startFake(
  tokens: number,
  intervalMs: number,
  /** 0: any free port. */
  listenOn = 0,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawnOn(CLIENT_CPU, [
    process.execPath,
    '--import',
    'tsx',
    'bench/fake-backend.ts',
    '--tokens',
    String(tokens),
    '--interval',
    String(intervalMs),
    '--port',
    String(listenOn),
  ]);
  children.push(child);
  const { port } = JSON.parse(await firstLine(child)) as { port: number };
  return { url: `http://127.0.0.1:${port}`, child };
}

export interface Ferry {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startFerry(
  backendUrl: string,
  database: string,
  extra: Record<string, unknown> = {},
  /** Extra `node` flags, e.g. `--cpu-prof` (bench/profile.ts). */
  nodeFlags: string[] = [],
  /** Where Ferry's stdout (its logs, and what flags like `--trace-gc` print) goes. */
  output: 'ignore' | 'inherit' = 'ignore',
): Promise<Ferry> {
  const directory = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const config = join(directory, 'ferry.json');
  writeFileSync(
    config,
    JSON.stringify({
      host: '127.0.0.1',
      port,
      database: database === 'sqlite' ? join(directory, 'ferry.db') : database,
      logLevel: 'info',
      backends: [{ name: 'bench', kind: 'ollama', url: backendUrl, connections: 4096 }],
      // Large enough that a 1,000-turn chain is sent whole: the chain benchmark measures loading it.
      models: { bench: { contextWindow: 1_000_000 } },
      background: { concurrency: 64 },
      ...extra,
    }),
  );
  const child = spawnOn(
    FERRY_CPU,
    [process.execPath, ...nodeFlags, 'dist/cli/main.js', 'serve', '--config', config],
    { stdio: output },
  );
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await request(`${url}/healthz`);
      await response.body.dump();
      if (response.statusCode === 200) break;
    } catch {
      if (attempt > 200) throw new Error('Ferry did not start');
    }
    await sleep(50);
  }
  return {
    url,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

let loader: { child: ChildProcess; answers: AsyncIterator<string> } | undefined;
let loads: Promise<unknown> = Promise.resolve();

/** Runs one measurement on the load generator (bench/load.ts), one at a time, on the client core. */
export function load<T>(spec: LoadSpec): Promise<T> {
  const measured = loads.then(() => measure<T>(spec));
  loads = measured.catch(() => undefined);
  return measured;
}

async function measure<T>(spec: LoadSpec): Promise<T> {
  if (!loader) {
    const child = spawnOn(CLIENT_CPU, [process.execPath, '--import', 'tsx', 'bench/load.ts', '--serve'], {
      stdin: 'pipe',
    });
    children.push(child);
    loader = { child, answers: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
  }
  loader.child.stdin!.write(`${JSON.stringify(spec)}\n`);
  const { value, done } = await loader.answers.next();
  if (done) throw new Error('the load generator exited');
  const answer = JSON.parse(value) as T | { error: string };
  if (answer && typeof answer === 'object' && 'error' in answer) throw new Error(`load: ${answer.error}`);
  return answer as T;
}

/** USER_HZ: the unit of /proc's CPU times, 100 on every mainstream Linux build. */
export const CLOCK_TICKS = 100;

/** User plus system CPU time of a process so far (Linux), in microseconds. */
export function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 102.4) / 10;
}

/**
 * The largest resident set a process reaches while `during` runs: read every 100 ms, and once
 * more at the end, so a load shorter than one interval is still seen.
 */
export async function peakRssMb<T>(
  pid: number,
  during: () => Promise<T>,
): Promise<{ result: T; peakMb: number }> {
  let peakMb = rssMb(pid);
  const sampler = setInterval(() => (peakMb = Math.max(peakMb, rssMb(pid))), 100);
  try {
    const result = await during();
    return { result, peakMb: Math.max(peakMb, rssMb(pid)) };
  } finally {
    clearInterval(sampler);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.body.json()) as Record<string, unknown>;
  if (response.statusCode !== 200)
    throw new Error(`POST ${url}: ${response.statusCode} ${JSON.stringify(json)}`);
  return json;
}

/** Builds a `previous_response_id` chain of `depth` turns; returns the ids, oldest first. */
export async function buildChain(origin: string, depth: number): Promise<string[]> {
  const ids: string[] = [];
  for (let turn = 1; turn <= depth; turn++) {
    const previous = ids.at(-1);
    const created = await post(`${origin}/v1/responses`, {
      model: 'bench',
      input: `turn ${turn}`,
      ...(previous ? { previous_response_id: previous } : {}),
    });
    ids.push(String(created.id));
  }
  return ids;
}
