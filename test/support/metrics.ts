/** Prometheus text exposition, parsed: one sample per series, addressable by name and labels. */
export class Scrape {
  private readonly samples = new Map<string, number>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
      if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1]!, label[2]!]),
      );
      this.samples.set(seriesKey(match[1]!, labels), Number(match[3]));
    }
  }

  /** The sample of exactly this series (0 when absent: a counter never incremented). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples.get(seriesKey(name, labels)) ?? 0;
  }

  /** The sum over every series of `name` whose labels include `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    let total = 0;
    for (const [key, value] of this.samples) {
      const parsed = parseKey(key);
      if (parsed.name !== name) continue;
      if (Object.entries(labels).every(([label, wanted]) => parsed.labels[label] === wanted)) total += value;
    }
    return total;
  }

  /** Every metric family named in the exposition (from its `# TYPE` line). */
  families(): string[] {
    return [...this.text.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]!);
  }
}

export async function scrape(fetchMetrics: () => Promise<Response>): Promise<Scrape> {
  const response = await fetchMetrics();
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return new Scrape(await response.text());
}

function seriesKey(name: string, labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((label) => `${label}=${JSON.stringify(labels[label])}`);
  return `${name}|${sorted.join(',')}`;
}

function parseKey(key: string): { name: string; labels: Record<string, string> } {
  const [name, rest] = key.split('|', 2) as [string, string];
  const labels: Record<string, string> = {};
  for (const match of rest.matchAll(/(\w+)=("(?:[^"\\]|\\.)*")/g))
    labels[match[1]!] = JSON.parse(match[2]!) as string;
  return { name, labels };
}
