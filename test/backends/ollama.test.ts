import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../src/backends/errors.js';
import { OllamaBackend } from '../../src/backends/ollama/driver.js';
import type { BackendPart } from '../../src/backends/types.js';
import type { UpstreamOptions } from '../../src/backends/upstream.js';
import { chatRequest, rejectionOf, runChat, summarizeParts } from '../support/backend-parts.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startReplayServer } from '../support/replay-server.js';
import { echoScenario, type FakeBackend } from '../support/scenario.js';

const OPTIONS: UpstreamOptions = {
  connections: 4,
  timeouts: { connectMs: 1000, firstByteMs: 5000, idleMs: 5000, requestMs: 5000 },
};

let fake: FakeBackend;
let backend: OllamaBackend;
/** Backends a single test made with other options; closed after it. */
const extraBackends: OllamaBackend[] = [];

beforeAll(async () => {
  fake = await startFakeOllama({ models: ['test-model', 'llama3.1:latest'] });
  backend = new OllamaBackend('local', fake.url, OPTIONS);
});

afterEach(async () => {
  fake.setHandler(echoScenario);
  await Promise.all(extraBackends.splice(0).map((extra) => extra.close()));
});

afterAll(async () => {
  await backend?.close();
  await fake?.close();
});

function backendWith(timeouts: Partial<UpstreamOptions['timeouts']>, url = fake.url): OllamaBackend {
  const made = new OllamaBackend('local', url, {
    ...OPTIONS,
    timeouts: { ...OPTIONS.timeouts, ...timeouts },
  });
  extraBackends.push(made);
  return made;
}

/** The body of the last `/api/chat` request the fake received. */
function sentBody(): Record<string, unknown> {
  const request = fake.requests.filter((entry) => entry.path === '/api/chat').at(-1);
  if (!request) throw new Error('no /api/chat request was received');
  return request.body;
}

async function backendError(promise: Promise<unknown>): Promise<BackendError> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
}

describe('OllamaBackend streaming', () => {
  it('streams text as several text deltas and finishes with stop and usage', async () => {
    const result = await runChat(backend, chatRequest());
    expect(result.text).toBe('Echo: Hello there');
    expect(result.parts.filter((part) => part.type === 'text-delta').length).toBeGreaterThan(1);
    expect(result.finish).toBe('stop');
    expect(result.usage?.inputTokens).toBeGreaterThan(0);
    expect(result.parts.at(-1)).toEqual({ type: 'finish', reason: 'stop' });
    expect(sentBody().stream).toBe(true);
  });

  it('turns thinking lines into reasoning deltas ahead of the answer', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'The user greets me.' },
        { type: 'text', text: 'Hi!' },
      ],
    });
    const result = await runChat(backend, chatRequest());
    expect(result.reasoning).toBe('The user greets me.');
    expect(result.text).toBe('Hi!');
    const firstText = result.parts.findIndex((part) => part.type === 'text-delta');
    const lastReasoning = result.parts.findLastIndex((part) => part.type === 'reasoning-delta');
    expect(lastReasoning).toBeLessThan(firstText);
  });

  it('turns a whole tool-call line into tool-call parts with JSON text and finish tool_calls', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'Two lookups.' },
        { type: 'tool_call', name: 'weather', arguments: { city: 'Paris', units: 'metric' } },
        { type: 'tool_call', name: 'time', arguments: '{"zone":"CET"}' },
      ],
    });
    const result = await runChat(backend, chatRequest());
    const calls = result.parts.filter((part) => part.type === 'tool-call');
    expect(calls.map((call) => call.name)).toEqual(['weather', 'time']);
    expect(new Set(calls.map((call) => call.key)).size).toBe(2);
    expect(JSON.parse(calls[0]!.arguments)).toEqual({ city: 'Paris', units: 'metric' });
    expect(JSON.parse(calls[1]!.arguments)).toEqual({ zone: 'CET' });
    expect(result.finish).toBe('tool_calls');
  });

  it('maps done_reason "length" to finish length', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'a story that gets' }], finish: 'length' });
    expect((await runChat(backend, chatRequest())).finish).toBe('length');
  });

  it('reports prompt_eval_count and eval_count as usage', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'ok' }], usage: { input: 123, output: 45 } });
    const result = await runChat(backend, chatRequest());
    expect(result.usage).toEqual({ inputTokens: 123, outputTokens: 45 });
    expect(result.parts.at(-2)).toEqual({ type: 'usage', usage: { inputTokens: 123, outputTokens: 45 } });
  });

  it('keeps text split across small chunks with multi-byte characters intact', async () => {
    const text = 'Olá — 日本語 🎉 done';
    fake.enqueue({ steps: [{ type: 'text', text }], chunkSize: 1 });
    expect((await runChat(backend, chatRequest())).text).toBe(text);
  });

  it('rejects with upstream_error on a mid-stream error line, after the text before it', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'partial answer' },
        { type: 'error', message: 'an error was encountered while running the model: unexpected EOF' },
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
    expect(error.message).toContain('unexpected EOF');
    expect(summarizeParts(parts).text).toBe('partial answer');
  });

  it('rejects with a BackendError when the connection drops mid-stream', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'partial' }, { type: 'drop' }] });
    const error = await backendError(runChat(backend, chatRequest()));
    expect(error.kind).toBe('upstream_error');
  });

  it('rejects with a BackendError when the connection drops before any byte', async () => {
    fake.enqueue({ steps: [{ type: 'drop' }] }, { steps: [{ type: 'drop' }] });
    await backendError(runChat(backend, chatRequest({ stream: false })));
    await backendError(runChat(backend, chatRequest()));
  });
});

