import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/backends/errors.js';
import { OpenAIChatBackend } from '../../src/backends/openai-chat/driver.js';
import type { BackendPart } from '../../src/backends/types.js';
import type { UpstreamOptions } from '../../src/backends/upstream.js';
import { chatRequest, rejectionOf, runChat, summarizeParts } from '../support/backend-parts.js';
import { CHAT_FLAVORS, startFakeOpenAIChat, type ChatFlavor } from '../support/fake-openai-chat.js';
import { startReplayServer, type ReplayServer } from '../support/replay-server.js';
import { echoScenario, type FakeBackend } from '../support/scenario.js';

const OPTIONS: UpstreamOptions = {
  connections: 4,
  timeouts: { connectMs: 1000, firstByteMs: 5000, idleMs: 5000, requestMs: 5000 },
};

/** Things one test started (extra backends, replay servers); closed after it. */
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

function makeBackend(url: string, extra: Partial<UpstreamOptions['timeouts']> & { apiKey?: string } = {}) {
  const { apiKey, ...timeouts } = extra;
  const backend = new OpenAIChatBackend('chat', url, {
    ...OPTIONS,
    timeouts: { ...OPTIONS.timeouts, ...timeouts },
    apiKey,
  });
  cleanups.push(() => backend.close());
  return backend;
}

async function backendError(promise: Promise<unknown>): Promise<BackendError> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
}

function sentBody(fake: FakeBackend): Record<string, unknown> {
  const request = fake.requests.filter((entry) => entry.path === '/v1/chat/completions').at(-1);
  if (!request) throw new Error('no chat completion request was received');
  return request.body;
}

describe.each(CHAT_FLAVORS)('OpenAIChatBackend against the %s fake', (flavor: ChatFlavor) => {
  let fake: FakeBackend;
  let backend: OpenAIChatBackend;

  beforeAll(async () => {
    fake = await startFakeOpenAIChat({ models: ['test-model'], flavor });
    backend = new OpenAIChatBackend('chat', fake.url, OPTIONS);
  });

  afterEach(() => fake.setHandler(echoScenario));

  afterAll(async () => {
    await backend?.close();
    await fake?.close();
  });

  it('streams text, then usage and finish stop', async () => {
    fake.enqueue({
      steps: [{ type: 'text', text: 'Hello from the fake' }],
      usage: { input: 30, output: 12 },
    });
    const result = await runChat(backend, chatRequest());
    expect(result.text).toBe('Hello from the fake');
    expect(result.parts.filter((part) => part.type === 'text-delta').length).toBeGreaterThan(1);
    expect(result.usage).toMatchObject({ inputTokens: 30, outputTokens: 12 });
    expect(result.finish).toBe('stop');
    expect(result.parts.at(-1)).toEqual({ type: 'finish', reason: 'stop' });
  });

  it('streams reasoning as reasoning deltas before the answer', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'The user wants a greeting.' },
        { type: 'text', text: 'Olá!' },
      ],
    });
    const result = await runChat(backend, chatRequest());
    expect(result.reasoning).toBe('The user wants a greeting.');
    expect(result.text).toBe('Olá!');
    const firstText = result.parts.findIndex((part) => part.type === 'text-delta');
    expect(result.parts.findLastIndex((part) => part.type === 'reasoning-delta')).toBeLessThan(firstText);
  });

  it('reassembles streamed tool calls and finishes with tool_calls', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'Two lookups.' },
        { type: 'tool_call', name: 'weather', arguments: { location: 'Florence, Italy' } },
        { type: 'tool_call', name: 'time', arguments: '{"zone":"Europe/Rome"}' },
      ],
    });
    const result = await runChat(backend, chatRequest());
    expect(result.toolCalls.map((call) => call.name)).toEqual(['weather', 'time']);
    expect(JSON.parse(result.toolCalls[0]!.arguments)).toEqual({ location: 'Florence, Italy' });
    expect(JSON.parse(result.toolCalls[1]!.arguments)).toEqual({ zone: 'Europe/Rome' });
    expect(result.finish).toBe('tool_calls');
    const deltas = result.parts.filter((part) => part.type === 'tool-call-delta').length;
    if (flavor === 'llamacpp' || flavor === 'vllm') expect(deltas).toBeGreaterThan(2);
  });

  it('maps finish_reason length', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'cut short' }], finish: 'length' });
    expect((await runChat(backend, chatRequest())).finish).toBe('length');
  });

  it('rejects with upstream_error on a mid-stream error event', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'partial' },
        { type: 'error', message: 'CUDA out of memory' },
      ],
    });
    const parts: BackendPart[] = [];
    const stream = await backend.chat(chatRequest(), AbortSignal.timeout(5000));
    const error = await backendError(
      (async () => {
        for await (const part of stream) parts.push(part);
      })(),
    );
    expect(error.kind).toBe('upstream_error');
    expect(error.message).toContain('CUDA out of memory');
    expect(summarizeParts(parts).text).toBe('partial');
  });

  it('rejects with a BackendError when the connection drops mid-stream', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'partial' }, { type: 'drop' }] });
    expect((await backendError(runChat(backend, chatRequest()))).kind).toBe('upstream_error');
  });

  it('maps a non-streamed completion with reasoning, text and tool calls', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'Need the weather.' },
        { type: 'tool_call', name: 'weather', arguments: { city: 'Paris' } },
      ],
      usage: { input: 50, output: 7 },
    });
    const result = await runChat(backend, chatRequest({ stream: false }));
    expect(result.reasoning).toBe('Need the weather.');
    expect(result.text).toBe('');
    expect(result.toolCalls).toEqual([{ name: 'weather', arguments: '{"city":"Paris"}' }]);
    expect(result.usage).toMatchObject({ inputTokens: 50, outputTokens: 7 });
    expect(result.finish).toBe('tool_calls');
  });

  it('maps a non-streamed text completion', async () => {
    const result = await runChat(backend, chatRequest({ stream: false }));
    expect(result.text).toBe('Echo: Hello there');
    expect(result.finish).toBe('stop');
  });

  it('maps 404 to model_not_found and 503 to overloaded', async () => {
    fake.enqueue({ steps: [], status: 404, errorBody: "model 'nope' not found" }, { steps: [], status: 503 });
    const missing = await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)));
    expect(missing).toMatchObject({ kind: 'model_not_found', status: 404 });
    expect(missing.message).toContain("model 'nope' not found");
    const busy = await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)));
    expect(busy).toMatchObject({ kind: 'overloaded', status: 503 });
  });
});

