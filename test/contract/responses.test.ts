import type { APIError } from 'openai';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, messageText, sentMessages, startFake } from '../support/backends.js';
import { startFerry, postJson, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';

/**
 * The Responses API contract, driven with the official `openai` package, against each backend
 * kind's faithful fake. Numbers in test names refer to the reference checklist.
 */
describe.each(BACKEND_KINDS)('Responses API over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry({
      backends: [{ name: 'local', kind, url: fake.url }],
      models: { 'small-window': { contextWindow: 200 } },
    });
    client = ferry.client;
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });
  afterEach(() =>
    fake.setHandler((request) => ({
      steps: [{ type: 'text', text: `Echo: ${lastUserText(request.body)}` }],
    })),
  );

  it('creates a blocking response with every field of the Response object (1, 4–18)', async () => {
    const response = await client.responses.create({ model: 'test-model', input: 'Hello' });
    expect(response.id).toMatch(/^resp_/);
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(response.output_text).toBe('Echo: Hello');
    for (const key of [
      'id',
      'object',
      'created_at',
      'status',
      'completed_at',
      'background',
      'error',
      'incomplete_details',
      'instructions',
      'model',
      'output',
      'parallel_tool_calls',
      'previous_response_id',
      'reasoning',
      'store',
      'temperature',
      'text',
      'tool_choice',
      'tools',
      'top_p',
      'top_logprobs',
      'truncation',
      'usage',
      'user',
      'metadata',
      'service_tier',
      'max_output_tokens',
      'max_tool_calls',
      'safety_identifier',
      'prompt_cache_key',
      'frequency_penalty',
      'presence_penalty',
    ]) {
      expect(response, key).toHaveProperty(key);
    }
    expect(response).toMatchObject({
      background: false,
      error: null,
      incomplete_details: null,
      instructions: null,
      metadata: {},
      parallel_tool_calls: true,
      store: true,
      text: { format: { type: 'text' }, verbosity: 'medium' },
      tool_choice: 'auto',
      tools: [],
      truncation: 'disabled',
      temperature: 1,
      top_p: 1,
      presence_penalty: 0,
      frequency_penalty: 0,
      top_logprobs: 0,
    });
    expect(typeof response.completed_at).toBe('number');
    const usage = response.usage!;
    expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens);
    expect(usage.input_tokens_details).toEqual({ cached_tokens: expect.any(Number), cache_write_tokens: 0 });
    expect(usage.output_tokens_details.reasoning_tokens).toBeLessThanOrEqual(usage.output_tokens);
    expect(response.output[0]).toMatchObject({
      type: 'message',
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: 'Echo: Hello', annotations: [], logprobs: [] }],
    });
  });

  it('echoes metadata, instructions and sampling parameters, and passes sampling to the backend (5, 6, 13)', async () => {
    const response = await client.responses.create({
      model: 'test-model',
      input: 'x',
      instructions: 'Be brief.',
      metadata: { team: 'a' },
      temperature: 0.2,
      top_p: 0.5,
      // Open Responses sampling fields, not in the SDK's create types.
      ...({ presence_penalty: 0.5, frequency_penalty: -0.25 } as object),
      max_output_tokens: 64,
      user: 'u1',
      safety_identifier: 's1',
      prompt_cache_key: 'k1',
      service_tier: 'auto',
    });
    expect(response).toMatchObject({
      instructions: 'Be brief.',
      metadata: { team: 'a' },
      temperature: 0.2,
      top_p: 0.5,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      max_output_tokens: 64,
      user: 'u1',
      safety_identifier: 's1',
      prompt_cache_key: 'k1',
      service_tier: 'auto',
    });
    const sent = fake.requests.at(-1)!.body as Record<string, unknown>;
    const sampling = kind === 'ollama' ? (sent.options as Record<string, unknown>) : sent;
    expect(sampling).toMatchObject({
      temperature: 0.2,
      top_p: 0.5,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
    });
    const [system, user] = sentMessages(fake);
    expect(system).toMatchObject({ role: 'system', content: 'Be brief.' });
    expect(messageText(user!)).toBe('x');
  });

  it('accepts item lists with every role, typed or not, and replayed output items (3, 51–53, 57)', async () => {
    const first = await client.responses.create({ model: 'test-model', input: 'first' });
    const response = await client.responses.create({
      model: 'test-model',
      input: [
        { role: 'system', content: 'sys' },
        { role: 'developer', content: [{ type: 'input_text', text: 'dev' }] },
        { role: 'user', content: 'question' },
        ...(first.output as OpenAI.Responses.ResponseInputItem[]),
        {
          type: 'message',
          role: 'assistant',
          content: 'plain assistant text',
          phase: 'final_answer',
        } as OpenAI.Responses.ResponseInputItem,
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'follow' },
            { type: 'input_text', text: 'up' },
          ],
        },
      ],
    });
    expect(response.status).toBe('completed');
    const sent = sentMessages(fake);
    expect(sent.map((message) => message.role)).toEqual([
      'system',
      'system',
      'user',
      'assistant',
      'assistant',
      'user',
    ]);
    expect(messageText(sent[3]!)).toBe('Echo: first');
    expect(messageText(sent[5]!)).toBe('follow\nup');
    const items = await client.responses.inputItems.list(response.id, { order: 'asc' });
    const phase = items.data.find((item) => item.type === 'message' && (item as { phase?: string }).phase);
    expect(phase).toMatchObject({ phase: 'final_answer' });
  });

  it('streams with the exact event order, and the stored response equals the terminal snapshot (78–95, 86)', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'one two three four' }] }));
    const response = await postJson(ferry, '/v1/responses', {
      model: 'test-model',
      input: 'count',
      stream: true,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    const capture = await captureSse(response);
    expect(capture.splitFrames).toBe(0);
    for (const frame of capture.frames) expect(frame.event).toBe((frame.data as { type: string }).type);
    const checked = checkStream(capture.frames.map((frame) => frame.data));
    expect(checked.terminalType).toBe('response.completed');
    expect(checked.text).toBe('one two three four');
    const stored = await client.responses.retrieve(checked.final.id as string);
    expect(JSON.parse(JSON.stringify(stored))).toEqual({
      ...checked.final,
      output_text: 'one two three four',
    });
  });

  it('works with responses.stream() and finalResponse() (104)', async () => {
    fake.setHandler(() => ({
      steps: [
        { type: 'thinking', text: 'hmm, let me see' },
        { type: 'text', text: 'The answer is 42' },
      ],
    }));
    const stream = client.responses.stream({ model: 'test-model', input: 'q' });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (event) => deltas.push(event.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe('The answer is 42');
    expect(deltas.join('')).toBe('The answer is 42');
    expect(final.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(final.output[0]).toMatchObject({ content: [{ type: 'reasoning_text', text: 'hmm, let me see' }] });
  });

  it('retrieves and deletes stored responses; unknown ids are 404 with the error envelope (19–22)', async () => {
    const created = await client.responses.create({ model: 'test-model', input: 'keep me' });
    const retrieved = await client.responses.retrieve(created.id);
    expect(retrieved).toEqual(created);
    await client.responses.delete(created.id);
    await expect(client.responses.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.responses.delete(created.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const raw = await ferry.fetch(`/v1/responses/${created.id}`, { method: 'DELETE' });
    expect(raw.status).toBe(404);
    const body = (await raw.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    const again = await client.responses.create({ model: 'test-model', input: 'x' });
    const deleted = await ferry.fetch(`/v1/responses/${again.id}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ id: again.id, object: 'response', deleted: true });
  });

  it('lists input items newest first, pages with after/limit, and auto-paginates (2, 23–28)', async () => {
    const input = Array.from({ length: 5 }, (_, i) => ({ role: 'user' as const, content: `m${i}` }));
    const response = await client.responses.create({ model: 'test-model', input });
    const page = await client.responses.inputItems.list(response.id, { limit: 2 });
    expect(page.data.map((item) => text(item))).toEqual(['m4', 'm3']);
    expect(page.has_more).toBe(true);
    const raw = (await (
      await ferry.fetch(`/v1/responses/${response.id}/input_items?limit=2`)
    ).json()) as Record<string, unknown>;
    expect(raw).toMatchObject({
      object: 'list',
      first_id: page.data[0]!.id,
      last_id: page.data[1]!.id,
      has_more: true,
    });
    const all: string[] = [];
    for await (const item of client.responses.inputItems.list(response.id, { limit: 2, order: 'asc' }))
      all.push(text(item));
    expect(all).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    const single = await client.responses.create({ model: 'test-model', input: 'just a string' });
    const items = await client.responses.inputItems.list(single.id);
    expect(items.data).toEqual([
      {
        id: expect.stringMatching(/^msg_/),
        type: 'message',
        role: 'user',
        content: [{ type: 'input_text', text: 'just a string' }],
        status: 'completed',
      },
    ]);
    const bad = await ferry.fetch(`/v1/responses/${single.id}/input_items?limit=101`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('limit');
    const withInclude = await ferry.fetch(
      `/v1/responses/${single.id}/input_items?include[]=message.input_image.image_url&include[]=reasoning.encrypted_content`,
    );
    expect(withInclude.status).toBe(200);
  });

  it('chains with previous_response_id across three turns without inheriting instructions (119–122)', async () => {
    const one = await client.responses.create({
      model: 'test-model',
      input: 'The code word is PELICAN.',
      instructions: 'Only turn one.',
    });
    const two = await client.responses.create({
      model: 'test-model',
      input: 'Remember it.',
      previous_response_id: one.id,
    });
    const three = await client.responses.create({
      model: 'test-model',
      input: 'What was it?',
      previous_response_id: two.id,
    });
    expect(three.previous_response_id).toBe(two.id);
    const sent = sentMessages(fake);
    expect(sent.map((message) => [message.role, messageText(message)])).toEqual([
      ['user', 'The code word is PELICAN.'],
      ['assistant', 'Echo: The code word is PELICAN.'],
      ['user', 'Remember it.'],
      ['assistant', 'Echo: Remember it.'],
      ['user', 'What was it?'],
    ]);
    expect(three.instructions).toBeNull();
    expect(three.usage!.input_tokens).toBeGreaterThan(one.usage!.input_tokens);
  });

  it('refuses to chain onto unknown or unstored responses (40, 118)', async () => {
    const unstored = await client.responses.create({ model: 'test-model', input: 'x', store: false });
    expect((unstored as unknown as { store: boolean }).store).toBe(false);
    await expect(client.responses.retrieve(unstored.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    for (const id of [unstored.id, 'resp_doesnotexist']) {
      const error = await client.responses
        .create({ model: 'test-model', input: 'y', previous_response_id: id })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as APIError).code).toBe('previous_response_not_found');
      expect((error as APIError).param).toBe('previous_response_id');
      expect((error as APIError).requestID).toMatch(/^req_/);
    }
  });

  it('rejects re-sending an item already in the chain (42)', async () => {
    const one = await client.responses.create({ model: 'test-model', input: 'a' });
    const error = await client.responses
      .create({
        model: 'test-model',
        previous_response_id: one.id,
        input: one.output as OpenAI.Responses.ResponseInputItem[],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as APIError).param).toBe('input');
    expect((error as APIError).message).toMatch(/Duplicate item/);
  });

  it('resolves item_reference from the store, and 404s an unknown one (55)', async () => {
    const one = await client.responses.create({ model: 'test-model', input: 'ref me' });
    const messageId = one.output[0]!.id!;
    await client.responses.create({
      model: 'test-model',
      input: [
        { role: 'user', content: 'q' },
        { type: 'item_reference', id: messageId },
        { role: 'user', content: 'again' },
      ],
    });
    expect(sentMessages(fake).map((message) => messageText(message))).toEqual(['q', 'Echo: ref me', 'again']);
    const error = await client.responses
      .create({ model: 'test-model', input: [{ type: 'item_reference', id: 'msg_missing' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('ends incomplete when max_output_tokens is exhausted, streamed and blocking (72, 101)', async () => {
    fake.setHandler(() => ({
      steps: [{ type: 'text', text: 'a long story that gets cut' }],
      finish: 'length',
    }));
    const blocking = await client.responses.create({
      model: 'test-model',
      input: 'story',
      max_output_tokens: 16,
    });
    expect(blocking).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      completed_at: null,
    });
    expect(blocking.output[0]).toMatchObject({ status: 'incomplete' });
    const body = fake.requests.at(-1)!.body as Record<string, unknown>;
    if (kind === 'ollama') expect((body.options as Record<string, unknown>).num_predict).toBe(16);
    else expect(body.max_tokens).toBe(16);
    const streamed = await captureSse(
      await postJson(ferry, '/v1/responses', {
        model: 'test-model',
        input: 's',
        stream: true,
        max_output_tokens: 16,
      }),
    );
    const checked = checkStream(streamed.frames.map((frame) => frame.data));
    expect(checked.terminalType).toBe('response.incomplete');
  });

  it('turns a mid-stream backend failure into error + response.failed (98)', async () => {
    fake.setHandler(() => ({
      steps: [
        { type: 'text', text: 'partial answer' },
        { type: 'error', message: 'model crashed' },
      ],
    }));
    const capture = await captureSse(
      await postJson(ferry, '/v1/responses', { model: 'test-model', input: 'x', stream: true }),
    );
    const checked = checkStream(capture.frames.map((frame) => frame.data));
    expect(checked.terminalType).toBe('response.failed');
    expect(JSON.stringify(checked.final.error)).toMatch(/model crashed/);
    const stored = await client.responses.retrieve(checked.final.id as string);
    expect(stored.status).toBe('failed');
    expect(stored.output[0]).toMatchObject({ status: 'incomplete', content: [{ text: 'partial answer' }] });
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'partial' }, { type: 'drop' }] }));
    const dropped = await captureSse(
      await postJson(ferry, '/v1/responses', { model: 'test-model', input: 'x', stream: true }),
    );
    expect(checkStream(dropped.frames.map((frame) => frame.data)).terminalType).toBe('response.failed');
  });

  it('maps backend refusals before the first byte to plain HTTP errors (36, 100)', async () => {
    fake.enqueue({
      steps: [],
      status: 404,
      errorBody:
        kind === 'ollama'
          ? { error: "model 'nope' not found" }
          : { error: { message: 'model not found', type: 'invalid_request_error', code: 404 } },
    });
    const missing = await client.responses
      .create({ model: 'nope', input: 'x', stream: true })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as APIError).code).toBe('model_not_found');
    fake.enqueue({
      steps: [],
      status: 503,
      errorBody:
        kind === 'ollama'
          ? { error: 'server busy, please try again.  maximum pending requests exceeded' }
          : { error: { message: 'busy' } },
    });
    const busy = await postJson(ferry, '/v1/responses', { model: 'test-model', input: 'x' });
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBeTruthy();
    expect(((await busy.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'backend_overloaded',
      message: expect.stringContaining('local'),
    });
  });

  it('aborts the backend request when a streaming client disconnects, and stores it cancelled (105)', async () => {
    fake.setHandler(() => ({
      steps: [{ type: 'text', text: 'slow words keep coming here' }],
      chunkDelayMs: 200,
    }));
    const response = await postJson(ferry, '/v1/responses', {
      model: 'test-model',
      input: 'x',
      stream: true,
    });
    const reader = response.body!.getReader();
    let seen = '';
    while (!seen.includes('response.output_text.delta'))
      seen += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(seen)![1]!;
    const aborted = await fake.waitForAbort(5_000);
    expect(aborted.aborted).toBe(true);
    let stored = await client.responses.retrieve(id).catch(() => undefined);
    for (let i = 0; i < 100 && !stored; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      stored = await client.responses.retrieve(id).catch(() => undefined);
    }
    expect(stored).toMatchObject({ status: 'cancelled' });
    expect(stored!.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
  });

  it('keeps a caller-given x-request-id and adds one otherwise (46)', async () => {
    const given = await ferry.fetch('/v1/models', { headers: { 'x-request-id': 'my-trace-123' } });
    expect(given.headers.get('x-request-id')).toBe('my-trace-123');
    const error = await ferry.fetch('/v1/responses/resp_nope');
    expect(error.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
  });

  it('refuses an input over the context window with truncation disabled, and drops old turns with auto (6.5)', async () => {
    const long = Array.from({ length: 12 }, (_, i) => ({
      role: 'user' as const,
      content: `${'word '.repeat(30)}${i}`,
    }));
    const refused = await client.responses
      .create({ model: 'small-window', input: long })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as APIError).code).toBe('context_length_exceeded');
    const truncated = await client.responses.create({
      model: 'small-window',
      input: long,
      truncation: 'auto',
    });
    expect(truncated.truncation).toBe('auto');
    const sent = sentMessages(fake);
    expect(sent.length).toBeLessThan(12);
    expect(messageText(sent.at(-1)!)).toMatch(/11$/);
  });
});

function lastUserText(body: Record<string, unknown>): string {
  const messages = (body.messages as { role: string; content: unknown }[]) ?? [];
  const last = [...messages].reverse().find((message) => message.role === 'user');
  return last ? messageText(last) : '';
}

function text(item: OpenAI.Responses.ResponseItem): string {
  return 'content' in item && Array.isArray(item.content) ? (item.content[0] as { text: string }).text : '';
}
