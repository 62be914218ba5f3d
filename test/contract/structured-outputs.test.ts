import type { APIError } from 'openai';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend, Scenario } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream, type CheckedStream } from '../support/stream-checker.js';
import { chatRequests, messagesOf, WEATHER_TOOL } from '../support/tools.js';

type Json = Record<string, unknown>;

const Weather = z.object({ city: z.string(), temperature: z.number(), conditions: z.array(z.string()) });
const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, temperature: { type: 'number' } },
  required: ['city', 'temperature'],
  additionalProperties: false,
};
const answer = (text: string): Scenario => ({ steps: [{ type: 'text', text }] });

/** `text.format` json_object / json_schema: constrained by the backend, checked by Ferry (70, 71). */
describe.each(BACKEND_KINDS)('structured outputs over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry({ backends: [{ name: 'local', kind, url: fake.url }] });
    client = ferry.client;
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  const stream = async (body: Json): Promise<CheckedStream> => {
    const response = await postJson(ferry, '/v1/responses', { model: 'test-model', stream: true, ...body });
    expect(response.status).toBe(200);
    return checkStream((await captureSse(response)).frames.map((frame) => frame.data));
  };
  const jsonSchema = (strict = true) => ({
    format: { type: 'json_schema' as const, name: 'weather', schema: SCHEMA, strict },
  });
  const lastSent = () => chatRequests(fake).at(-1)!;

  it('parses a zod format with responses.parse(), and asks the backend for the schema (70)', async () => {
    fake.enqueue(answer('{"city":"Paris","temperature":21.5,"conditions":["sunny"]}'));
    const parsed = await client.responses.parse({
      model: 'test-model',
      input: 'Weather in Paris as JSON',
      text: { format: zodTextFormat(Weather, 'weather') },
    });
    expect(parsed.output_parsed).toEqual({ city: 'Paris', temperature: 21.5, conditions: ['sunny'] });
    expect(parsed.text?.format).toMatchObject({ type: 'json_schema', name: 'weather', strict: true });
    const body = lastSent().body;
    const schema = (kind === 'ollama' ? body.format : (body.response_format as Json).json_schema) as Json;
    if (kind === 'ollama')
      expect(schema).toMatchObject({ type: 'object', required: ['city', 'temperature', 'conditions'] });
    else expect(schema).toMatchObject({ name: 'weather', strict: true, schema: { type: 'object' } });
  });

  it('streams a zod format through responses.stream() and finalResponse()', async () => {
    fake.enqueue(answer('{"city":"Oslo","temperature":-3,"conditions":["snow","wind"]}'));
    const runner = client.responses.stream({
      model: 'test-model',
      input: 'Weather in Oslo',
      text: { format: zodTextFormat(Weather, 'weather') },
    });
    const final = await runner.finalResponse();
    expect(final.output_parsed).toEqual({ city: 'Oslo', temperature: -3, conditions: ['snow', 'wind'] });
  });

  it('passes json_object to the backend and returns valid JSON (71)', async () => {
    fake.enqueue(answer('{"ok": true}'));
    const response = await client.responses.create({
      model: 'test-model',
      input: 'Reply in JSON',
      text: { format: { type: 'json_object' } },
    });
    expect(JSON.parse(response.output_text)).toEqual({ ok: true });
    expect(response.text?.format).toEqual({ type: 'json_object' });
    const body = lastSent().body;
    if (kind === 'ollama') expect(body.format).toBe('json');
    else expect(body.response_format).toEqual({ type: 'json_object' });
  });

  it('repairs invalid JSON once: the model sees its answer and what was wrong (blocking)', async () => {
    fake.enqueue(
      answer('Sure! {"city": "Rome", "temperature": 30'),
      answer('{"city":"Rome","temperature":30}'),
    );
    const response = await client.responses.create({
      model: 'test-model',
      input: 'Rome',
      text: jsonSchema(),
    });
    expect(response.status).toBe('completed');
    expect(JSON.parse(response.output_text)).toEqual({ city: 'Rome', temperature: 30 });
    expect(response.output).toHaveLength(1);
    const repair = messagesOf(lastSent());
    expect(repair.at(-2)).toMatchObject({
      role: 'assistant',
      content: 'Sure! {"city": "Rome", "temperature": 30',
    });
    expect(messageText(repair.at(-1) as { content: unknown })).toMatch(
      /not JSON matching the schema 'weather'/,
    );
    // Both attempts' tokens are counted (the fakes report a quarter of the prompt's JSON length).
    const prompts = chatRequests(fake)
      .slice(-2)
      .map((request) => Math.ceil(JSON.stringify(request.body.messages).length / 4));
    expect(response.usage!.input_tokens).toBe(prompts[0]! + prompts[1]!);
  });

  it('repairs a schema mismatch in a stream without showing the client the bad answer', async () => {
    fake.enqueue(answer('{"city":"Rome"}'), answer('{"city":"Rome","temperature":30}'));
    const checked = await stream({ input: 'Rome', text: jsonSchema() });
    expect(checked.terminalType).toBe('response.completed');
    expect(checked.text).toBe('{"city":"Rome","temperature":30}');
    const deltas = checked.events.filter((event) => event.type === 'response.output_text.delta');
    expect(deltas.map((event) => event.delta).join('')).toBe('{"city":"Rome","temperature":30}');
    expect(messageText(messagesOf(lastSent()).at(-1) as { content: unknown })).toMatch(/temperature/);
  });

  it('fails rather than return invalid JSON as completed, blocking and streamed', async () => {
    fake.enqueue(answer('not json'), answer('still not json'));
    const error = await client.responses
      .create({ model: 'test-model', input: 'x', text: { format: { type: 'json_object' } } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as APIError).status).toBe(502);
    expect((error as APIError).code).toBe('invalid_json_output');
    expect((error as APIError).message).toMatch(/not JSON/);
    fake.enqueue(answer('{"city": 1}'), answer('{"city": 2}'));
    const checked = await stream({ input: 'x', text: jsonSchema() });
    expect(checked.terminalType).toBe('response.failed');
    expect(checked.final.error).toMatchObject({ code: 'invalid_json_output' });
    expect(checked.items).toEqual([]);
  });

  it('takes a schema as a hint with strict false: valid JSON that does not fit passes', async () => {
    fake.enqueue(answer('{"town":"Rome"}'));
    const response = await client.responses.create({
      model: 'test-model',
      input: 'x',
      text: jsonSchema(false),
    });
    expect(response.output_text).toBe('{"town":"Rome"}');
    expect(response.text?.format).toMatchObject({ strict: false });
  });

  it('returns a cut-off answer as incomplete, unrepaired', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: '{"city": "Ro' }], finish: 'length' });
    const response = await client.responses.create({
      model: 'test-model',
      input: 'x',
      text: jsonSchema(),
      max_output_tokens: 16,
    });
    expect(response.status).toBe('incomplete');
    expect(response.output_text).toBe('{"city": "Ro');
  });

  it('leaves text alone when the model calls a tool instead', async () => {
    fake.enqueue({
      steps: [{ type: 'tool_call', name: 'get_weather', arguments: { city: 'Rome', unit: 'c' } }],
    });
    const response = await client.responses.create({
      model: 'test-model',
      input: 'x',
      text: jsonSchema(),
      tools: [WEATHER_TOOL],
    });
    expect(response.output.map((item) => item.type)).toEqual(['function_call']);
  });

  it('refuses a strict schema it cannot compile, naming text.format.schema', async () => {
    const response = await postJson(ferry, '/v1/responses', {
      model: 'test-model',
      input: 'x',
      text: {
        format: { type: 'json_schema', name: 'bad', schema: { type: 'object', required: 'x' }, strict: true },
      },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: Json }).error.param).toBe('text.format.schema');
  });
});