describe('OpenAIChatBackend usage details', () => {
  it('reports reasoning tokens (LM Studio) and cached tokens (vLLM)', async () => {
    const usage = { input: 40, output: 20, reasoning: 8, cached: 16 };
    const lmstudio = await startFakeOpenAIChat({ flavor: 'lmstudio' });
    const vllm = await startFakeOpenAIChat({ flavor: 'vllm' });
    cleanups.push(
      () => lmstudio.close(),
      () => vllm.close(),
    );
    lmstudio.enqueue({ steps: [{ type: 'text', text: 'hi' }], usage });
    vllm.enqueue({ steps: [{ type: 'text', text: 'hi' }], usage });
    expect((await runChat(makeBackend(lmstudio.url), chatRequest())).usage).toEqual({
      inputTokens: 40,
      outputTokens: 20,
      reasoningTokens: 8,
    });
    expect((await runChat(makeBackend(vllm.url), chatRequest())).usage).toEqual({
      inputTokens: 40,
      outputTokens: 20,
      cachedTokens: 16,
    });
  });
});

describe('OpenAIChatBackend with hand-made streams', () => {
  const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm' };
  const delta = (value: Record<string, unknown>, finishReason: string | null = null) => ({
    ...base,
    choices: [{ index: 0, delta: value, finish_reason: finishReason }],
  });
  const sse = (...chunks: unknown[]) => chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join('');

  async function replay(body: string, splitAt: number[] = []): Promise<ReplayServer> {
    const server = await startReplayServer([
      { path: '/v1/chat/completions', contentType: 'text/event-stream', body, splitAt },
    ]);
    cleanups.push(() => server.close());
    return server;
  }

  it('keeps a stream’s connection for the next request when [DONE] arrives before the body ends', async () => {
    const events = `${sse(delta({ role: 'assistant', content: 'hi' }), delta({}, 'stop'))}data: [DONE]\n\n`;
    const server = await startReplayServer([
      {
        path: '/v1/chat/completions',
        contentType: 'text/event-stream',
        body: `${events}: end\n\n`,
        splitAt: [events.length],
        pieceGapMs: 30,
      },
    ]);
    cleanups.push(() => server.close());
    const streaming = makeBackend(`${server.url}/v1`);
    for (let turn = 0; turn < 3; turn++) {
      expect(summarizeParts((await runChat(streaming, chatRequest())).parts).text).toBe('hi');
      await new Promise((resolve) => setTimeout(resolve, 80));
    }
    expect(server.connections).toBe(1);
  });

  it('puts interleaved argument fragments of two calls back on the right calls', async () => {
    const fragment = (index: number, args: string, opening?: { id: string; name: string }) =>
      delta({
        tool_calls: [
          opening
            ? { index, id: opening.id, type: 'function', function: { name: opening.name, arguments: args } }
            : { index, function: { arguments: args } },
        ],
      });
    const body = sse(
      fragment(0, '{"ci', { id: 'a', name: 'weather' }),
      fragment(1, '', { id: 'b', name: 'time' }),
      fragment(1, '{"zone":'),
      fragment(0, 'ty":"Par'),
      fragment(1, '"CET"}'),
      fragment(0, 'is"}'),
      delta({}, 'tool_calls'),
    );
    const server = await replay(`${body}data: [DONE]\n\n`, [7, 300, 301]);
    const result = await runChat(makeBackend(`${server.url}/v1`), chatRequest());
    expect(result.toolCalls).toEqual([
      { name: 'weather', arguments: '{"city":"Paris"}' },
      { name: 'time', arguments: '{"zone":"CET"}' },
    ]);
    expect(result.finish).toBe('tool_calls');
  });

  it('accepts usage inside the finishing chunk and no [DONE] (llama-box)', async () => {
    const finishing = {
      ...delta({ content: '' }, 'stop'),
      usage: { prompt_tokens: 15, completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 4 } },
    };
    const server = await replay(
      sse(
        { ...delta({ reasoning_content: 'hmm' }), usage: null },
        { ...delta({ content: '1 2 3' }), usage: null },
        finishing,
      ),
    );
    const result = await runChat(makeBackend(`${server.url}/v1`), chatRequest());
    expect(result).toMatchObject({ reasoning: 'hmm', text: '1 2 3', finish: 'stop' });
    expect(result.usage).toEqual({ inputTokens: 15, outputTokens: 9, reasoningTokens: 4 });
  });

  it('says tool_calls when an old Ollama sends finish_reason stop after a whole tool call', async () => {
    const call = { id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"value":[1,2]}' } };
    const server = await replay(
      sse(
        delta({ role: 'assistant', content: '', tool_calls: [call] }),
        delta({ role: 'assistant', content: '' }, 'stop'),
      ) + 'data: [DONE]\n\n',
    );
    const result = await runChat(makeBackend(`${server.url}/v1`), chatRequest());
    expect(result.toolCalls).toEqual([{ name: 'f', arguments: '{"value":[1,2]}' }]);
    expect(result.finish).toBe('tool_calls');
  });

  it('rejects a stream that ends without a finish reason, with or without [DONE]', async () => {
    const unfinished = sse(delta({ role: 'assistant', content: null }), delta({ content: 'Hello' }));
    for (const body of [unfinished, `${unfinished}data: [DONE]\n\n`]) {
      const server = await replay(body);
      const error = await backendError(runChat(makeBackend(`${server.url}/v1`), chatRequest()));
      expect(error.kind).toBe('upstream_error');
    }
  });

  it('rejects data that is not JSON with upstream_error', async () => {
    const server = await replay('data: {"choices": [\n\n');
    expect((await backendError(runChat(makeBackend(`${server.url}/v1`), chatRequest()))).kind).toBe(
      'upstream_error',
    );
  });
});

