import { describe, expect, it } from 'vitest';
import { parseOrThrow } from '../../src/api/validation.js';
import { CreateResponseRequest } from '../../src/api/create-response.js';
import type { StreamEvent } from '../../src/api/wire.js';
import type { BackendPart } from '../../src/backends/types.js';
import { initialResponse } from '../../src/engine/engine.js';
import { ResponseBuilder, type ToolCallShaper } from '../../src/engine/response-builder.js';
import { checkStream } from '../support/stream-checker.js';

function run(parts: BackendPart[], options: { shaper?: ToolCallShaper; background?: boolean } = {}) {
  const events: StreamEvent[] = [];
  // Serialise at once, as real sinks do, so later mutation cannot leak into earlier events.
  const sink = (event: StreamEvent) => events.push(JSON.parse(JSON.stringify(event)) as StreamEvent);
  const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'hi' });
  const builder = new ResponseBuilder(initialResponse('resp_test', request, 'm'), {
    sink,
    shaper: options.shaper,
    estimatedInputTokens: 7,
  });
  builder.created();
  builder.inProgress();
  for (const part of parts) builder.accept(part);
  const response = builder.finish();
  builder.end();
  return { events, response, checked: checkStream(events) };
}

const text = (value: string): BackendPart => ({ type: 'text-delta', text: value });
const finish = (reason: 'stop' | 'length' | 'tool_calls' = 'stop'): BackendPart => ({
  type: 'finish',
  reason,
});

