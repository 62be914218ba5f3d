import { afterEach, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { CHAT_FLAVORS, startFakeOpenAIChat } from '../support/fake-openai-chat.js';
import type { FakeBackend } from '../support/scenario.js';

/** The fakes' own wire behaviour, which contract tests and benchmarks rely on. */

const fakes: FakeBackend[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function ollama(): Promise<FakeBackend> {
  const fake = await startFakeOllama({ models: ['llama3.1:latest'] });
  fakes.push(fake);
  return fake;
}

function post(url: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

const userMessage = [{ role: 'user', content: 'Count to 3' }];

describe('fake Ollama', () => {
  it('streams NDJSON when the request does not mention stream, ending with a done line', async () => {
    const fake = await ollama();
    fake.enqueue({ steps: [{ type: 'text', text: '1 2 3' }], finish: 'length' });
    const response = await post(`${fake.url}/api/chat`, { model: 'llama3.1', messages: userMessage });
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const body = await response.text();
    expect(body.endsWith('\n')).toBe(true);
    const lines = body
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.slice(0, -1).map((line) => (line.message as { content: string }).content)).toEqual([
      '1',
      ' 2',
      ' 3',
    ]);
    expect(lines.at(-1)).toMatchObject({
      model: 'llama3.1',
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason: 'length',
      total_duration: expect.any(Number),
      load_duration: expect.any(Number),
      prompt_eval_count: expect.any(Number),
      prompt_eval_duration: expect.any(Number),
      eval_count: expect.any(Number),
      eval_duration: expect.any(Number),
    });
  });

  it('answers stream:false with one JSON body without a trailing newline', async () => {
    const fake = await ollama();
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'hm' },
        { type: 'tool_call', name: 'f', arguments: '{"a":1}' },
      ],
    });
    const response = await post(`${fake.url}/api/chat`, { model: 'm', messages: userMessage, stream: false });
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const text = await response.text();
    expect(text.endsWith('}')).toBe(true);
    expect(JSON.parse(text)).toMatchObject({
      message: {
        content: '',
        thinking: 'hm',
        tool_calls: [{ function: { name: 'f', arguments: { a: 1 } } }],
      },
      done: true,
      done_reason: 'stop',
    });
  });

  it('reports a mid-stream failure as a last {"error"} line in a 200 stream', async () => {
    const fake = await ollama();
    fake.enqueue({
      steps: [
        { type: 'text', text: 'partial' },
        { type: 'error', message: 'unexpected EOF' },
      ],
    });
    const response = await post(`${fake.url}/api/chat`, { model: 'm', messages: userMessage });
    expect(response.status).toBe(200);
    expect((await response.text()).trimEnd().split('\n').at(-1)).toBe('{"error":"unexpected EOF"}');
  });

  it('answers a scenario status with a bare-string error body', async () => {
    const fake = await ollama();
    fake.enqueue({ steps: [], status: 404 }, { steps: [], status: 400, errorBody: 'bad' });
    const missing = await post(`${fake.url}/api/chat`, { model: 'nope', messages: userMessage });
    expect([missing.status, await missing.text()]).toEqual([404, `{"error":"model 'nope' not found"}`]);
    const bad = await post(`${fake.url}/api/chat`, { model: 'm', messages: userMessage });
    expect([bad.status, await bad.json()]).toEqual([400, { error: 'bad' }]);
  });

  it('serves /api/tags, /api/version and /api/show', async () => {
    const fake = await ollama();
    const tags = (await (await fetch(`${fake.url}/api/tags`)).json()) as {
      models: Record<string, unknown>[];
    };
    expect(tags.models).toEqual([
      expect.objectContaining({
        name: 'llama3.1:latest',
        model: 'llama3.1:latest',
        modified_at: expect.any(String),
        size: expect.any(Number),
        digest: expect.stringMatching(/^[0-9a-f]{64}$/),
        details: expect.objectContaining({ family: 'llama' }),
      }),
    ]);
    expect(await (await fetch(`${fake.url}/api/version`)).json()).toEqual({ version: '0.13.5' });
    const show = (await (await post(`${fake.url}/api/show`, { model: 'llama3.1' })).json()) as Record<
      string,
      unknown
    >;
    expect(show).toMatchObject({
      capabilities: ['completion', 'tools'],
      model_info: { 'llama.context_length': 131072 },
    });
    expect((await post(`${fake.url}/api/show`, { model: 'other' })).status).toBe(404);
  });

  it('records requests, and hands out each client abort once', async () => {
    const fake = await ollama();
    fake.enqueue({ steps: [{ type: 'text', text: 'a b c d e f' }], chunkDelayMs: 50 });
    const controller = new AbortController();
    const response = await post(
      `${fake.url}/api/chat`,
      { model: 'm', messages: userMessage },
      controller.signal,
    );
    await response.body!.getReader().read();
    controller.abort();
    expect(await fake.waitForAbort(2000)).toMatchObject({
      path: '/api/chat',
      aborted: true,
      completed: false,
    });
    await expect(fake.waitForAbort(100)).rejects.toThrow(/no aborted request/);
    await (await post(`${fake.url}/api/chat`, { model: 'm', messages: userMessage })).text();
    expect(fake.requests.at(-1)).toMatchObject({ method: 'POST', aborted: false, completed: true });
  });

  it('closes promptly while a stream is paused', async () => {
    const fake = await startFakeOllama();
    fake.enqueue({
      steps: [
        { type: 'text', text: 'a' },
        { type: 'wait', ms: 60_000 },
      ],
    });
    const response = await post(`${fake.url}/api/chat`, { model: 'm', messages: userMessage });
    const reading = response.text().catch(() => 'cut');
    const started = Date.now();
    await fake.close();
    await reading;
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe.each(CHAT_FLAVORS)('fake OpenAI-compatible server (%s)', (flavor) => {
  async function chat(): Promise<FakeBackend> {
    const fake = await startFakeOpenAIChat({ models: ['m1'], flavor });
    fakes.push(fake);
    return fake;
  }

  function events(text: string): string[] {
    return text.split('\n\n').filter(Boolean);
  }

  it('streams SSE with a usage chunk and [DONE] only when usage is asked for', async () => {
    const fake = await chat();
    fake.enqueue({ steps: [{ type: 'text', text: 'hi' }] }, { steps: [{ type: 'text', text: 'hi' }] });
    const request = { model: 'm1', messages: userMessage, stream: true };
    const withUsage = await post(`${fake.url}/chat/completions`, {
      ...request,
      stream_options: { include_usage: true },
    });
    expect(withUsage.headers.get('content-type')).toBe('text/event-stream');
    const frames = events(await withUsage.text());
    expect(frames.at(-1)).toBe('data: [DONE]');
    const usage = JSON.parse(frames.at(-2)!.slice('data: '.length)) as Record<string, unknown>;
    expect(usage).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
    const finish = JSON.parse(frames.at(-3)!.slice('data: '.length)) as {
      choices: { finish_reason: string }[];
    };
    expect(finish.choices[0]!.finish_reason).toBe('stop');

    const plain = events(await (await post(`${fake.url}/chat/completions`, request)).text());
    expect(plain.at(-1)).toBe('data: [DONE]');
    expect(plain.some((frame) => frame.includes('"usage":{'))).toBe(false);
  });

  it('sends a mid-stream error as an error data event, and statuses as OpenAI error bodies', async () => {
    const fake = await chat();
    fake.enqueue(
      { steps: [{ type: 'error', message: 'boom' }] },
      { steps: [], status: 404, errorBody: 'no model' },
    );
    const stream = await post(`${fake.url}/chat/completions`, {
      model: 'm1',
      messages: userMessage,
      stream: true,
    });
    expect(events(await stream.text()).at(-1)).toBe(
      'data: {"error":{"message":"boom","type":"server_error","code":500}}',
    );
    const missing = await post(`${fake.url}/chat/completions`, { model: 'x', messages: userMessage });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { message: 'no model', type: 'not_found_error', code: 404 },
    });
  });

  it('answers a tool call without text with content null and string arguments', async () => {
    const fake = await chat();
    fake.enqueue({ steps: [{ type: 'tool_call', name: 'f', arguments: { a: 1 }, id: 'call_x' }] });
    const body = (await (
      await post(`${fake.url}/chat/completions`, { model: 'm1', messages: userMessage })
    ).json()) as {
      choices: { message: Record<string, unknown>; finish_reason: string }[];
    };
    expect(body.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_x', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }],
      },
    });
  });

  it('lists models', async () => {
    const fake = await chat();
    expect(await (await fetch(`${fake.url}/models`)).json()).toEqual({
      object: 'list',
      data: [{ id: 'm1', object: 'model', created: expect.any(Number), owned_by: expect.any(String) }],
    });
  });
});
