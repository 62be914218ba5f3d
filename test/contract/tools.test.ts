import type { APIError } from 'openai';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream, type CheckedStream } from '../support/stream-checker.js';
import {
  callThenAnswer,
  capturingLogger,
  chatRequests,
  messagesOf,
  offeredTools,
  TIME_TOOL,
  WEATHER_TOOL,
} from '../support/tools.js';

type Json = Record<string, unknown>;

/**
 * Function, custom and namespaced tools, tool_choice enforcement and tool-call follow-ups,
 * driven with the official `openai` package against each backend kind. Numbers refer to the
 * reference checklist (58–69).
 */
describe.each(BACKEND_KINDS)('tools over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let client: OpenAI;
  const log = capturingLogger();

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry(
      {
        backends: [{ name: 'local', kind, url: fake.url }],
        models: { 'small-window': { contextWindow: 120 } },
      },
      { logger: log.logger },
    );
    client = ferry.client;
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });
  afterEach(() => fake.setHandler(() => ({ steps: [{ type: 'text', text: 'plain answer' }] })));

  const stream = async (body: Json): Promise<CheckedStream> => {
    const response = await postJson(ferry, '/v1/responses', { model: 'test-model', stream: true, ...body });
    expect(response.status).toBe(200);
    return checkStream((await captureSse(response)).frames.map((frame) => frame.data));
  };
  const failure = (promise: Promise<unknown>) =>
    promise.then(() => undefined).catch((error: unknown) => error);

  describe('function tools', () => {
    it('returns a function_call item and offers the backend the tool (58, 59, 60)', async () => {
      fake.enqueue({
        steps: [{ type: 'tool_call', name: 'get_weather', arguments: { city: 'Paris', unit: null } }],
      });
      const response = await client.responses.create({
        model: 'test-model',
        input: 'Weather in Paris?',
        tools: [WEATHER_TOOL],
      });
      expect(response.status).toBe('completed');
      expect(response.output).toHaveLength(1);
      const call = response.output[0] as unknown as Json;
      expect(call).toEqual({
        id: expect.stringMatching(/^fc_/),
        type: 'function_call',
        status: 'completed',
        arguments: '{"city":"Paris","unit":null}',
        call_id: expect.stringMatching(/^call_/),
        name: 'get_weather',
      });
      expect(JSON.parse(call.arguments as string)).toEqual({ city: 'Paris', unit: null });
      expect(response.tools).toEqual([WEATHER_TOOL]);
      const sent = chatRequests(fake).at(-1)!;
      expect(offeredTools(sent)).toEqual(['get_weather']);
      const tool = (sent.body.tools as { function: Json }[])[0]!.function;
      expect(tool.parameters).toEqual(WEATHER_TOOL.parameters);
      if (kind === 'openai-chat') {
        expect(tool.strict).toBe(true);
        expect(sent.body.tool_choice).toBe('auto');
      }
    });

    it('streams a call as added → argument deltas → done with name → item done (94, 95)', async () => {
      fake.enqueue({ steps: [{ type: 'tool_call', name: 'get_weather', arguments: { city: 'Oslo' } }] });
      const checked = await stream({
        input: 'Weather?',
        tools: [{ ...WEATHER_TOOL, strict: false }],
      });
      expect(checked.terminalType).toBe('response.completed');
      const types = checked.events.map((event) => event.type);
      const added = types.indexOf('response.output_item.added');
      const done = types.indexOf('response.function_call_arguments.done');
      expect(
        types.slice(added + 1, done).every((type) => type === 'response.function_call_arguments.delta'),
      ).toBe(true);
      const deltas = checked.events.filter(
        (event) => event.type === 'response.function_call_arguments.delta',
      );
      // Chat servers stream argument fragments; Ollama sends the call whole and Ferry makes one delta.
      if (kind === 'openai-chat') expect(deltas.length).toBeGreaterThan(1);
      else expect(deltas).toHaveLength(1);
      expect(checked.events[done]).toMatchObject({ name: 'get_weather', arguments: '{"city":"Oslo"}' });
      expect(checked.items[0]).toMatchObject({ type: 'function_call', status: 'completed' });
    });

    it('emits parallel calls as separate items one after another (66, d)', async () => {
      const calls = {
        steps: [
          { type: 'thinking' as const, text: 'Two cities, two calls.' },
          { type: 'tool_call' as const, name: 'get_weather', arguments: { city: 'Paris', unit: 'c' } },
          { type: 'tool_call' as const, name: 'get_time', arguments: { city: 'Tokyo' } },
        ],
      };
      fake.enqueue(calls, calls);
      const checked = await stream({
        input: 'Paris weather and Tokyo time',
        tools: [WEATHER_TOOL, TIME_TOOL],
      });
      expect(checked.items.map((item) => [item.type, item.name])).toEqual([
        ['reasoning', undefined],
        ['function_call', 'get_weather'],
        ['function_call', 'get_time'],
      ]);
      const [, first, second] = checked.items as Json[];
      expect(first!.id).not.toBe(second!.id);
      expect(first!.call_id).not.toBe(second!.call_id);
      // Strictly sequential: the second call is added only after the first is done.
      const order = checked.events
        .filter((event) => event.type.startsWith('response.output_item'))
        .map((event) => `${event.type.split('.').pop()}:${String(event.output_index)}`);
      expect(order).toEqual(['added:0', 'done:0', 'added:1', 'done:1', 'added:2', 'done:2']);
      const blocking = await client.responses.create({
        model: 'test-model',
        input: 'again',
        tools: [WEATHER_TOOL, TIME_TOOL],
      });
      expect(blocking.output.map((item) => item.type)).toEqual([
        'reasoning',
        'function_call',
        'function_call',
      ]);
    });

    it('keeps at most one call with parallel_tool_calls false, and max_tool_calls calls (65)', async () => {
      const three = {
        steps: ['Paris', 'Rome', 'Oslo'].map((city) => ({
          type: 'tool_call' as const,
          name: 'get_time',
          arguments: { city },
        })),
      };
      fake.enqueue(three, three);
      const single = await client.responses.create({
        model: 'test-model',
        input: 'times',
        tools: [TIME_TOOL],
        parallel_tool_calls: false,
      });
      expect(single.parallel_tool_calls).toBe(false);
      expect(single.output.map((item) => (item as { arguments: string }).arguments)).toEqual([
        '{"city":"Paris"}',
      ]);
      if (kind === 'openai-chat') expect(chatRequests(fake).at(-1)!.body.parallel_tool_calls).toBe(false);
      const capped = await stream({ input: 'times', tools: [TIME_TOOL], max_tool_calls: 2 });
      expect(capped.final.max_tool_calls).toBe(2);
      expect(capped.items.map((item) => item.arguments)).toEqual(['{"city":"Paris"}', '{"city":"Rome"}']);
    });

    it('completes a round trip with function_call_output by previous_response_id (67, 54)', async () => {
      fake.setHandler(
        callThenAnswer(
          { steps: [{ type: 'tool_call', name: 'get_time', arguments: { city: 'Lima' } }] },
          'It is noon.',
        ),
      );
      const first = await client.responses.create({
        model: 'test-model',
        input: 'Time in Lima?',
        tools: [TIME_TOOL],
      });
      const call = first.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
      const second = await client.responses.create({
        model: 'test-model',
        previous_response_id: first.id,
        tools: [TIME_TOOL],
        input: [{ type: 'function_call_output', call_id: call.call_id, output: '12:00' }],
      });
      expect(second.output_text).toBe('It is noon.');
      const messages = messagesOf(chatRequests(fake).at(-1)!);
      expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool']);
      const calls = messages[1]!.tool_calls as {
        id?: string;
        function: { name: string; arguments: unknown };
      }[];
      expect(calls[0]!.function.name).toBe('get_time');
      if (kind === 'ollama') expect(calls[0]!.function.arguments).toEqual({ city: 'Lima' });
      else expect(calls[0]!.function.arguments).toBe('{"city":"Lima"}');
      expect(calls[0]!.id).toBe(call.call_id);
      expect(messageText(messages[2]! as { content: unknown })).toBe('12:00');
      expect(messages[2]).toMatchObject(
        kind === 'ollama'
          ? { tool_name: 'get_time', tool_call_id: call.call_id }
          : { tool_call_id: call.call_id },
      );
      // The stored chain lists the output among the second response's input items.
      const items = await client.responses.inputItems.list(second.id);
      expect(items.data[0]).toMatchObject({
        type: 'function_call_output',
        call_id: call.call_id,
        output: '12:00',
      });
    });

    it('completes a round trip by full replay, with an output of content parts, streamed (53, 54)', async () => {
      fake.setHandler(
        callThenAnswer(
          { steps: [{ type: 'tool_call', name: 'get_time', arguments: { city: 'Quito' } }] },
          'Noon in Quito.',
        ),
      );
      const first = await stream({ input: 'Time in Quito?', tools: [TIME_TOOL], store: false });
      const call = first.items[0]!;
      const second = await stream({
        store: false,
        tools: [TIME_TOOL],
        input: [
          { role: 'user', content: 'Time in Quito?' },
          call,
          {
            type: 'function_call_output',
            call_id: call.call_id,
            output: [
              { type: 'input_text', text: 'It is' },
              { type: 'input_text', text: '12:00' },
            ],
            status: 'completed',
          },
        ],
      });
      expect(second.text).toBe('Noon in Quito.');
      const messages = messagesOf(chatRequests(fake).at(-1)!);
      expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool']);
      expect(messageText(messages[2]! as { content: unknown })).toBe('It is\n12:00');
    });

    it('refuses an output for an unknown call_id, and re-sent chain items, with 400 naming input (41, 42)', async () => {
      const unknown = await failure(
        client.responses.create({
          model: 'test-model',
          input: [{ type: 'function_call_output', call_id: 'call_nowhere', output: 'x' }],
        }),
      );
      expect(unknown).toBeInstanceOf(OpenAI.BadRequestError);
      expect((unknown as APIError).param).toBe('input');
      expect((unknown as APIError).message).toContain('call_nowhere');
      fake.enqueue({ steps: [{ type: 'tool_call', name: 'get_time', arguments: { city: 'Baku' } }] });
      const first = await client.responses.create({
        model: 'test-model',
        input: 'time?',
        tools: [TIME_TOOL],
      });
      const duplicate = await failure(
        client.responses.create({
          model: 'test-model',
          previous_response_id: first.id,
          input: [...(first.output as OpenAI.Responses.ResponseInputItem[])],
        }),
      );
      expect(duplicate).toBeInstanceOf(OpenAI.BadRequestError);
      expect((duplicate as APIError).param).toBe('input');
      expect((duplicate as APIError).message).toMatch(/Duplicate item/);
    });

    it('accepts schemas with $schema, $defs, definitions, nullable unions and strict null, and checks them (60)', async () => {
      const parameters = {
        $schema: 'http://json-schema.org/draft-07/schema#',
        type: 'object',
        properties: {
          trip: { $ref: '#/$defs/trip' },
          note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
          tags: { type: 'array', items: { $ref: '#/definitions/tag' } },
          legacy: { type: 'string', nullable: true },
        },
        required: ['trip', 'note'],
        additionalProperties: false,
        $defs: {
          trip: {
            type: 'object',
            properties: { from: { type: 'string' }, to: { type: 'string' } },
            required: ['from', 'to'],
            additionalProperties: false,
          },
        },
        definitions: { tag: { type: 'string', enum: ['work', 'fun'] } },
      };
      const tools = [
        { type: 'function', name: 'book', parameters, strict: null },
        {
          type: 'function',
          name: 'zod_style',
          parameters: { ...parameters, $schema: 'https://json-schema.org/draft/2020-12/schema' },
        },
      ];
      const good = { trip: { from: 'A', to: 'B' }, note: null, tags: ['fun'], legacy: null };
      fake.enqueue({ steps: [{ type: 'tool_call', name: 'book', arguments: good }] });
      const accepted = await client.responses.create({
        model: 'test-model',
        input: 'book',
        tools: tools as never,
      });
      expect(JSON.parse((accepted.output[0] as { arguments: string }).arguments)).toEqual(good);
      // strict: null and an omitted strict both mean strict: a call that breaks the schema is asked again.
      fake.enqueue(
        { steps: [{ type: 'tool_call', name: 'zod_style', arguments: { trip: { from: 'A' }, note: null } }] },
        { steps: [{ type: 'tool_call', name: 'zod_style', arguments: good }] },
      );
      const retried = await client.responses.create({
        model: 'test-model',
        input: 'book',
        tools: tools as never,
      });
      expect(retried.output).toHaveLength(1);
      expect(JSON.parse((retried.output[0] as { arguments: string }).arguments)).toEqual(good);
      const correction = messagesOf(chatRequests(fake).at(-1)!).at(-1)!;
      expect(correction.role).toBe('user');
      expect(messageText(correction as { content: unknown })).toMatch(/zod_style.*invalid arguments.*to/s);
    });

    it('fails a strict call whose arguments stay invalid, blocking (502) and streamed, never returning them', async () => {
      const bad = { steps: [{ type: 'tool_call' as const, name: 'get_time', arguments: { town: 'Riga' } }] };
      fake.enqueue(bad, bad);
      const error = await failure(
        client.responses.create({ model: 'test-model', input: 't', tools: [TIME_TOOL] }),
      );
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as APIError).status).toBe(502);
      expect((error as APIError).code).toBe('invalid_tool_call');
      expect((error as APIError).message).toMatch(/get_time.*invalid arguments/);
      fake.enqueue(bad, bad);
      const streamed = await stream({ input: 't', tools: [TIME_TOOL] });
      expect(streamed.terminalType).toBe('response.failed');
      expect(streamed.final.error).toMatchObject({ code: 'invalid_tool_call' });
      expect(streamed.items).toEqual([]);
    });

    it('passes non-strict arguments that do not fit the schema, but never invalid JSON', async () => {
      const loose = { ...TIME_TOOL, strict: false };
      fake.enqueue({ steps: [{ type: 'tool_call', name: 'get_time', arguments: { town: 'Riga' } }] });
      const passed = await client.responses.create({ model: 'test-model', input: 't', tools: [loose] });
      expect((passed.output[0] as { arguments: string }).arguments).toBe('{"town":"Riga"}');
      const broken = { steps: [{ type: 'tool_call' as const, name: 'get_time', arguments: '{"city": "Ri' }] };
      // A whole call (Ollama) is checked before any of it streams, so it can be asked again; argument
      // fragments (chat servers) already went out when the JSON turns out broken.
      fake.enqueue(...(kind === 'ollama' ? [broken, broken] : [broken]));
      const before = chatRequests(fake).length;
      const cut = await stream({ input: 't', tools: [loose] });
      expect(chatRequests(fake).length - before).toBe(kind === 'ollama' ? 2 : 1);
      expect(cut.terminalType).toBe('response.failed');
      expect(cut.final.error).toMatchObject({
        code: 'invalid_tool_call',
        message: expect.stringMatching(/not valid JSON/),
      });
      expect(cut.final.output).not.toContainEqual(
        expect.objectContaining({ status: 'completed', type: 'function_call' }),
      );
    });

    it('counts tool definitions against the context window', async () => {
      const fits = await client.responses.create({ model: 'small-window', input: 'short question' });
      expect(fits.status).toBe('completed');
      const big = {
        ...TIME_TOOL,
        description: 'A tool with a long description. '.repeat(20),
      };
      const error = await failure(
        client.responses.create({ model: 'small-window', input: 'short question', tools: [big] }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as APIError).code).toBe('context_length_exceeded');
    });

    it.runIf(kind === 'ollama')("names 'tools' when Ollama says the model has no tool support", async () => {
      fake.enqueue({
        steps: [],
        status: 400,
        errorBody: { error: 'registry.ollama.ai/library/test-model:latest does not support tools' },
      });
      const error = await failure(
        client.responses.create({ model: 'test-model', input: 'x', tools: [TIME_TOOL] }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as APIError).param).toBe('tools');
      expect((error as APIError).code).toBe('model_does_not_support_tools');
      expect((error as APIError).message).toContain('does not support tools');
    });

    it('refuses an explicitly strict tool whose schema cannot be compiled, naming it', async () => {
      const error = await failure(
        client.responses.create({
          model: 'test-model',
          input: 'x',
          tools: [
            { type: 'function', name: 'f', parameters: { type: 'object', properties: 5 }, strict: true },
          ],
        }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as APIError).param).toBe('tools[0].parameters');
    });

    it('asks again when the model calls a tool it was not given, and fails if it persists', async () => {
      fake.enqueue(
        { steps: [{ type: 'tool_call', name: 'launch_rockets', arguments: {} }] },
        { steps: [{ type: 'tool_call', name: 'get_time', arguments: { city: 'Nuuk' } }] },
      );
      const fixed = await client.responses.create({ model: 'test-model', input: 't', tools: [TIME_TOOL] });
      expect(fixed.output.map((item) => (item as { name: string }).name)).toEqual(['get_time']);
      expect(messageText(messagesOf(chatRequests(fake).at(-1)!).at(-1)! as { content: unknown })).toMatch(
        /no tool named 'launch_rockets'.*'get_time'/s,
      );
      const rogue = { steps: [{ type: 'tool_call' as const, name: 'launch_rockets', arguments: {} }] };
      fake.enqueue(rogue, rogue);
      const streamed = await stream({ input: 't', tools: [TIME_TOOL] });
      expect(streamed.terminalType).toBe('response.failed');
      expect(streamed.final.error).toMatchObject({ code: 'invalid_tool_call' });
    });
  });

  describe('tool_choice', () => {
    const weather = {
      steps: [{ type: 'tool_call' as const, name: 'get_weather', arguments: { city: 'Bern', unit: 'c' } }],
    };
    const time = { steps: [{ type: 'tool_call' as const, name: 'get_time', arguments: { city: 'Bern' } }] };
    const text = { steps: [{ type: 'text' as const, text: 'I would rather chat.' }] };

    it("'none': the backend is told, and a model calling anyway is asked again (61)", async () => {
      fake.enqueue(weather, { steps: [{ type: 'text', text: 'It is sunny, I think.' }] });
      const response = await client.responses.create({
        model: 'test-model',
        input: 'weather?',
        tools: [WEATHER_TOOL],
        tool_choice: 'none',
      });
      expect(response.tool_choice).toBe('none');
      expect(response.output.map((item) => item.type)).toEqual(['message']);
      expect(response.output_text).toBe('It is sunny, I think.');
      const [firstTry, retry] = chatRequests(fake).slice(-2);
      if (kind === 'ollama') expect(firstTry!.body.tools).toBeUndefined();
      else expect(firstTry!.body.tool_choice).toBe('none');
      expect(messageText(messagesOf(retry!).at(-1)! as { content: unknown })).toMatch(/Do not call any tool/);
    });

    it("'required': text instead of a call is held back and asked again, streamed (62)", async () => {
      fake.enqueue(text, weather);
      const checked = await stream({
        input: 'weather?',
        tools: [WEATHER_TOOL, TIME_TOOL],
        tool_choice: 'required',
      });
      expect(checked.terminalType).toBe('response.completed');
      // The client never saw the text that broke the rule.
      expect(checked.events.some((event) => event.type === 'response.output_text.delta')).toBe(false);
      expect(checked.items.map((item) => item.type)).toEqual(['function_call']);
      const [firstTry, retry] = chatRequests(fake).slice(-2);
      if (kind === 'openai-chat') expect(firstTry!.body.tool_choice).toBe('required');
      else expect(offeredTools(firstTry!)).toEqual(['get_weather', 'get_time']);
      expect(messageText(messagesOf(retry!).at(-1)! as { content: unknown })).toMatch(/must call a tool/);
    });

    it('a retried stream keeps the reasoning it already showed, in an item of its own', async () => {
      fake.enqueue(
        { steps: [{ type: 'thinking', text: 'No tool needed.' }, ...text.steps] },
        { steps: [{ type: 'thinking', text: 'I must call it.' }, ...weather.steps] },
      );
      const checked = await stream({ input: 'weather?', tools: [WEATHER_TOOL], tool_choice: 'required' });
      expect(checked.terminalType).toBe('response.completed');
      expect(
        checked.items.map((item) => [item.type, (item.content as { text: string }[] | undefined)?.[0]?.text]),
      ).toEqual([
        ['reasoning', 'No tool needed.'],
        ['reasoning', 'I must call it.'],
        ['function_call', undefined],
      ]);
    });

    it("'required': text before a call is kept, in order", async () => {
      fake.enqueue({ steps: [{ type: 'text', text: 'Let me check.' }, ...weather.steps] });
      const checked = await stream({ input: 'weather?', tools: [WEATHER_TOOL], tool_choice: 'required' });
      expect(checked.items.map((item) => item.type)).toEqual(['message', 'function_call']);
      expect(checked.text).toBe('Let me check.');
    });

    it("'required': a model that never calls fails the response, blocking and streamed", async () => {
      fake.enqueue(text, text);
      const error = await failure(
        client.responses.create({
          model: 'test-model',
          input: 'x',
          tools: [WEATHER_TOOL],
          tool_choice: 'required',
        }),
      );
      expect((error as APIError).status).toBe(502);
      expect((error as APIError).code).toBe('tool_choice_violation');
      expect((error as APIError).message).toMatch(/without calling a tool.*'required'/);
      fake.enqueue(text, text);
      const checked = await stream({ input: 'x', tools: [WEATHER_TOOL], tool_choice: 'required' });
      expect(checked.terminalType).toBe('response.failed');
      expect(checked.final.error).toMatchObject({ code: 'tool_choice_violation' });
      expect(checked.items).toEqual([]);
    });

    it('a forced function: only it is offered to Ollama, chat servers are told; another call is refused (63)', async () => {
      fake.enqueue(time, weather);
      const response = await client.responses.create({
        model: 'test-model',
        input: 'x',
        tools: [WEATHER_TOOL, TIME_TOOL],
        tool_choice: { type: 'function', name: 'get_weather' },
      });
      expect(response.output.map((item) => (item as { name: string }).name)).toEqual(['get_weather']);
      const [firstTry, retry] = chatRequests(fake).slice(-2);
      expect(offeredTools(firstTry!)).toEqual(['get_weather']);
      if (kind === 'openai-chat')
        expect(firstTry!.body.tool_choice).toEqual({ type: 'function', function: { name: 'get_weather' } });
      expect(messageText(messagesOf(retry!).at(-1)! as { content: unknown })).toMatch(
        /'get_time' may not be used/,
      );
      const unknown = await failure(
        client.responses.create({
          model: 'test-model',
          input: 'x',
          tools: [WEATHER_TOOL],
          tool_choice: { type: 'function', name: 'nope' },
        }),
      );
      expect((unknown as APIError).status).toBe(400);
      expect((unknown as APIError).param).toBe('tool_choice');
    });

    it('allowed_tools: only the listed tools are offered and accepted (64)', async () => {
      fake.enqueue(weather, time);
      const checked = await stream({
        input: 'x',
        tools: [WEATHER_TOOL, TIME_TOOL],
        tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [{ type: 'function', name: 'get_time' }] },
      });
      expect(checked.items.map((item) => item.name)).toEqual(['get_time']);
      const [firstTry] = chatRequests(fake).slice(-2);
      expect(offeredTools(firstTry!)).toEqual(['get_time']);
      expect(checked.final.tool_choice).toMatchObject({ type: 'allowed_tools', mode: 'auto' });
    });

    it('refuses choices that cannot be honoured with a 400 naming the parameter', async () => {
      const cases: [Json, string][] = [
        [{ tool_choice: 'required' }, 'tool_choice'],
        [{ tools: [WEATHER_TOOL], tool_choice: { type: 'file_search' } }, 'tool_choice'],
        [
          {
            tools: [WEATHER_TOOL],
            tool_choice: {
              type: 'allowed_tools',
              mode: 'required',
              tools: [{ type: 'function', name: 'x' }],
            },
          },
          'tool_choice.tools[0]',
        ],
        [
          {
            tools: [WEATHER_TOOL],
            tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [{ type: 'mcp' }] },
          },
          'tool_choice.tools[0]',
        ],
      ];
      for (const [body, param] of cases) {
        const response = await postJson(ferry, '/v1/responses', { model: 'test-model', input: 'x', ...body });
        expect(response.status, JSON.stringify(body)).toBe(400);
        expect(((await response.json()) as { error: Json }).error.param).toBe(param);
      }
    });
  });

  describe('custom and namespaced tools', () => {
    const PATCH_TOOL = { type: 'custom', name: 'apply_patch', description: 'Apply a patch to files' };

    it('maps a custom tool onto a one-string function and returns custom_tool_call items (68)', async () => {
      const patch = '*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch';
      fake.setHandler(
        callThenAnswer(
          { steps: [{ type: 'tool_call', name: 'apply_patch', arguments: { input: patch } }] },
          'Patched.',
        ),
      );
      const checked = await stream({ input: 'add a.txt', tools: [PATCH_TOOL] });
      const item = checked.items[0]!;
      expect(item).toEqual({
        id: expect.stringMatching(/^ctc_/),
        type: 'custom_tool_call',
        status: 'completed',
        call_id: expect.stringMatching(/^call_/),
        input: patch,
        name: 'apply_patch',
      });
      const types = checked.events.map((event) => event.type);
      expect(types).toContain('response.custom_tool_call_input.delta');
      expect(
        checked.events.find((event) => event.type === 'response.custom_tool_call_input.done'),
      ).toMatchObject({
        input: patch,
      });
      const offered = (chatRequests(fake).at(-1)!.body.tools as { function: Json }[])[0]!.function;
      expect(offered).toMatchObject({
        name: 'apply_patch',
        description: 'Apply a patch to files',
        parameters: { type: 'object', properties: { input: { type: 'string' } }, required: ['input'] },
      });
      // The output comes back as custom_tool_call_output, by previous_response_id.
      const follow = await client.responses.create({
        model: 'test-model',
        previous_response_id: checked.final.id as string,
        tools: [PATCH_TOOL as never],
        input: [{ type: 'custom_tool_call_output', call_id: item.call_id as string, output: 'Done!' }],
      });
      expect(follow.output_text).toBe('Patched.');
      const messages = messagesOf(chatRequests(fake).at(-1)!);
      expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool']);
      const sentCall = (messages[1]!.tool_calls as { function: { arguments: unknown } }[])[0]!.function
        .arguments;
      expect(typeof sentCall === 'string' ? JSON.parse(sentCall) : sentCall).toEqual({ input: patch });
    });

    it('checks a regex grammar, asking again when the input does not match', async () => {
      const tool = {
        type: 'custom',
        name: 'set_code',
        format: { type: 'grammar', syntax: 'regex', definition: '[A-Z]{3}-\\d{2}' },
      };
      fake.enqueue(
        { steps: [{ type: 'tool_call', name: 'set_code', arguments: { input: 'abc-1' } }] },
        { steps: [{ type: 'tool_call', name: 'set_code', arguments: { input: 'ABC-12' } }] },
      );
      const response = await client.responses.create({
        model: 'test-model',
        input: 'x',
        tools: [tool as never],
      });
      expect(response.output[0]).toMatchObject({ type: 'custom_tool_call', input: 'ABC-12' });
      const offered = (chatRequests(fake).at(-1)!.body.tools as { function: { parameters: Json } }[])[0]!;
      expect(JSON.stringify(offered.function.parameters)).toContain('[A-Z]{3}');
      const bad = await postJson(ferry, '/v1/responses', {
        model: 'test-model',
        input: 'x',
        tools: [{ ...tool, format: { type: 'grammar', syntax: 'regex', definition: '(' } }],
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: Json }).error.param).toBe('tools[0].format.definition');
    });

    it('flattens namespace tools for the backend and gives calls their namespace back', async () => {
      const namespace = {
        type: 'namespace',
        name: 'multi_agent_v1',
        description: 'Sub-agents',
        tools: [
          {
            type: 'function',
            name: 'spawn_agent',
            strict: false,
            parameters: { type: 'object', properties: { task: { type: 'string' } }, required: ['task'] },
          },
          {
            type: 'function',
            name: 'close_agent',
            strict: false,
            parameters: { type: 'object', properties: {} },
          },
        ],
      };
      fake.setHandler(
        callThenAnswer(
          {
            steps: [{ type: 'tool_call', name: 'multi_agent_v1__spawn_agent', arguments: { task: 'lint' } }],
          },
          'Spawned.',
        ),
      );
      const first = await client.responses.create({
        model: 'test-model',
        input: 'spawn',
        tools: [TIME_TOOL, namespace as never],
      });
      expect(offeredTools(chatRequests(fake).at(-1)!)).toEqual([
        'get_time',
        'multi_agent_v1__spawn_agent',
        'multi_agent_v1__close_agent',
      ]);
      expect(first.output[0]).toMatchObject({
        type: 'function_call',
        name: 'spawn_agent',
        namespace: 'multi_agent_v1',
        arguments: '{"task":"lint"}',
      });
      const call = first.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
      // Replayed in full (as Codex does), the call goes back to the backend under its flat name.
      const second = await client.responses.create({
        model: 'test-model',
        store: false,
        tools: [TIME_TOOL, namespace as never],
        input: [
          { role: 'user', content: 'spawn' },
          call as OpenAI.Responses.ResponseInputItem,
          { type: 'function_call_output', call_id: call.call_id, output: 'agent 7' },
        ],
      });
      expect(second.output_text).toBe('Spawned.');
      const replayed = messagesOf(chatRequests(fake).at(-1)!)[1]!.tool_calls as {
        function: { name: string };
      }[];
      expect(replayed[0]!.function.name).toBe('multi_agent_v1__spawn_agent');
    });

    it('refuses two tools that flatten to one name, naming the second', async () => {
      const response = await postJson(ferry, '/v1/responses', {
        model: 'test-model',
        input: 'x',
        tools: [
          { type: 'function', name: 'ns__run', parameters: { type: 'object', properties: {} } },
          {
            type: 'namespace',
            name: 'ns',
            description: 'd',
            tools: [{ type: 'function', name: 'run', parameters: null }],
          },
        ],
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: Json }).error).toMatchObject({
        param: 'tools[1].tools[0]',
        code: 'duplicate_tool_name',
      });
    });
  });

  describe('hosted tools', () => {
    it.each([
      'file_search',
      'image_generation',
      'code_interpreter',
      'mcp',
      'local_shell',
      'computer_use_preview',
    ])('refuses %s with a 400 naming tools[i].type (69)', async (type) => {
      const response = await postJson(ferry, '/v1/responses', {
        model: 'test-model',
        input: 'x',
        tools: [WEATHER_TOOL, { type }],
      });
      expect(response.status).toBe(400);
      const { error } = (await response.json()) as { error: Json };
      expect(error).toMatchObject({ param: 'tools[1].type', code: 'unsupported_parameter' });
      expect(error.message).toContain(type);
    });

    it('accepts web_search (Codex always sends it), leaves it out for the model, and logs a warning', async () => {
      fake.enqueue({ steps: [{ type: 'text', text: 'No browsing here.' }] });
      const response = await client.responses.create({
        model: 'test-model',
        input: 'search the web',
        tools: [{ type: 'web_search', external_web_access: true } as never, WEATHER_TOOL],
      });
      expect(response.status).toBe('completed');
      expect(response.tools.map((tool) => tool.type)).toEqual(['web_search', 'function']);
      expect(offeredTools(chatRequests(fake).at(-1)!)).toEqual(['get_weather']);
      const warning = log.lines().find((line) => String(line.msg).includes('web_search'));
      expect(warning).toMatchObject({ level: 40, tools: ['web_search'] });
    });
  });
});
