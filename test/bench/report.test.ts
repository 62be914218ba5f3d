import { describe, expect, it } from 'vitest';
import type { HoldResult, Percentiles, RequestsResult, StreamResult } from '../../bench/load.js';
import { frontier, renderMarkdown, targets, type BenchReport, type ChainPoint } from '../../bench/report.js';

/** Latencies in milliseconds here, microseconds in the report. */
function requests(p50: number, p99: number, rps = 1000, errors = 0): RequestsResult {
  return { requests: Math.round(rps), errors, rps, latency: spread(p50, p99) };
}
const spread = (p50: number, p99: number): Percentiles => ({
  p50: p50 * 1000,
  p90: ((p50 + p99) / 2) * 1000,
  p99: p99 * 1000,
  max: p99 * 2000,
  mean: p50 * 1000,
});
const stream = (ttftMs: number, gapMs: number): StreamResult => ({
  streams: 30,
  errors: 0,
  ttft: spread(ttftMs, ttftMs * 2),
  gap: spread(gapMs, gapMs + 1),
  tokensPerStream: 64,
});
const held = (streams: number, completed = streams, stalled = 0): HoldResult & { rssMb: number } => ({
  streams,
  completed,
  errors: 0,
  stalled,
  gap: spread(20, 30),
  rssMb: 200,
});
const chainPoint = (depth: number, ferryMs: number, directMs: number): ChainPoint => ({
  depth,
  latency: requests(ferryMs, ferryMs * 2),
  direct: requests(directMs, directMs * 2),
});

/** A run that meets every target: the figures each test then spoils one at a time. */
function passingReport(): BenchReport {
  return {
    date: '2026-11-22T10:00:00.000Z',
    commit: 'abc1234',
    mode: 'full',
    seconds: 400,
    machine: { cores: 2, cpu: 'Test CPU', node: 'v20.0.0', pinned: true },
    latency: {
      direct: requests(0.1, 0.2),
      stored: requests(0.35, 1.1),
      unstored: requests(0.3, 0.9),
      streamed: requests(0.4, 1.2),
      directStreamed: requests(0.1, 0.3),
      bareProxy: requests(0.3, 0.8),
    },
    endpoints: { floor: requests(0.2, 0.4), rows: [{ name: '`GET /healthz`', result: requests(0.25, 0.5) }] },
    sweep: [
      {
        concurrency: 1,
        direct: requests(0.1, 0.2, 8000),
        bareProxy: requests(0.3, 0.8, 3000),
        ferry: requests(0.4, 1, 2000),
      },
      {
        concurrency: 16,
        direct: requests(1, 4, 20000),
        bareProxy: requests(2, 8, 12000),
        ferry: requests(3, 12, 10000),
      },
      // Faster still, but over every bound that counts: never the frontier under 20 ms.
      {
        concurrency: 128,
        direct: requests(9, 30, 21000),
        bareProxy: requests(12, 40, 13000),
        ferry: requests(20, 60, 11000),
      },
    ],
    streaming: {
      tokens: 64,
      intervalMs: 20,
      direct: stream(0.6, 20.3),
      bareProxy: stream(1.2, 20.3),
      ferry: stream(1.5, 20.35),
      held: [held(250), held(1000), held(1500, 1400)],
    },
    state: {
      sqlite: {
        chain: [chainPoint(1, 0.9, 0.1), chainPoint(10, 0.95, 0.1), chainPoint(1000, 2.5, 0.3)],
        background: { jobs: 1000, seconds: 1.5, jobsPerSecond: 666.7, cpuMicrosPerJob: 1200 },
      },
    },
    memory: { idleMb: 110, underLoadMb: 180, afterLoadMb: 175 },
    notes: [],
  };
}

const verdicts = (report: BenchReport) => Object.fromEntries(targets(report).map((t) => [t.name, t]));

