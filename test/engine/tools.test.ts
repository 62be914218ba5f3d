import { describe, expect, it } from 'vitest';
import type { Tool } from '../../src/api/create-response.js';
import { ApiError } from '../../src/api/errors.js';
import { backendToolChoice, backendTools, resolveToolChoice } from '../../src/engine/tools/choice.js';
import { compileJsonSchema, SchemaError } from '../../src/engine/tools/json-schema.js';
import { backendToolName } from '../../src/engine/tools/naming.js';
import { ToolSet } from '../../src/engine/tools/toolset.js';

const fn = (name: string, extra: Record<string, unknown> = {}): Tool =>
  ({ type: 'function', name, parameters: { type: 'object', properties: {} }, ...extra }) as Tool;

function apiError(action: () => unknown): ApiError {
  try {
    action();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

describe('tool names', () => {
  it('flattens namespaces reversibly and refuses collisions', () => {
    expect(backendToolName('spawn', 'agents')).toBe('agents__spawn');
    expect(backendToolName('spawn', undefined)).toBe('spawn');
    const tools = ToolSet.from([
      fn('a'),
      { type: 'namespace', name: 'ns', description: 'd', tools: [fn('b')] } as Tool,
    ]);
    expect(tools.byBackendName('ns__b')).toMatchObject({
      name: 'b',
      namespace: 'ns',
      param: 'tools[1].tools[0]',
    });
    expect(tools.byBackendName('b')).toBeUndefined();
    const duplicate = apiError(() => ToolSet.from([fn('a'), fn('a')]));
    expect(duplicate).toMatchObject({ status: 400, param: 'tools[1]', code: 'duplicate_tool_name' });
  });
});

describe('JSON schemas', () => {
  it('picks the dialect from $schema and ignores unknown meta-schema URLs', () => {
    const tuple = { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }], items: false };
    const v2020 = compileJsonSchema({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...tuple });
    expect(v2020(['a', 1])).toBeUndefined();
    expect(v2020(['a', 1, 2])).toBeDefined();
    const draft07 = compileJsonSchema({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'array',
      items: [{ type: 'string' }],
    });
    expect(draft07([1])).toMatch(/must be string/);
    const unknown = compileJsonSchema({ $schema: 'https://example.com/my-meta', type: 'integer' });
    expect(unknown(1.5)).toMatch(/must be integer/);
  });

  it('caches validators and lets two schemas share an $id', () => {
    const schema = { $id: 'shared', type: 'string' };
    expect(compileJsonSchema(schema)).toBe(compileJsonSchema({ ...schema }));
    const other = compileJsonSchema({ $id: 'shared', type: 'number' });
    expect(other(1)).toBeUndefined();
    expect(other('x')).toBeDefined();
  });

  it('refuses schemas that do not compile', () => {
    expect(() => compileJsonSchema({ type: 'object', properties: { a: { $ref: '#/nowhere' } } })).toThrow(
      SchemaError,
    );
  });
});

describe('ToolSet', () => {
  it('treats strict true, null and omitted as strict, and falls back to best effort only when implicit', () => {
    const broken = { type: 'object', properties: { a: { $ref: '#/missing' } } };
    const tools = ToolSet.from([
      fn('a', { strict: null }),
      fn('b'),
      fn('c', { strict: false }),
      fn('d', { parameters: broken }),
    ]);
    expect(tools.specs.map((spec) => spec.checked)).toEqual([true, true, false, false]);
    expect(apiError(() => ToolSet.from([fn('e', { parameters: broken, strict: true })])).param).toBe(
      'tools[0].parameters',
    );
  });

  it('unwraps custom tool input, also under another property name, and checks regex grammars', () => {
    const tools = ToolSet.from([
      { type: 'custom', name: 'free' } as Tool,
      {
        type: 'custom',
        name: 'code',
        format: { type: 'grammar', syntax: 'regex', definition: '\\d+' },
      } as Tool,
    ]);
    const [free, code] = tools.specs;
    expect(free!.check('{"input":"x y"}')).toEqual({ arguments: '{"input":"x y"}' });
    expect(free!.check('{"text":"x y"}')).toEqual({ arguments: '{"input":"x y"}' });
    expect(free!.check('{"a":"1","b":"2"}')).toHaveProperty('error');
    expect(code!.check('{"input":"123"}')).toEqual({ arguments: '{"input":"123"}' });
    expect(code!.check('{"input":"12a"}')).toHaveProperty('error');
  });

  it('shows a Lark grammar to the model but does not check the input against it', () => {
    const definition = 'start: "yes" | "no"';
    const [lark] = ToolSet.from([
      { type: 'custom', name: 'answer', format: { type: 'grammar', syntax: 'lark', definition } } as Tool,
    ]).specs;
    const input = (lark!.backendTool.parameters as { properties: { input: Record<string, unknown> } })
      .properties.input;
    expect(input.description).toContain(definition);
    expect(input).not.toHaveProperty('pattern');
    // No backend decodes Lark: text outside the grammar passes unchecked.
    expect(lark!.check('{"input":"maybe"}')).toEqual({ arguments: '{"input":"maybe"}' });
  });

  it('refuses hosted tools by index, but drops web_search', () => {
    const tools = ToolSet.from([{ type: 'web_search' } as Tool, fn('a')]);
    expect(tools.dropped).toEqual(['web_search']);
    expect(tools.specs.map((spec) => spec.name)).toEqual(['a']);
    expect(apiError(() => ToolSet.from([fn('a'), { type: 'mcp' } as Tool])).param).toBe('tools[1].type');
  });
});

describe('tool_choice', () => {
  const tools = ToolSet.from([fn('a'), fn('b'), { type: 'custom', name: 'c' } as Tool]);

  it('narrows what the backend is offered and tells it what it can take', () => {
    const forced = resolveToolChoice({ type: 'function', name: 'b' }, tools);
    expect(backendTools(forced, tools).map((tool) => tool.name)).toEqual(['b']);
    expect(backendToolChoice(forced)).toEqual({ name: 'b' });
    const custom = resolveToolChoice({ type: 'custom', name: 'c' }, tools);
    expect(backendToolChoice(custom)).toEqual({ name: 'c' });
    const allowed = resolveToolChoice(
      {
        type: 'allowed_tools',
        mode: 'required',
        tools: [
          { type: 'function', name: 'a' },
          { type: 'custom', name: 'c' },
        ],
      },
      tools,
    );
    expect(backendTools(allowed, tools).map((tool) => tool.name)).toEqual(['a', 'c']);
    expect(backendToolChoice(allowed)).toBe('required');
    expect(backendToolChoice(resolveToolChoice('none', tools))).toBe('none');
    expect(backendToolChoice(resolveToolChoice(undefined, tools))).toBe('auto');
  });

  it('refuses a forced tool of the wrong kind or name', () => {
    expect(apiError(() => resolveToolChoice({ type: 'function', name: 'c' }, tools)).param).toBe(
      'tool_choice',
    );
    expect(apiError(() => resolveToolChoice('required', ToolSet.from([]))).param).toBe('tool_choice');
  });
});