describe('ResponseBuilder', () => {
  it('streams plain text in the canonical order and ends completed', () => {
    const { events, response, checked } = run([text('Hello'), text(', world'), finish()]);
    expect(events.map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(checked.text).toBe('Hello, world');
    expect(response.status).toBe('completed');
    expect(response.output[0]).toMatchObject({ type: 'message', status: 'completed', role: 'assistant' });
    expect(response.output[0]!.id).toMatch(/^msg_/);
  });

  it('puts reasoning in its own item before the message', () => {
    const { response, checked } = run([
      { type: 'reasoning-delta', text: 'Let me think. ' },
      { type: 'reasoning-delta', text: 'Done.' },
      text('42'),
      finish(),
    ]);
    expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(response.output[0]).toMatchObject({
      type: 'reasoning',
      summary: [],
      content: [{ type: 'reasoning_text', text: 'Let me think. Done.' }],
    });
    expect(response.output[0]!.id).toMatch(/^rs_/);
    expect(checked.events.filter((event) => event.type === 'response.reasoning_text.delta')).toHaveLength(2);
  });

  it('synthesises argument deltas for a whole tool call and drops blank text before it', () => {
    const { response, events } = run([
      text('\n\n'),
      { type: 'tool-call', key: '0', name: 'get_weather', arguments: '{"city":"Paris"}' },
      finish('tool_calls'),
    ]);
    expect(response.status).toBe('completed');
    expect(response.output).toHaveLength(1);
    const call = response.output[0]!;
    expect(call).toMatchObject({
      type: 'function_call',
      name: 'get_weather',
      arguments: '{"city":"Paris"}',
      status: 'completed',
    });
    expect(call.id).toMatch(/^fc_/);
    expect((call as { call_id: string }).call_id).toMatch(/^call_/);
    expect(events.find((event) => event.type === 'response.function_call_arguments.delta')?.delta).toBe(
      '{"city":"Paris"}',
    );
  });

  it('keeps interleaved argument fragments on the right call and emits the calls one after another', () => {
    const { response, events } = run([
      { type: 'tool-call-start', key: '0', name: 'a' },
      { type: 'tool-call-delta', key: '0', argumentsDelta: '{"x":' },
      { type: 'tool-call-start', key: '1', name: 'b' },
      { type: 'tool-call-delta', key: '1', argumentsDelta: '{"y":2}' },
      { type: 'tool-call-delta', key: '0', argumentsDelta: '1}' },
      { type: 'tool-call-end', key: '0' },
      { type: 'tool-call-end', key: '1' },
      finish('tool_calls'),
    ]);
    expect(
      response.output.map((item) => [
        item.type === 'function_call' && item.name,
        item.type === 'function_call' && item.arguments,
      ]),
    ).toEqual([
      ['a', '{"x":1}'],
      ['b', '{"y":2}'],
    ]);
    const ids = response.output.map((item) => item.id);
    expect(new Set(ids).size).toBe(2);
    // The second call is only announced once the first one is done.
    const firstDone = events.findIndex((event) => event.type === 'response.output_item.done');
    const secondAdded = events.findIndex(
      (event) => event.type === 'response.output_item.added' && event.output_index === 1,
    );
    expect(secondAdded).toBeGreaterThan(firstDone);
  });

  it('holds text that arrives during tool calls until they are done', () => {
    const { response } = run([
      { type: 'tool-call-start', key: '0', name: 'a' },
      text('after'),
      { type: 'tool-call-delta', key: '0', argumentsDelta: '{}' },
      { type: 'tool-call-end', key: '0' },
      finish(),
    ]);
    expect(response.output.map((item) => item.type)).toEqual(['function_call', 'message']);
  });

  it('ends incomplete when the backend hit the token limit', () => {
    const { response, checked } = run([
      text('partial'),
      { type: 'usage', usage: { inputTokens: 3, outputTokens: 16 } },
      finish('length'),
    ]);
    expect(checked.terminalType).toBe('response.incomplete');
    expect(response).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      completed_at: null,
      usage: { input_tokens: 3, output_tokens: 16, total_tokens: 19 },
    });
    expect(response.output[0]).toMatchObject({ status: 'incomplete' });
  });

  it('estimates usage when the backend reports none', () => {
    const { response } = run([text('12345678'), finish()]);
    expect(response.usage).toEqual({
      input_tokens: 7,
      input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      output_tokens: 2,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 9,
    });
  });

  it('fails with an error event followed by response.failed, keeping partial output', () => {
    const events: StreamEvent[] = [];
    const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'hi' });
    const builder = new ResponseBuilder(initialResponse('resp_x', request, 'm'), {
      sink: (event) => events.push(JSON.parse(JSON.stringify(event)) as StreamEvent),
    });
    builder.created();
    builder.inProgress();
    builder.accept(text('half'));
    builder.fail({ type: 'server_error', code: 'server_error', message: 'boom', param: null });
    builder.end();
    const checked = checkStream(events);
    expect(checked.terminalType).toBe('response.failed');
    expect(events.at(-2)).toMatchObject({ type: 'error', error: { code: 'server_error', message: 'boom' } });
    expect(checked.final).toMatchObject({
      status: 'failed',
      error: { code: 'server_error', message: 'boom' },
    });
    expect((checked.final.output as { status: string }[])[0]!.status).toBe('incomplete');
  });

  it('cancels silently, keeping what was produced', () => {
    const events: StreamEvent[] = [];
    const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'hi' });
    const builder = new ResponseBuilder(initialResponse('resp_x', request, 'm'), {
      sink: (event) => events.push(event),
    });
    builder.created();
    builder.accept(text('so far'));
    const count = events.length;
    const response = builder.cancel();
    builder.end();
    expect(events).toHaveLength(count);
    expect(response.status).toBe('cancelled');
    expect(response.output[0]).toMatchObject({ status: 'incomplete', content: [{ text: 'so far' }] });
  });

  it('lets a shaper turn a buffered call into a custom tool call, announced with its final type', () => {
    const shaper: ToolCallShaper = {
      start: (name) => ({ name, stream: false }),
      finish: (call) => ({
        id: call.id,
        type: 'custom_tool_call',
        status: call.status,
        call_id: call.call_id,
        input: (JSON.parse(call.arguments) as { input: string }).input,
        name: call.name,
      }),
    };
    const { response, events } = run(
      [
        { type: 'tool-call-start', key: '0', name: 'patch' },
        { type: 'tool-call-delta', key: '0', argumentsDelta: '{"input":"*** Begin' },
        { type: 'tool-call-delta', key: '0', argumentsDelta: ' Patch"}' },
        { type: 'tool-call-end', key: '0' },
        finish('tool_calls'),
      ],
      { shaper },
    );
    expect(response.output[0]).toMatchObject({
      type: 'custom_tool_call',
      input: '*** Begin Patch',
      status: 'completed',
    });
    expect(events.find((event) => event.type === 'response.output_item.added')).toMatchObject({
      item: { type: 'custom_tool_call', input: '', status: 'in_progress' },
    });
    expect(events.map((event) => event.type)).toContain('response.custom_tool_call_input.done');
  });

  it('builds the same response without a sink (blocking calls)', () => {
    const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'hi' });
    const builder = new ResponseBuilder(initialResponse('resp_b', request, 'm'));
    builder.accept({ type: 'reasoning-delta', text: 'hmm' });
    builder.accept(text('yes'));
    builder.accept(finish());
    const response = builder.finish();
    expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(response.output[1]).toMatchObject({
      content: [{ type: 'output_text', text: 'yes', annotations: [], logprobs: [] }],
    });
  });

  it('adds up the usage of a retried generation', () => {
    const usage = (inputTokens: number, outputTokens: number, reasoningTokens?: number): BackendPart => ({
      type: 'usage',
      usage: { inputTokens, outputTokens, ...(reasoningTokens !== undefined ? { reasoningTokens } : {}) },
    });
    const { response } = run([usage(10, 4, 2), usage(12, 5), text('ok'), finish()]);
    expect(response.usage).toMatchObject({
      input_tokens: 22,
      output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 2 },
      total_tokens: 31,
    });
  });

  it('seals reasoning and gives it as the summary when asked, and keeps retried reasoning apart', () => {
    const events: StreamEvent[] = [];
    const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'hi' });
    const builder = new ResponseBuilder(initialResponse('resp_r', request, 'm'), {
      sink: (event) => events.push(JSON.parse(JSON.stringify(event)) as StreamEvent),
      summarizeReasoning: true,
      encryptReasoning: (reasoning) => `sealed(${reasoning})`,
    });
    builder.created();
    builder.inProgress();
    builder.accept({ type: 'reasoning-delta', text: 'first try' });
    builder.endReasoning();
    builder.accept({ type: 'reasoning-delta', text: 'second try' });
    builder.accept(text('answer'));
    builder.accept(finish());
    builder.finish();
    builder.end();
    const checked = checkStream(events);
    expect(checked.items.slice(0, 2)).toEqual([
      expect.objectContaining({
        summary: [{ type: 'summary_text', text: 'first try' }],
        encrypted_content: 'sealed(first try)',
      }),
      expect.objectContaining({
        summary: [{ type: 'summary_text', text: 'second try' }],
        encrypted_content: 'sealed(second try)',
      }),
    ]);
  });
});