describe('OllamaBackend connections', () => {
  it('keeps a stream’s connection for the next request when the done line arrives before the body ends', async () => {
    // Stopping at the done line must not tear the connection down (nor build an AbortError).
    const lines = [
      { model: 'm', message: { role: 'assistant', content: 'hi' }, done: false },
      { model: 'm', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop' },
    ]
      .map((line) => `${JSON.stringify(line)}\n`)
      .join('');
    const server = await startReplayServer([
      {
        path: '/api/chat',
        contentType: 'application/x-ndjson',
        body: `${lines}\n`,
        splitAt: [lines.length],
        pieceGapMs: 30,
      },
    ]);
    try {
      const streaming = backendWith({}, server.url);
      for (let turn = 0; turn < 3; turn++) {
        expect(summarizeParts((await runChat(streaming, chatRequest())).parts).text).toBe('hi');
        await new Promise((resolve) => setTimeout(resolve, 80));
      }
      expect(server.connections).toBe(1);
    } finally {
      await server.close();
    }
  });
});

describe('OllamaBackend non-streaming', () => {
  it('maps one body with content, thinking and tool calls', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'Need the weather.' },
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_call', name: 'weather', arguments: { city: 'Paris' } },
      ],
      usage: { input: 10, output: 20 },
    });
    const result = await runChat(backend, chatRequest({ stream: false }));
    expect(sentBody().stream).toBe(false);
    expect(result.reasoning).toBe('Need the weather.');
    expect(result.text).toBe('Let me check.');
    expect(result.toolCalls).toEqual([{ name: 'weather', arguments: '{"city":"Paris"}' }]);
    expect(result.usage).toEqual({ inputTokens: 10, outputTokens: 20 });
    expect(result.finish).toBe('tool_calls');
  });

  it('answers plain text with finish stop', async () => {
    const result = await runChat(backend, chatRequest({ stream: false }));
    expect(result.text).toBe('Echo: Hello there');
    expect(result.finish).toBe('stop');
  });

  it('rejects with upstream_error when generation fails', async () => {
    fake.enqueue({ steps: [{ type: 'error', message: 'model runner crashed' }] });
    const error = await backendError(runChat(backend, chatRequest({ stream: false })));
    expect(error.kind).toBe('upstream_error');
    expect(error.status).toBe(500);
  });
});

describe('OllamaBackend errors before the first byte', () => {
  it('maps 404 to model_not_found, keeping Ollama’s message', async () => {
    fake.enqueue({ steps: [], status: 404 });
    const error = await backendError(backend.chat(chatRequest({ model: 'nope' }), AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ kind: 'model_not_found', status: 404 });
    expect(error.message).toContain("model 'nope' not found");
  });

  it('maps 503 (queue full) to overloaded', async () => {
    fake.enqueue({ steps: [], status: 503 });
    const error = await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ kind: 'overloaded', status: 503 });
  });

  it('maps the 400 context-length message to context_length_exceeded', async () => {
    fake.enqueue({ steps: [], status: 400, errorBody: 'the input length exceeds the context length' });
    const error = await backendError(backend.chat(chatRequest(), AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ kind: 'context_length_exceeded', status: 400 });
  });

  it('maps another 400 to invalid_request', async () => {
    fake.enqueue({
      steps: [],
      status: 400,
      errorBody: 'registry.ollama.ai/library/gemma3:1b does not support tools',
    });
    const error = await backendError(backend.chat(chatRequest({ stream: false }), AbortSignal.timeout(5000)));
    expect(error).toMatchObject({ kind: 'invalid_request', status: 400 });
  });

  it('maps a refused connection to unavailable', async () => {
    const refused = backendWith({}, `http://127.0.0.1:${await closedPort()}`);
    const error = await backendError(refused.chat(chatRequest(), AbortSignal.timeout(5000)));
    expect(error.kind).toBe('unavailable');
  });

  it('maps a stream that goes silent past idleMs to timeout', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'first' },
        { type: 'wait', ms: 3000 },
        { type: 'text', text: 'late' },
      ],
    });
    const started = Date.now();
    const error = await backendError(runChat(backendWith({ idleMs: 200 }), chatRequest()));
    expect(error.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('maps headers slower than firstByteMs to timeout', async () => {
    fake.enqueue({ steps: [{ type: 'text', text: 'late' }], headerDelayMs: 3000 });
    const error = await backendError(
      backendWith({ firstByteMs: 200 }).chat(chatRequest(), AbortSignal.timeout(5000)),
    );
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
    const aborted = await fake.waitForAbort(2000);
    expect(aborted).toMatchObject({ path: '/api/chat', aborted: true, completed: false });
  });
});

