import type { HoldResult, RequestsResult, StreamResult } from './load.js';

/** `smoke` runs each section for a moment: it proves the harness works, its figures mean nothing. */
export type RunMode = 'full' | 'quick' | 'smoke';

/** Everything one benchmark run measured (latencies in microseconds). */
export interface BenchReport {
  date: string;
  commit: string;
  mode: RunMode;
  seconds: number;
  machine: { cores: number; cpu: string; node: string; pinned: boolean };
  latency: {
    direct: RequestsResult;
    stored: RequestsResult;
    unstored: RequestsResult;
    streamed: RequestsResult;
    directStreamed: RequestsResult;
    /** bench/bare-proxy.ts: the least a Node proxy hop costs on this machine. */
    bareProxy: RequestsResult;
  };
  /** Every other endpoint at concurrency 1, and the floor: a bare Node server answering at once. */
  endpoints: { floor: RequestsResult; rows: { name: string; result: RequestsResult }[] };
  sweep: { concurrency: number; direct: RequestsResult; bareProxy: RequestsResult; ferry: RequestsResult }[];
  streaming: {
    /** The paced stream: deltas, and milliseconds between them (absent in older results: 64, 20). */
    tokens?: number;
    intervalMs?: number;
    direct: StreamResult;
    /** The same stream piped through the bare Node proxy; absent in results before it was measured. */
    bareProxy?: StreamResult;
    ferry: StreamResult;
    held: (HoldResult & { rssMb: number })[];
  };
  state: {
    sqlite: StateResult;
    postgres?: StateResult & { stored: RequestsResult };
  };
  memory: { idleMb: number; underLoadMb: number; afterLoadMb: number };
  /** Another gateway (`--target`), timed with store:false at concurrency 1 and over the sweep. */
  target?: {
    url: string;
    latency: RequestsResult;
    /** Each level of the sweep: the other gateway, and Ferry with store:false as well. */
    sweep: { concurrency: number; result: RequestsResult; ferry: RequestsResult }[];
  };
  notes: string[];
}

/** A follow-up at one chain depth, through Ferry and (the same upstream body) directly. */
export interface ChainPoint {
  depth: number;
  latency: RequestsResult;
  direct: RequestsResult;
}

export interface StateResult {
  chain: ChainPoint[];
  /** Ferry's CPU per job (all its threads, from /proc); absent in results before it was measured. */
  background: { jobs: number; seconds: number; jobsPerSecond: number; cpuMicrosPerJob?: number };
}

const ms = (microseconds: number) => (microseconds / 1000).toFixed(3);
/** A difference, always signed: +0.120, -0.031. */
const signedMs = (microseconds: number) => `${microseconds < 0 ? '' : '+'}${ms(microseconds)}`;
const ms1 = (microseconds: number) => (microseconds / 1000).toFixed(1);
const int = (value: number) => Math.round(value).toLocaleString('en-US');

/** The highest rate sustained with p99 under `boundMs`, over the concurrency sweep. */
export function frontier(points: { concurrency: number; result: RequestsResult }[], boundMs: number): number {
  let best = 0;
  for (const point of points) {
    if (point.result.errors === 0 && point.result.latency.p99 < boundMs * 1000)
      best = Math.max(best, point.result.rps);
  }
  return best;
}

/** One path's results over the concurrency sweep. */
const swept = (report: BenchReport, path: 'direct' | 'bareProxy' | 'ferry') =>
  report.sweep.map((point) => ({ concurrency: point.concurrency, result: point[path] }));

export interface Target {
  name: string;
  measured: string;
  met: boolean;
}

/** What the gateway adds: its figure minus the direct one, measured in the same run. */
const added = (gateway: number, direct: number) => gateway - direct;

export function targets(report: BenchReport): Target[] {
  const { direct, stored } = report.latency;
  const frontierDirect = frontier(swept(report, 'direct'), 20);
  const frontierFerry = frontier(swept(report, 'ferry'), 20);
  const ttft = added(report.streaming.ferry.ttft.p50, report.streaming.direct.ttft.p50);
  const gap = added(report.streaming.ferry.gap.mean, report.streaming.direct.gap.mean);
  const held = Math.max(
    0,
    ...report.streaming.held
      .filter((h) => h.completed === h.streams && h.stalled === 0)
      .map((h) => h.streams),
  );
  const chain = report.state.sqlite.chain;
  const deep = chain.at(-1)!;
  const chainAdded = (point: ChainPoint) => added(point.latency.latency.p50, point.direct.latency.p50);
  const chainCost = chainAdded(deep) - chainAdded(chain[0]!);
  const chainRaw = added(deep.latency.latency.p50, chain[0]!.latency.latency.p50);
  return [
    {
      name: 'added p50 at concurrency 1, store:true, SQLite ≤ 0.3 ms',
      measured: `${ms(added(stored.latency.p50, direct.latency.p50))} ms`,
      met: added(stored.latency.p50, direct.latency.p50) <= 300,
    },
    {
      name: 'added p99 at concurrency 1, store:true, SQLite ≤ 1 ms',
      measured: `${ms(added(stored.latency.p99, direct.latency.p99))} ms`,
      met: added(stored.latency.p99, direct.latency.p99) <= 1000,
    },
    {
      name: 'throughput at p99 < 20 ms ≥ ½ of direct',
      measured: `${int(frontierFerry)} vs ${int(frontierDirect)} rps (${((frontierFerry / frontierDirect) * 100).toFixed(0)} %)`,
      met: frontierFerry >= frontierDirect / 2,
    },
    {
      name: 'added time to first token ≤ 1 ms',
      measured:
        `${ms(ttft)} ms` +
        (report.streaming.bareProxy
          ? ` (the bare proxy adds ${ms(added(report.streaming.bareProxy.ttft.p50, report.streaming.direct.ttft.p50))})`
          : ''),
      met: ttft <= 1000,
    },
    { name: 'added inter-token gap ≤ 0.1 ms', measured: `${ms(gap)} ms`, met: gap <= 100 },
    { name: '1,000 concurrent streams held', measured: `${int(held)} streams`, met: held >= 1000 },
    {
      name: `follow-up at chain depth ${deep.depth} ≤ 2 ms more than depth 1 (added over direct)`,
      measured: `${signedMs(chainCost)} ms (${signedMs(chainRaw)} ms before subtracting the backend reading the longer prompt)`,
      met: chainCost <= 2000,
    },
  ];
}