describe('the benchmark report', () => {
  it('finds the highest rate under each p99 bound, and ignores a level that had errors', () => {
    const points = [
      { concurrency: 1, result: requests(0.5, 1, 1000) },
      { concurrency: 8, result: requests(2, 4.9, 5000) },
      { concurrency: 32, result: requests(5, 19, 9000) },
      { concurrency: 64, result: requests(6, 15, 12000, 3) },
      { concurrency: 128, result: requests(30, 90, 11000) },
    ];
    expect(frontier(points, 5)).toBe(5000);
    expect(frontier(points, 20)).toBe(9000);
    expect(frontier(points, 100)).toBe(11000);
    expect(frontier(points, 0.5)).toBe(0);
  });

  it('judges every target from the figures of one run', () => {
    const report = passingReport();
    const all = targets(report);
    expect(all).toHaveLength(7);
    expect(all.filter((t) => !t.met)).toEqual([]);
    const byName = verdicts(report);
    expect(byName['added p50 at concurrency 1, store:true, SQLite ≤ 0.3 ms']).toMatchObject({
      measured: '0.250 ms',
      met: true,
    });
    expect(byName['added p99 at concurrency 1, store:true, SQLite ≤ 1 ms']).toMatchObject({
      measured: '0.900 ms',
      met: true,
    });
    expect(byName['throughput at p99 < 20 ms ≥ ½ of direct']).toMatchObject({
      measured: '10,000 vs 20,000 rps (50 %)',
      met: true,
    });
    expect(byName['added time to first token ≤ 1 ms']).toMatchObject({
      measured: '0.900 ms (the bare proxy adds 0.600)',
      met: true,
    });
    expect(byName['added inter-token gap ≤ 0.1 ms']).toMatchObject({ measured: '0.050 ms', met: true });
    // 1,500 streams were opened but not all completed: the most held is 1,000.
    expect(byName['1,000 concurrent streams held']).toMatchObject({ measured: '1,000 streams', met: true });
    // Added over direct: 2.2 at depth 1000 against 0.8 at depth 1.
    expect(
      byName['follow-up at chain depth 1000 ≤ 2 ms more than depth 1 (added over direct)'],
    ).toMatchObject({
      measured: '+1.400 ms (+1.600 ms before subtracting the backend reading the longer prompt)',
      met: true,
    });
  });

  it('marks each target missed when its figure is over the line', () => {
    const report = passingReport();
    report.latency.stored = requests(0.41, 1.3);
    report.sweep[1]!.ferry = requests(3, 12, 9999);
    report.streaming.ferry = stream(1.7, 20.5);
    report.streaming.held = [held(250), held(1000, 1000, 1)];
    report.state.sqlite.chain[2] = chainPoint(1000, 3.2, 0.3);
    expect(targets(report).filter((t) => t.met)).toEqual([]);
  });

  it('signs a follow-up that came out cheaper than at depth 1', () => {
    const report = passingReport();
    report.state.sqlite.chain[2] = chainPoint(1000, 0.7, 0.8);
    expect(
      verdicts(report)['follow-up at chain depth 1000 ≤ 2 ms more than depth 1 (added over direct)'],
    ).toMatchObject({
      measured: '-0.900 ms (-0.200 ms before subtracting the backend reading the longer prompt)',
      met: true,
    });
    expect(renderMarkdown(report)).toContain('| 0.700 (-0.100) |');
  });

  it('renders the machine, every section and the targets as Markdown', () => {
    const markdown = renderMarkdown(passingReport());
    expect(markdown).toContain('commit `abc1234`, full run (400 s)');
    expect(markdown).toContain('2 cores (Test CPU), Node v20.0.0; Ferry pinned to core 1');
    for (const heading of [
      '### 1. Added latency',
      '### 1b. Every other endpoint',
      '### 2. Throughput frontier',
      '### 3. Streaming (64 deltas, 20 ms apart)',
      '### 4. State',
      '### 5. Memory',
      '### Targets',
    ])
      expect(markdown).toContain(heading);
    expect(markdown).toContain('| < 20 ms | 20,000 | 12,000 | 10,000 | 50 % | 83 % |');
    expect(markdown).toContain('| 110 MB | 180 MB | 175 MB |');
    // Without a PostgreSQL comparison or another gateway, neither appears.
    expect(markdown).not.toContain('PostgreSQL');
    expect(markdown).not.toContain('Other gateway');
    const targetRows = markdown
      .slice(markdown.indexOf('### Targets'))
      .split('\n')
      .filter((l) => l.startsWith('| '));
    expect(targetRows).toHaveLength(2 + 7);
    expect(targetRows.filter((l) => l.endsWith('| yes |'))).toHaveLength(7);
  });

  it('adds a PostgreSQL column, another gateway and the notes when the run measured them', () => {
    const report = passingReport();
    report.state.postgres = {
      stored: requests(1.4, 6),
      chain: report.state.sqlite.chain.map((point) => chainPoint(point.depth, 2, 0.1)),
      background: { jobs: 1000, seconds: 3, jobsPerSecond: 333.3, cpuMicrosPerJob: 1900 },
    };
    report.target = {
      url: 'http://127.0.0.1:4000',
      latency: requests(0.9, 2.5),
      sweep: [
        { concurrency: 1, result: requests(0.9, 2.5, 1100), ferry: requests(0.5, 1, 2100) },
        { concurrency: 16, result: requests(4, 18, 3000), ferry: requests(2, 9, 11000) },
      ],
    };
    report.notes.push('something worth saying');
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('| blocking store:true p50 / p99 | 0.350 / 1.100 | 1.400 / 6.000 |');
    expect(markdown).toContain("1000 in 3.0 s = 333/s (Ferry's CPU 1.900 ms a job)");
    expect(markdown).toContain('### Other gateway: http://127.0.0.1:4000');
    expect(markdown).toContain('| the other gateway | 0.900 | 1.700 | 2.500 | 0.800 | 2.300 |');
    expect(markdown).toContain('| < 20 ms | 20,000 | 3,000 | 11,000 |');
    expect(markdown).toContain('Note: something worth saying');
  });

  it('renders results written before the streaming floor and pacing were recorded', () => {
    const report = passingReport();
    delete report.streaming.bareProxy;
    delete report.streaming.tokens;
    delete report.streaming.intervalMs;
    const markdown = renderMarkdown(report);
    expect(markdown).toContain('### 3. Streaming (64 deltas, 20 ms apart)');
    expect(markdown).not.toContain('piping the NDJSON');
    expect(verdicts(report)['added time to first token ≤ 1 ms']!.measured).toBe('0.900 ms');
  });
});