describe('OllamaBackend request mapping', () => {
  it('sends options, think, truncate, format, images, tools and the tool-call history', async () => {
    const image = 'data:image/png;base64,iVBORw0KGgo=';
    await runChat(
      backend,
      chatRequest({
        model: 'llama3.1',
        contextWindow: 32_768,
        allowTruncation: false,
        maxOutputTokens: 256,
        temperature: 0.2,
        topP: 0.9,
        seed: 42,
        stop: ['</s>'],
        reasoningEffort: 'high',
        responseFormat: { type: 'json_schema', name: 'answer', schema: { type: 'object' }, strict: true },
        options: { num_gpu: 1 },
        tools: [{ name: 'weather', description: 'Weather', parameters: { type: 'object' }, strict: false }],
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Weather in Paris?', images: [{ url: image }] },
          {
            role: 'assistant',
            content: '',
            reasoning: 'Need a lookup.',
            toolCalls: [{ id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
          },
          { role: 'tool', toolCallId: 'call_1', name: 'weather', content: '18 C' },
        ],
      }),
    );
    const body = sentBody();
    expect(body).toMatchObject({
      model: 'llama3.1',
      stream: true,
      think: 'high',
      truncate: false,
      format: { type: 'object' },
      options: {
        num_ctx: 32_768,
        num_predict: 256,
        temperature: 0.2,
        top_p: 0.9,
        seed: 42,
        stop: ['</s>'],
        num_gpu: 1,
      },
      tools: [
        {
          type: 'function',
          function: { name: 'weather', description: 'Weather', parameters: { type: 'object' } },
        },
      ],
    });
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Paris?', images: ['iVBORw0KGgo='] },
      {
        role: 'assistant',
        content: '',
        thinking: 'Need a lookup.',
        tool_calls: [{ id: 'call_1', function: { name: 'weather', arguments: { city: 'Paris' } } }],
      },
      { role: 'tool', content: '18 C', tool_name: 'weather', tool_call_id: 'call_1' },
    ]);
  });

  it('always sends num_ctx, and leaves unset options out', async () => {
    await runChat(backend, chatRequest({ contextWindow: 4096, allowTruncation: true }));
    const body = sentBody();
    expect(body.options).toEqual({ num_ctx: 4096 });
    expect(body.truncate).toBe(true);
    expect(body).not.toHaveProperty('think');
    expect(body).not.toHaveProperty('tools');
    expect(body).not.toHaveProperty('format');
  });

  it('maps reasoning effort none to think:false, json_object to format "json", and drops tools for tool_choice none', async () => {
    await runChat(
      backend,
      chatRequest({
        reasoningEffort: 'none',
        responseFormat: { type: 'json_object' },
        tools: [{ name: 'weather', parameters: { type: 'object' }, strict: false }],
        toolChoice: 'none',
      }),
    );
    const body = sentBody();
    expect(body.think).toBe(false);
    expect(body.format).toBe('json');
    expect(body).not.toHaveProperty('tools');
  });
});

describe('OllamaBackend listModels', () => {
  it('lists /api/tags names with their modification time', async () => {
    const models = await backend.listModels(AbortSignal.timeout(5000));
    expect(models.map((model) => model.id)).toEqual(['test-model', 'llama3.1:latest']);
    for (const model of models) {
      expect(model.ownedBy).toBe('ollama');
      expect(model.created).toBeGreaterThan(1_600_000_000);
    }
  });

  it('follows setModels', async () => {
    fake.setModels(['qwen3:8b']);
    try {
      expect((await backend.listModels()).map((model) => model.id)).toEqual(['qwen3:8b']);
    } finally {
      fake.setModels(['test-model', 'llama3.1:latest']);
    }
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
