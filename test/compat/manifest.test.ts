import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compatibilityManifest, FEATURES, type Feature } from '../../src/compat/manifest.js';
import { FERRY_VERSION } from '../../src/version.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Behaviours in the reference checklist (responses-api.md §11). */
const CHECKLIST_SIZE = 144;

/**
 * The titles of the tests a file declares: `it('…')`/`test('…')` and the title template of
 * `it.each(table)('…')`. Skipped and todo tests (`it.skip`, `it.todo`) do not count.
 */
export function declaredTestTitles(source: string): Set<string> {
  const titles = new Set<string>();
  const call = /(?<![.\w])(?:it|test)(\.each)?\s*\(/g;
  for (let match = call.exec(source); match; match = call.exec(source)) {
    let index = match.index + match[0].length;
    if (match[1]) {
      index = skipBalanced(source, index - 1);
      index = skipSpace(source, index);
      if (source[index] !== '(') continue;
      index++;
    }
    const title = readStringLiteral(source, skipSpace(source, index));
    if (title !== undefined) titles.add(title);
  }
  return titles;
}

function skipSpace(source: string, index: number): number {
  while (/\s/.test(source[index] ?? '')) index++;
  return index;
}

/** From an opening bracket, the index just after its matching close (strings and comments skipped). */
function skipBalanced(source: string, open: number): number {
  let depth = 0;
  for (let index = open; index < source.length; index++) {
    const char = source[index]!;
    if (char === "'" || char === '"' || char === '`') {
      index = endOfString(source, index);
    } else if (char === '/' && source[index + 1] === '/') {
      index = source.indexOf('\n', index);
    } else if ('([{'.includes(char)) depth++;
    else if (')]}'.includes(char) && --depth === 0) return index + 1;
  }
  return source.length;
}

function endOfString(source: string, start: number): number {
  const quote = source[start]!;
  for (let index = start + 1; index < source.length; index++) {
    if (source[index] === '\\') index++;
    else if (source[index] === quote) return index;
  }
  return source.length;
}

/** A plain string literal at `index` (a template literal with `${…}` is dynamic: undefined). */
function readStringLiteral(source: string, index: number): string | undefined {
  const quote = source[index];
  if (quote !== "'" && quote !== '"' && quote !== '`') return undefined;
  const raw = source.slice(index + 1, endOfString(source, index));
  if (quote === '`' && raw.includes('${')) return undefined;
  return raw.replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char));
}

const titlesByFile = new Map<string, Set<string>>();
function titlesOf(file: string): Set<string> {
  let titles = titlesByFile.get(file);
  if (!titles) {
    titles = declaredTestTitles(readFileSync(ROOT + file, 'utf8'));
    titlesByFile.set(file, titles);
  }
  return titles;
}

describe('the compatibility manifest', () => {
  it('finds test titles the way vitest declares them', () => {
    const titles = declaredTestTitles(`
      it('plain', () => {});
      it("double \\"quoted\\"", () => {});
      it.each([['a', { x: [1, 2] }], ['b)', 2]])('template %s', () => {});
      it.skip('skipped', () => {});
      describe.each(['x'])('a describe %s', () => {});
      test(\`backticked\`, () => {});
      it(\`dynamic \${name}\`, () => {});
    `);
    expect([...titles].sort()).toEqual(['backticked', 'double "quoted"', 'plain', 'template %s']);
  });

  it('links every supported, conditional and echoed feature to tests that exist', () => {
    const ids = new Set<string>();
    const problems: string[] = [];
    for (const feature of FEATURES) {
      if (ids.has(feature.id)) problems.push(`${feature.id}: duplicate id`);
      ids.add(feature.id);
      if (feature.tests.length === 0)
        problems.push(`${feature.id}: marked ${feature.status} but links no test`);
      if (feature.status === 'conditional' && !feature.condition)
        problems.push(`${feature.id}: no condition`);
      if (feature.status === 'unsupported' && !feature.probe) problems.push(`${feature.id}: no probe`);
      if (feature.status !== 'unsupported' && feature.probe)
        problems.push(`${feature.id}: a probe on a feature it supports`);
      for (const link of feature.tests) {
        if (!existsSync(ROOT + link.file)) problems.push(`${feature.id}: no file ${link.file}`);
        else if (!titlesOf(link.file).has(link.test))
          problems.push(`${feature.id}: no test '${link.test}' in ${link.file}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('covers the reference checklist item by item', () => {
    const numbers = FEATURES.flatMap((feature) => feature.checklist ?? []);
    const expected = Array.from({ length: CHECKLIST_SIZE }, (_, i) => i + 1);
    // Each behaviour has exactly one entry saying whether Ferry supports or refuses it.
    expect([...numbers].sort((a, b) => a - b)).toEqual(expected);
  });

  it('lists every parameter the engine refuses', () => {
    const source = readFileSync(ROOT + 'src/engine/unsupported.ts', 'utf8');
    const refused = new Set([...source.matchAll(/unsupported\(\s*'([^']+)'/g)].map((match) => match[1]!));
    expect(refused.size).toBeGreaterThan(5);
    const probed = new Set(FEATURES.map((feature) => feature.probe?.expect.param).filter(Boolean));
    expect([...refused].filter((param) => !probed.has(param))).toEqual([]);
  });
});

describe('the gateway against its manifest', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  const key = 'sk-manifest-0123';
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      apiKeys: { [key]: 'a' },
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  const unsupported = FEATURES.filter(
    (feature): feature is Feature & { probe: NonNullable<Feature['probe']> } => Boolean(feature.probe),
  );

  it('refuses every feature the manifest marks unsupported', async () => {
    expect(unsupported.length).toBeGreaterThan(20);
    const generations = () => fake.requests.filter((request) => request.path === '/api/chat').length;
    const before = generations();
    const problems: string[] = [];
    for (const { id, probe } of unsupported) {
      const response = await ferry.fetch(probe.path, {
        method: probe.method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(probe.body ? { 'content-type': 'application/json' } : {}),
        },
        ...(probe.body ? { body: JSON.stringify(probe.body) } : {}),
      });
      const body = (await response.json()) as { error?: { code: string | null; param: string | null } };
      const got = { status: response.status, code: body.error?.code, param: body.error?.param };
      const wanted = {
        status: probe.expect.status,
        code: probe.expect.code,
        param: probe.expect.param ?? got.param,
      };
      if (JSON.stringify(got) !== JSON.stringify(wanted))
        problems.push(`${id}: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(got)}`);
    }
    expect(problems).toEqual([]);
    // Nothing refused ever reached the model.
    expect(generations()).toBe(before);
  });

  it('serves the manifest at GET /v1/compatibility', async () => {
    expect((await ferry.fetch('/v1/compatibility')).status).toBe(401);
    const response = await ferry.fetch('/v1/compatibility', { headers: { authorization: `Bearer ${key}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const manifest = (await response.json()) as ReturnType<typeof compatibilityManifest>;
    expect(manifest).toEqual(JSON.parse(JSON.stringify(compatibilityManifest(FERRY_VERSION))));
    expect(manifest.ferry_version).toBe(FERRY_VERSION);
    const { supported, conditional, echoed, unsupported: refused } = manifest.summary;
    expect(supported + conditional + echoed + refused).toBe(FEATURES.length);
    const websocket = manifest.features.find((feature) => feature.id === 'responses.websocket');
    expect(websocket).toMatchObject({
      status: 'unsupported',
      refusal: { method: 'GET', path: '/v1/responses', status: 404, code: 'unknown_url' },
    });
  });
});