describe('OpenAIChatBackend errors and transport', () => {
  let fake: FakeBackend;
  let backend: OpenAIChatBackend;

  beforeAll(async () => {
    fake = await startFakeOpenAIChat({ models: ['openai/gpt-oss-20b', 'qwen3'] });
    backend = new OpenAIChatBackend('chat', fake.url, OPTIONS);
  });

  afterEach(() => fake.setHandler(echoScenario));

  afterAll(async () => {
    await backend?.close();
    await fake?.close();
  });

  const exceedContext = {
    error: {
      code: 400,
      message:
        'the request exceeds the available context size. try increasing the context size or enable context shift',
      type: 'exceed_context_size_error',
      n_prompt_tokens: 14429,
      n_ctx: 8192,
    },
  };

  it.each([400, 500])(
    "maps llama.cpp's exceed_context_size_error with status %i to context_length_exceeded",
    async (status) => {
      fake.enqueue({ steps: [], status, errorBody: exceedContext });
      const error = await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)));
      expect(error).toMatchObject({ kind: 'context_length_exceeded', status });
    },
  );

  it('maps an ordinary 400 to invalid_request and a 500 to upstream_error', async () => {
    fake.enqueue(
      { steps: [], status: 400, errorBody: 'tools are not supported' },
      { steps: [], status: 500 },
    );
    expect(await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)))).toMatchObject({
      kind: 'invalid_request',
    });
    expect(await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)))).toMatchObject({
      kind: 'upstream_error',
      status: 500,
    });
  });

  it('rejects with upstream_error when a non-streamed generation fails', async () => {
    fake.enqueue({ steps: [{ type: 'error', message: 'boom' }] });
    const error = await backendError(runChat(backend, chatRequest({ stream: false })));
    expect(error).toMatchObject({ kind: 'upstream_error', status: 500 });
  });

  it('maps a refused connection to unavailable', async () => {
    const refused = makeBackend(`http://127.0.0.1:${await closedPort()}/v1`);
    expect((await backendError(refused.chat(chatRequest(), AbortSignal.timeout(5000)))).kind).toBe(
      'unavailable',
    );
  });

  it('maps a stream that goes silent past idleMs to timeout', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'first' },
        { type: 'wait', ms: 3000 },
        { type: 'text', text: 'late' },
      ],
    });
    const error = await backendError(runChat(makeBackend(fake.url, { idleMs: 200 }), chatRequest()));
    expect(error.kind).toBe('timeout');
  });

  it('aborts the upstream request when the signal fires', async () => {
    fake.enqueue({
      steps: [{ type: 'text', text: 'slow words keep coming here and here' }],
      chunkDelayMs: 100,
    });
    const controller = new AbortController();
    const stream = await backend.chat(chatRequest(), controller.signal);
    const reading = (async () => {
      for await (const part of stream) if (part.type === 'text-delta') controller.abort();
    })();
    await expect(reading).rejects.toThrow();
    expect(await fake.waitForAbort(2000)).toMatchObject({ aborted: true, completed: false });
  });

  it('adds /v1 to a URL without a path and sends the API key', async () => {
    const bare = makeBackend(fake.url.replace(/\/v1$/, ''), { apiKey: 'sk-local' });
    await runChat(bare, chatRequest());
    const request = fake.requests.at(-1)!;
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.headers.authorization).toBe('Bearer sk-local');
    expect(request.headers.accept).toBe('text/event-stream');
  });

  it('lists /v1/models', async () => {
    const models = await backend.listModels(AbortSignal.timeout(5000));
    expect(models.map((model) => model.id)).toEqual(['openai/gpt-oss-20b', 'qwen3']);
    expect(models[0]).toMatchObject({ ownedBy: 'llamacpp', created: expect.any(Number) });
  });

  it('sends usage options, limits, format, reasoning effort, tools, images and tool history', async () => {
    const image = 'data:image/png;base64,iVBORw0KGgo=';
    await runChat(
      backend,
      chatRequest({
        model: 'openai/gpt-oss-20b',
        maxOutputTokens: 512,
        temperature: 0.3,
        topP: 0.8,
        seed: 7,
        stop: ['END'],
        reasoningEffort: 'high',
        responseFormat: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true },
        tools: [{ name: 'weather', description: 'Weather', parameters: { type: 'object' }, strict: true }],
        toolChoice: { name: 'weather' },
        parallelToolCalls: false,
        options: { top_k: 40 },
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is this?', images: [{ url: image }] },
          {
            role: 'assistant',
            content: '',
            reasoning: 'Look it up.',
            toolCalls: [{ id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
          },
          { role: 'tool', toolCallId: 'call_1', name: 'weather', content: '18 C' },
        ],
      }),
    );
    const body = sentBody(fake);
    expect(body).toMatchObject({
      model: 'openai/gpt-oss-20b',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 512,
      temperature: 0.3,
      top_p: 0.8,
      seed: 7,
      stop: ['END'],
      top_k: 40,
      reasoning_effort: 'high',
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'answer', schema: { type: 'object' }, strict: true },
      },
      tools: [
        {
          type: 'function',
          function: { name: 'weather', description: 'Weather', parameters: { type: 'object' }, strict: true },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'weather' } },
      parallel_tool_calls: false,
    });
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: image } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        reasoning_content: 'Look it up.',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '18 C' },
    ]);
  });

  it('sends no stream_options when not streaming, and json_object as response_format', async () => {
    await runChat(backend, chatRequest({ stream: false, responseFormat: { type: 'json_object' } }));
    const body = sentBody(fake);
    expect(body.stream).toBe(false);
    expect(body).not.toHaveProperty('stream_options');
    expect(body).not.toHaveProperty('max_tokens');
    expect(body.response_format).toEqual({ type: 'json_object' });
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
