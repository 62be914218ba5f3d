import type { APIError } from 'openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startFakeOpenAIChat } from '../support/fake-openai-chat.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

describe('models and routing across several backends', () => {
  let ollama: FakeBackend;
  let vllm: FakeBackend;
  let spare: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    ollama = await startFakeOllama({ models: ['llama3.1:latest', 'qwen3:8b'] });
    vllm = await startFakeOpenAIChat({ models: ['openai/gpt-oss-20b'] });
    spare = await startFakeOllama({ models: ['pinned'] });
    ferry = await startFerry({
      backends: [
        { name: 'ollama', kind: 'ollama', url: ollama.url },
        { name: 'vllm', kind: 'openai-chat', url: vllm.url },
        { name: 'down', kind: 'ollama', url: 'http://127.0.0.1:9' },
        { name: 'spare', kind: 'ollama', url: spare.url },
      ],
      models: {
        big: {
          upstreamModel: 'qwen3:8b',
          contextWindow: 32768,
          backends: ['ollama'],
          options: { top_k: 20 },
        },
        pinned: { backends: ['down', 'spare'] },
      },
    });
  });
  afterAll(async () => {
    await ferry.close();
    await Promise.all([ollama.close(), vllm.close(), spare.close()]);
  });

  it('lists every backend model and the configured aliases (31)', async () => {
    const list = await ferry.client.models.list();
    const ids = list.data.map((model) => model.id);
    expect(ids).toEqual(
      expect.arrayContaining(['llama3.1:latest', 'qwen3:8b', 'openai/gpt-oss-20b', 'big', 'pinned']),
    );
    for (const model of list.data) {
      expect(model).toMatchObject({
        object: 'model',
        created: expect.any(Number),
        owned_by: expect.any(String),
      });
    }
  });

  it('retrieves one model, with slashes in its id, and 404s unknown ones (32)', async () => {
    expect(await ferry.client.models.retrieve('openai/gpt-oss-20b')).toMatchObject({
      id: 'openai/gpt-oss-20b',
      owned_by: 'vllm',
    });
    const error = await ferry.client.models.retrieve('no-such-model').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as APIError).code).toBe('model_not_found');
  });

  it('routes each model to the backend that serves it, matching Ollama :latest tags', async () => {
    await ferry.client.responses.create({ model: 'llama3.1', input: 'hi' });
    expect(ollama.requests.at(-1)!.body.model).toBe('llama3.1');
    await ferry.client.responses.create({ model: 'openai/gpt-oss-20b', input: 'hi' });
    expect(vllm.requests.at(-1)!.body.model).toBe('openai/gpt-oss-20b');
    // No reachable backend lists it, and one backend cannot be asked: that one might serve it.
    const error = await ferry.client.responses
      .create({ model: 'unheard-of', input: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as APIError).status).toBe(503);
    expect((error as APIError).message).toContain("'down'");
  });

  it('applies a model alias: upstream name, context window as num_ctx, and options', async () => {
    const response = await ferry.client.responses.create({ model: 'big', input: 'hi' });
    expect(response.model).toBe('big');
    const sent = ollama.requests.at(-1)!.body;
    expect(sent.model).toBe('qwen3:8b');
    expect(sent.options).toMatchObject({ num_ctx: 32768, top_k: 20 });
  });

  it('sends the default context window when a model has none configured', async () => {
    await ferry.client.responses.create({ model: 'qwen3:8b', input: 'hi' });
    expect((ollama.requests.at(-1)!.body.options as { num_ctx: number }).num_ctx).toBe(8192);
  });

  it('fails over to the next backend when the first cannot be reached', async () => {
    const response = await ferry.client.responses.create({ model: 'pinned', input: 'hi' });
    expect(response.status).toBe('completed');
    expect(spare.requests.at(-1)!.body.model).toBe('pinned');
    const ready = (await (await ferry.fetch('/readyz')).json()) as {
      status: string;
      backends: { name: string; ok: boolean }[];
    };
    expect(ready.status).toBe('ready');
    expect(ready.backends.find((backend) => backend.name === 'down')!.ok).toBe(false);
    expect(ready.backends.find((backend) => backend.name === 'vllm')!.ok).toBe(true);
  });
});

describe('an unknown model when every backend can be asked', () => {
  it('is a 404 model_not_found without calling any backend (36)', async () => {
    const a = await startFakeOllama({ models: ['a'] });
    const b = await startFakeOpenAIChat({ models: ['b'] });
    const ferry = await startFerry({
      backends: [
        { name: 'a', kind: 'ollama', url: a.url },
        { name: 'b', kind: 'openai-chat', url: b.url },
      ],
    });
    try {
      const error = await ferry.client.responses.create({ model: 'c', input: 'x' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.NotFoundError);
      expect((error as APIError).code).toBe('model_not_found');
      expect([...a.requests, ...b.requests].some((request) => request.method === 'POST')).toBe(false);
    } finally {
      await ferry.close();
      await Promise.all([a.close(), b.close()]);
    }
  });
});
