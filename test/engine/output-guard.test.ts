import { describe, expect, it } from 'vitest';
import type { Tool } from '../../src/api/create-response.js';
import type { BackendPart } from '../../src/backends/types.js';
import { OutputGuard, type OutputPolicy } from '../../src/engine/output-guard.js';
import { textFormatPolicy } from '../../src/engine/structured-output.js';
import { resolveToolChoice } from '../../src/engine/tools/choice.js';
import { ToolSet } from '../../src/engine/tools/toolset.js';

const STRICT: Tool = {
  type: 'function',
  name: 'lookup',
  parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
  strict: true,
};
const LOOSE: Tool = {
  type: 'function',
  name: 'run',
  parameters: { type: 'object', properties: {} },
  strict: false,
};

function guard(
  options: {
    tools?: Tool[];
    choice?: Parameters<typeof resolveToolChoice>[0];
    max?: number;
    json?: boolean;
    holdAll?: boolean;
  } = {},
) {
  const tools = ToolSet.from(options.tools ?? [STRICT, LOOSE]);
  const policy: OutputPolicy = {
    tools,
    choice: resolveToolChoice(options.choice, tools),
    maxToolCalls: options.max ?? Infinity,
    textFormat: options.json ? textFormatPolicy({ type: 'json_object' }) : undefined,
  };
  return new OutputGuard(policy, { holdAll: options.holdAll ?? false, model: 'm' });
}

const text = (value: string): BackendPart => ({ type: 'text-delta', text: value });
const reasoning = (value: string): BackendPart => ({ type: 'reasoning-delta', text: value });
const start = (key: string, name: string): BackendPart => ({ type: 'tool-call-start', key, name });
const delta = (key: string, value: string): BackendPart => ({
  type: 'tool-call-delta',
  key,
  argumentsDelta: value,
});
const end = (key: string): BackendPart => ({ type: 'tool-call-end', key });
const finish = (reason: 'stop' | 'length' | 'tool_calls' = 'stop'): BackendPart => ({
  type: 'finish',
  reason,
});

/** Feeds parts in order; returns what was passed on after each one. */
function feed(subject: OutputGuard, parts: BackendPart[]): BackendPart[][] {
  return parts.map((part) => subject.accept(part));
}

