/**
 * `npm run bench` end to end, in its smoke mode: every section runs for a moment against the
 * real processes (fake backend, Ferry, the bare proxy, the load generator, PostgreSQL), with a
 * second Ferry as the other gateway of `--target`. The figures mean nothing here; what is
 * checked is that every measurement ran, nothing errored, and the report holds all of it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RequestsResult } from '../../bench/load.js';
import type { BenchReport } from '../../bench/report.js';
import { POSTGRES_URL } from '../support/postgres.js';
import { startFerryProcess, waitForExit } from '../support/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs a bench script with these arguments; resolves with its exit code and output. */
async function bench(
  args: string[],
  timeoutMs: number,
  script = 'bench/run.ts',
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await waitForExit(child, undefined, timeoutMs);
  return { code, output };
}

/** A port nothing listens on right now (for the fake backend the other gateway must know in advance). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const fine = (result: RequestsResult) => {
  expect(result.requests).toBeGreaterThan(0);
  expect(result.errors).toBe(0);
  expect(result.latency.p50).toBeGreaterThan(0);
};

describe('npm run bench', () => {
  it('refuses --target without a fixed backend port, saying how to set one', async () => {
    const { code, output } = await bench(['--target', 'http://127.0.0.1:1'], 20_000);
    expect(code).toBe(2);
    expect(output).toContain('--target needs --backend-port N');
  });

  it(
    'measures every section and writes the report as JSON and Markdown (smoke run)',
    { timeout: 240_000 },
    async () => {
      const directory = mkdtempSync(join(tmpdir(), 'ferry-bench-test-'));
      const backendPort = await freePort();
      const config = join(directory, 'peer.json');
      writeFileSync(
        config,
        JSON.stringify({
          database: join(directory, 'peer.db'),
          backends: [{ name: 'bench', kind: 'ollama', url: `http://127.0.0.1:${backendPort}` }],
          models: { bench: {} },
        }),
      );
      const peer = await startFerryProcess(['--config', config]);
      const out = join(directory, 'results');
      try {
        const { code, output } = await bench(
          [
            '--smoke',
            '--out',
            out,
            '--postgres',
            POSTGRES_URL,
            '--backend-port',
            String(backendPort),
            '--target',
            peer.url,
          ],
          200_000,
        );
        expect(code, output).toBe(0);
      } finally {
        await peer.stop();
      }

      const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
      const files = readdirSync(out).sort();
      expect(files).toHaveLength(4);
      expect(files.filter((name) => name.startsWith('latest.'))).toEqual(['latest.json', 'latest.md']);
      expect(files.filter((name) => name.endsWith(`-${commit}.json`))).toHaveLength(1);

      const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as BenchReport;
      expect(report).toMatchObject({ mode: 'smoke', commit, machine: { node: process.version } });
      expect(report.machine.cores).toBeGreaterThan(0);
      expect(report.notes.join(' ')).not.toContain('skipped');

      Object.values(report.latency).forEach(fine);
      fine(report.endpoints.floor);
      expect(report.endpoints.rows).toHaveLength(11);
      for (const row of report.endpoints.rows) {
        expect(row.result.errors, row.name).toBe(0);
        expect(row.result.requests, row.name).toBeGreaterThan(0);
      }

      expect(report.sweep.map((point) => point.concurrency)).toEqual([1, 8]);
      for (const point of report.sweep) [point.direct, point.bareProxy, point.ferry].forEach(fine);
      expect(report.memory.idleMb).toBeGreaterThan(0);
      expect(report.memory.underLoadMb).toBeGreaterThanOrEqual(report.memory.idleMb * 0.5);
      expect(report.memory.afterLoadMb).toBeGreaterThan(0);

      const { streaming } = report;
      for (const path of [streaming.direct, streaming.bareProxy!, streaming.ferry]) {
        // Every delta of the paced stream was seen, on every path.
        expect(path).toMatchObject({ streams: 2, errors: 0, tokensPerStream: streaming.tokens });
        expect(path.ttft.p50).toBeGreaterThan(0);
      }
      expect(streaming.held).toHaveLength(1);
      expect(streaming.held[0]).toMatchObject({ streams: 20, completed: 20, errors: 0, stalled: 0 });
      expect(streaming.held[0]!.rssMb).toBeGreaterThan(0);

      for (const state of [report.state.sqlite, report.state.postgres!]) {
        expect(state.chain.map((point) => point.depth)).toEqual([1, 10, 100]);
        for (const point of state.chain) [point.latency, point.direct].forEach(fine);
        expect(state.background.jobs).toBe(10);
        expect(state.background.jobsPerSecond).toBeGreaterThan(0);
      }
      fine(report.state.postgres!.stored);

      expect(report.target!.url).toBe(peer.url);
      fine(report.target!.latency);
      expect(report.target!.sweep.map((point) => point.concurrency)).toEqual([1, 8]);
      report.target!.sweep.forEach((point) => [point.result, point.ferry].forEach(fine));

      const markdown = readFileSync(join(out, 'latest.md'), 'utf8');
      expect(markdown).toContain(`commit \`${commit}\`, smoke run`);
      for (const heading of [
        '### 2. Throughput frontier',
        '### 4. State',
        `### Other gateway: ${peer.url}`,
        '### Targets',
      ])
        expect(markdown).toContain(heading);
      expect(markdown).toContain('| SQLite | PostgreSQL |');
      rmSync(directory, { recursive: true, force: true });
    },
  );
});

describe('npm run bench:profile', () => {
  const briefly = ['--seconds', '1', '--warmup-seconds', '1', '--concurrency', '4'];
  const profile = (args: string[]) => bench([...briefly, ...args], 60_000, 'bench/profile.ts');

  it('profiles Ferry under load and says where its CPU went', { timeout: 90_000 }, async () => {
    const { code, output } = await profile([]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/ 0 errors \(concurrency 4, stored\)/);
    expect(output).toMatch(/Ferry's CPU per request: \d+ µs/);
    const file = /Profile: (\S+\.cpuprofile)/.exec(output)?.[1];
    expect(file && existsSync(file), output).toBe(true);
    expect(output).toContain('By area (self time)');
    expect(output).toMatch(/Top functions \(self time\)\n +\d+\.\d %/);
  });

  it(
    'measures without the profiler, at a chain depth, with the collections',
    { timeout: 90_000 },
    async () => {
      const { code, output } = await profile(['--plain', '--depth', '5']);
      expect(code, output).toBe(0);
      expect(output).toMatch(/ 0 errors \(concurrency 4, stored at depth 5\)/);
      expect(output).toMatch(
        /by thread: main \d+ µs.*; the main thread lost its core \d+\.\d{3} times per request/,
      );
      expect(output).toMatch(/minor GCs: one per \d+ requests/);
    },
  );

  it('samples what a request allocates', { timeout: 90_000 }, async () => {
    const { code, output } = await profile(['--allocations']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/Allocated [\d.]+ MB: [\d.]+ KB per request/);
    expect(output).toContain('By area (bytes allocated)');
  });
});
