import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Panel {
  type: string;
  id: number;
  title: string;
  targets?: { expr: string }[];
}

/** The names Ferry exports, with the series a histogram adds (`_bucket`, `_sum`, `_count`). */
async function exportedSeries(): Promise<{ families: string[]; series: Set<string> }> {
  const metrics = new Metrics();
  const families = (await metrics.registry.getMetricsAsJSON()).map((metric) => ({
    name: metric.name,
    type: String(metric.type),
  }));
  const series = new Set<string>();
  for (const { name, type } of families) {
    series.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(name + suffix);
  }
  return { families: families.map((family) => family.name), series };
}

describe('the Grafana dashboard and the operations guide', () => {
  const dashboard = JSON.parse(readFileSync(ROOT + 'ops/grafana/ferry.json', 'utf8')) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; query?: unknown }[] };
  };

  it('queries only metrics Ferry exports', async () => {
    const { series } = await exportedSeries();
    const expressions = [
      ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
      ...dashboard.templating.list.map((variable) => JSON.stringify(variable.query ?? '')),
    ];
    const used = new Set(
      expressions.flatMap((expr) => expr.match(/\b(?:ferry|process|nodejs)_[a-z0-9_]+/g) ?? []),
    );
    expect(used.size).toBeGreaterThan(25);
    expect([...used].filter((name) => !series.has(name))).toEqual([]);
  });

  it('charts every Ferry metric family, with unique panel ids', async () => {
    const { families } = await exportedSeries();
    const text = JSON.stringify(dashboard);
    const ferryFamilies = families.filter((name) => name.startsWith('ferry_'));
    expect(ferryFamilies.filter((name) => !text.includes(name))).toEqual([]);
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(
      dashboard.panels.filter((panel) => panel.type !== 'row').every((panel) => panel.targets?.length),
    ).toBe(true);
  });

  it('documents every Ferry metric family in docs/operations.md', async () => {
    const { families } = await exportedSeries();
    const guide = readFileSync(ROOT + 'docs/operations.md', 'utf8');
    const documented = new Set(guide.match(/`(ferry_[a-z0-9_]+)`/g)?.map((name) => name.slice(1, -1)));
    const ferryFamilies = families.filter((name) => name.startsWith('ferry_'));
    expect(ferryFamilies.filter((name) => !documented.has(name))).toEqual([]);
    // …and documents nothing Ferry does not export.
    expect([...documented].filter((name) => !families.includes(name))).toEqual([]);
  });
});