export function renderMarkdown(report: BenchReport): string {
  const lines: string[] = [];
  const row = (...cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const { machine } = report;
  lines.push(
    `## Ferry benchmark — ${report.date.slice(0, 10)}, commit \`${report.commit}\`, ${report.mode} run (${report.seconds} s)`,
    '',
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}; ${machine.pinned ? 'Ferry pinned to core 1, fake backend and load generator to core 0' : 'no CPU pinning (taskset missing)'}. Ferry is warmed up first (a few seconds of stored, unstored and streamed requests), then every measurement discards its own warm-up. Latencies in milliseconds.`,
    '',
    '### 1. Added latency (concurrency 1, blocking, 16-token reply)',
    '',
  );
  row('path', 'p50', 'p90', 'p99', 'added p50', 'added p99');
  row('---', '---:', '---:', '---:', '---:', '---:');
  const { direct, stored, unstored, streamed, directStreamed, bareProxy } = report.latency;
  const line = (name: string, result: RequestsResult, base?: RequestsResult) =>
    row(
      name,
      ms(result.latency.p50),
      ms(result.latency.p90),
      ms(result.latency.p99),
      base ? ms(result.latency.p50 - base.latency.p50) : '',
      base ? ms(result.latency.p99 - base.latency.p99) : '',
    );
  line('fake backend directly (`/api/chat`, stream:false)', direct);
  line('Ferry `POST /v1/responses`, store:true (SQLite)', stored, direct);
  line('Ferry `POST /v1/responses`, store:false', unstored, direct);
  line('fake backend directly, streamed (whole body)', directStreamed);
  line('Ferry `POST /v1/responses`, stream:true (whole body)', streamed, directStreamed);
  line('reference: bare Node proxy to the same backend (`bench/bare-proxy.ts`)', bareProxy, direct);

  lines.push(
    '',
    '### 1b. Every other endpoint (concurrency 1)',
    '',
    'None of these calls a backend, so each is set against the floor: a bare Node server answering a GET at once, on the same core.',
    '',
  );
  row('endpoint', 'p50', 'p90', 'p99', 'over the floor p50', 'over the floor p99');
  row('---', '---:', '---:', '---:', '---:', '---:');
  const { floor } = report.endpoints;
  line('floor: bare Node server, `GET` answered at once (`bench/bare-proxy.ts`)', floor);
  for (const { name, result } of report.endpoints.rows)
    line(result.errors ? `${name} — **${result.errors} errors**` : name, result, floor);

  lines.push('', '### 2. Throughput frontier (blocking, store:true)', '');
  row('p99 bound', 'direct rps', 'bare Node proxy rps', 'Ferry rps', 'Ferry / direct', 'Ferry / bare proxy');
  row('---', '---:', '---:', '---:', '---:', '---:');
  for (const bound of [5, 20, 100]) {
    const d = frontier(swept(report, 'direct'), bound);
    const b = frontier(swept(report, 'bareProxy'), bound);
    const f = frontier(swept(report, 'ferry'), bound);
    const share = (part: number, whole: number) => (whole ? `${((part / whole) * 100).toFixed(0)} %` : '—');
    row(`< ${bound} ms`, int(d), int(b), int(f), share(f, d), share(f, b));
  }
  lines.push('', '<details><summary>Sweep</summary>', '');
  row(
    'concurrency',
    'direct rps',
    'direct p99',
    'bare proxy rps',
    'bare proxy p99',
    'Ferry rps',
    'Ferry p50',
    'Ferry p99',
    'errors',
  );
  row('---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:');
  for (const point of report.sweep) {
    row(
      point.concurrency,
      int(point.direct.rps),
      ms(point.direct.latency.p99),
      int(point.bareProxy.rps),
      ms(point.bareProxy.latency.p99),
      int(point.ferry.rps),
      ms(point.ferry.latency.p50),
      ms(point.ferry.latency.p99),
      point.ferry.errors + point.direct.errors,
    );
  }
  const s = report.streaming;
  lines.push(
    '',
    '</details>',
    '',
    `### 3. Streaming (${s.tokens ?? 64} deltas, ${s.intervalMs ?? 20} ms apart)`,
    '',
  );
  row('', 'time to first token p50', 'p99', 'inter-token gap mean', 'gap p99');
  row('---', '---:', '---:', '---:', '---:');
  const stream = (name: string, result: StreamResult) =>
    row(name, ms(result.ttft.p50), ms(result.ttft.p99), ms(result.gap.mean), ms(result.gap.p99));
  stream('fake backend directly (NDJSON)', s.direct);
  if (s.bareProxy) stream('bare Node proxy piping the NDJSON (the floor)', s.bareProxy);
  stream('Ferry (Responses SSE)', s.ferry);
  row(
    '**added** (Ferry minus direct)',
    ms(s.ferry.ttft.p50 - s.direct.ttft.p50),
    ms(s.ferry.ttft.p99 - s.direct.ttft.p99),
    ms(s.ferry.gap.mean - s.direct.gap.mean),
    ms(s.ferry.gap.p99 - s.direct.gap.p99),
  );
  lines.push('');
  row('concurrent streams', 'completed', 'stalled (gap > 1 s)', 'errors', 'gap p99', 'Ferry RSS');
  row('---:', '---:', '---:', '---:', '---:', '---:');
  for (const held of s.held) {
    row(
      int(held.streams),
      int(held.completed),
      held.stalled,
      held.errors,
      ms1(held.gap.p99),
      `${held.rssMb} MB`,
    );
  }

  lines.push('', '### 4. State', '');
  const postgres = report.state.postgres;
  row('', 'SQLite', ...(postgres ? ['PostgreSQL'] : []));
  row('---', '---:', ...(postgres ? ['---:'] : []));
  if (postgres)
    row(
      'blocking store:true p50 / p99',
      `${ms(stored.latency.p50)} / ${ms(stored.latency.p99)}`,
      `${ms(postgres.stored.latency.p50)} / ${ms(postgres.stored.latency.p99)}`,
    );
  const followUp = (point: ChainPoint) =>
    `${ms(point.latency.latency.p50)} (${signedMs(added(point.latency.latency.p50, point.direct.latency.p50))})`;
  report.state.sqlite.chain.forEach((point, index) => {
    const other = postgres?.chain[index];
    row(
      `follow-up at previous_response_id depth ${point.depth}, p50 (added over sending the same conversation directly: ${ms(point.direct.latency.p50)})`,
      followUp(point),
      ...(other ? [followUp(other)] : []),
    );
  });
  const jobs = (background: BenchReport['state']['sqlite']['background']) =>
    `${background.jobs} in ${background.seconds.toFixed(1)} s = ${background.jobsPerSecond.toFixed(0)}/s` +
    (background.cpuMicrosPerJob === undefined
      ? ''
      : ` (Ferry's CPU ${ms(background.cpuMicrosPerJob)} ms a job)`);
  row(
    'background jobs (queue → completed, after a batch to warm up)',
    jobs(report.state.sqlite.background),
    ...(postgres ? [jobs(postgres.background)] : []),
  );

  lines.push('', '### 5. Memory (Ferry resident set)', '');
  row('idle', 'under load (sweep peak)', 'after load');
  row('---:', '---:', '---:');
  row(`${report.memory.idleMb} MB`, `${report.memory.underLoadMb} MB`, `${report.memory.afterLoadMb} MB`);

  if (report.target) {
    lines.push(
      '',
      `### Other gateway: ${report.target.url}`,
      '',
      'Timed with store:false, next to Ferry with store:false.',
      '',
    );
    row('concurrency 1', 'p50', 'p90', 'p99', 'added p50', 'added p99');
    row('---', '---:', '---:', '---:', '---:', '---:');
    line('the other gateway', report.target.latency, direct);
    line('Ferry, store:false', unstored, direct);
    const sweep = report.target.sweep;
    if (sweep.length) {
      lines.push('');
      row('p99 bound', 'direct rps', 'the other gateway rps', 'Ferry rps, store:false');
      row('---', '---:', '---:', '---:');
      const ferryUnstored = sweep.map((point) => ({ concurrency: point.concurrency, result: point.ferry }));
      for (const bound of [5, 20, 100]) {
        row(
          `< ${bound} ms`,
          int(frontier(swept(report, 'direct'), bound)),
          int(frontier(sweep, bound)),
          int(frontier(ferryUnstored, bound)),
        );
      }
    }
  }

  lines.push('', '### Targets', '');
  row('target', 'measured', 'met');
  row('---', '---', '---');
  for (const target of targets(report)) row(target.name, target.measured, target.met ? 'yes' : '**no**');
  for (const note of report.notes) lines.push('', `Note: ${note}`);
  lines.push('');
  return lines.join('\n');
}