describe('OutputGuard', () => {
  it('passes reasoning, text and unchecked calls through at once when nothing needs checking', () => {
    const subject = guard();
    const parts = [reasoning('hm'), text('Hi'), start('0', 'run'), delta('0', '{}'), end('0')];
    expect(feed(subject, parts)).toEqual(parts.map((part) => [part]));
    expect(subject.committed).toBe(true);
    expect(subject.end()).toEqual([finish()]);
  });

  it('holds a strict call, and whatever follows it, until its arguments pass; then sends it whole', () => {
    const subject = guard();
    const passed = feed(subject, [
      start('0', 'lookup'),
      delta('0', '{"q":'),
      text('after'),
      delta('0', '"x"}'),
    ]);
    expect(passed.flat()).toEqual([]);
    expect(subject.committed).toBe(false);
    expect(subject.accept(end('0'))).toEqual([
      { type: 'tool-call', key: '0', name: 'lookup', arguments: '{"q":"x"}' },
      text('after'),
    ]);
    expect(subject.committed).toBe(true);
  });

  it('reports a strict call with bad arguments at the end, having shown nothing', () => {
    const subject = guard();
    feed(subject, [start('0', 'lookup'), delta('0', '{"x":1}'), end('0'), finish('tool_calls')]);
    expect(subject.end()).toEqual([]);
    expect(subject.violation).toMatchObject({
      code: 'invalid_tool_call',
      message: expect.stringContaining('lookup'),
    });
    expect(subject.violation!.instruction).toMatch(/must have required property 'q'/);
    expect(subject.committed).toBe(false);
  });

  it('lets an answer cut off by the token limit through as it is', () => {
    const subject = guard();
    feed(subject, [start('0', 'lookup'), delta('0', '{"q":"unfin'), end('0'), finish('length')]);
    expect(subject.end()).toEqual([
      { type: 'tool-call', key: '0', name: 'lookup', arguments: '{"q":"unfin' },
      finish('length'),
    ]);
    expect(subject.violation).toBeUndefined();
  });

  it('checks a whole call before passing any of it on', () => {
    const subject = guard();
    expect(subject.accept({ type: 'tool-call', key: '0', name: 'run', arguments: 'not json' })).toEqual([]);
    expect(subject.committed).toBe(false);
    subject.accept(finish());
    subject.end();
    expect(subject.violation?.code).toBe('invalid_tool_call');
  });

  it('gives a call without arguments an empty object, streamed or whole', () => {
    const streamed = guard();
    expect(feed(streamed, [start('0', 'run'), end('0')])).toEqual([
      [start('0', 'run')],
      [delta('0', '{}'), end('0')],
    ]);
    const whole = guard();
    expect(whole.accept({ type: 'tool-call', key: '0', name: 'run', arguments: '' })).toEqual([
      { type: 'tool-call', key: '0', name: 'run', arguments: '{}' },
    ]);
  });

  it('drops calls beyond the limit, and their parts', () => {
    const subject = guard({ max: 1 });
    const passed = feed(subject, [
      start('0', 'run'),
      delta('0', '{}'),
      end('0'),
      start('1', 'run'),
      delta('1', '{}'),
      end('1'),
      { type: 'tool-call', key: '2', name: 'lookup', arguments: '{"q":"y"}' },
    ]);
    expect(passed.flat().map((part) => ('key' in part ? part.key : part.type))).toEqual(['0', '0', '0']);
    expect(subject.end()).toEqual([finish()]);
  });

  it("holds text while 'required' waits for a call, and releases it in order with the call", () => {
    const subject = guard({ choice: 'required' });
    expect(feed(subject, [reasoning('r'), text('Let me look.')])).toEqual([[reasoning('r')], []]);
    expect(subject.committed).toBe(false);
    expect(feed(subject, [start('0', 'run'), delta('0', '{}')]).flat()).toEqual([]);
    expect(subject.accept(end('0'))).toEqual([
      text('Let me look.'),
      start('0', 'run'),
      delta('0', '{}'),
      end('0'),
    ]);
    expect(subject.accept(text(' Done.'))).toEqual([text(' Done.')]);
  });

  it("reports 'required' without a call, naming the forced tool in the instruction", () => {
    const subject = guard({ choice: { type: 'function', name: 'lookup' } });
    feed(subject, [text('No.'), finish()]);
    expect(subject.end()).toEqual([]);
    expect(subject.violation).toMatchObject({
      code: 'tool_choice_violation',
      instruction: "You must call the tool 'lookup' now. Do not answer in text.",
    });
  });

  it("stops at the first call under 'none', to an unknown tool, or to one the choice leaves out", () => {
    for (const [choice, name, code] of [
      ['none', 'run', 'tool_choice_violation'],
      ['auto', 'nope', 'invalid_tool_call'],
      [
        { type: 'allowed_tools', mode: 'auto', tools: [{ type: 'function', name: 'lookup' }] },
        'run',
        'tool_choice_violation',
      ],
    ] as const) {
      const subject = guard({ choice: choice as never });
      expect(subject.accept(start('0', name))).toEqual([]);
      expect(subject.violation?.code).toBe(code);
      expect(subject.accept(text('more'))).toEqual([]);
      expect(subject.end()).toEqual([]);
    }
  });

  it('holds structured text until the end and reports invalid JSON with the answer to repair', () => {
    const subject = guard({ json: true });
    expect(feed(subject, [reasoning('r'), text('{"a":'), text(' 1')]).flat()).toEqual([reasoning('r')]);
    subject.accept(finish());
    expect(subject.end()).toEqual([]);
    expect(subject.violation).toMatchObject({ code: 'invalid_json_output', answer: '{"a": 1' });
    const good = guard({ json: true });
    feed(good, [text('{"a":'), text(' 1}'), { type: 'usage', usage: { inputTokens: 1, outputTokens: 2 } }]);
    expect(good.end()).toEqual([text('{"a":'), text(' 1}'), finish()]);
  });

  it('holds everything for a blocking request, and passes usage at once', () => {
    const subject = guard({ holdAll: true });
    const usage: BackendPart = { type: 'usage', usage: { inputTokens: 3, outputTokens: 4 } };
    expect(feed(subject, [reasoning('r'), text('t'), usage])).toEqual([[], [], [usage]]);
    expect(subject.committed).toBe(false);
    expect(subject.end()).toEqual([reasoning('r'), text('t'), finish()]);
  });

  it('counts only visible text as shown to the client', () => {
    const subject = guard();
    subject.accept(text('\n\n'));
    expect(subject.committed).toBe(false);
    subject.accept(text('x'));
    expect(subject.committed).toBe(true);
  });
});
