import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, startFake } from '../support/backends.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend, Scenario } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';

type Response = OpenAI.Responses.Response;

const WORDS = 'one two three four five six seven eight';
const slow = (delay = 40): Scenario => ({ steps: [{ type: 'text', text: WORDS }], chunkDelayMs: delay });

/** Polls until the response leaves queued/in_progress (bounded). */
async function settle(client: OpenAI, id: string, timeoutMs = 10_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await client.responses.retrieve(id);
    if (!['queued', 'in_progress'].includes(response.status!)) return response;
    if (Date.now() > deadline) throw new Error(`response ${id} is still ${response.status}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(BACKEND_KINDS)('background responses over %s', (kind) => {
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

  it('returns queued at once and polls to completion (106, 107)', async () => {
    fake.setHandler(() => slow());
    const queued = await client.responses.create({ model: 'test-model', input: 'go', background: true });
    expect(queued).toMatchObject({ status: 'queued', background: true, output: [], usage: null });
    const done = await settle(client, queued.id);
    expect(done.status).toBe('completed');
    expect(done.output_text).toBe(WORDS);
    expect(done.usage!.output_tokens).toBeGreaterThan(0);
    const items = await client.responses.inputItems.list(queued.id);
    expect(items.data).toHaveLength(1);
  });

  it('refuses background with store=false', async () => {
    const error = await client.responses
      .create({ model: 'test-model', input: 'x', background: true, store: false })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe('store');
  });

  it('cancels a running response: partial output kept, backend aborted, cancelled stays (108)', async () => {
    fake.setHandler(() => slow(150));
    const before = fake.requests.length;
    const queued = await client.responses.create({ model: 'test-model', input: 'long', background: true });
    await waitFor(() => fake.requests.length > before, 'the backend request');
    await waitFor(
      async () => (await client.responses.retrieve(queued.id)).status === 'in_progress',
      'in_progress',
    );
    await new Promise((resolve) => setTimeout(resolve, 400));
    const cancelled = await client.responses.cancel(queued.id);
    expect(cancelled.status).toBe('cancelled');
    const aborted = await fake.waitForAbort(5_000);
    expect(aborted.aborted).toBe(true);
    // The SDK adds output_text to create/retrieve results only.
    const text = (await client.responses.retrieve(queued.id)).output_text;
    expect(text.length).toBeGreaterThan(0);
    expect(WORDS.startsWith(text)).toBe(true);
    expect(text).not.toBe(WORDS);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await client.responses.retrieve(queued.id)).status).toBe('cancelled');
    // Cancelling again returns it unchanged (109).
    const again = await (await ferry.fetch(`/v1/responses/${queued.id}/cancel`, { method: 'POST' })).json();
    expect(again).toEqual(await (await ferry.fetch(`/v1/responses/${queued.id}`)).json());
  });

  it('returns a finished background response unchanged when it is cancelled (109)', async () => {
    fake.setHandler(() => slow(1));
    const queued = await client.responses.create({
      model: 'test-model',
      input: 'done soon',
      background: true,
    });
    const done = await settle(client, queued.id);
    expect(done.status).toBe('completed');
    const stored = (await (await ferry.fetch(`/v1/responses/${queued.id}`)).json()) as Response;
    for (let attempt = 0; attempt < 2; attempt++) {
      const cancel = await ferry.fetch(`/v1/responses/${queued.id}/cancel`, { method: 'POST' });
      expect(cancel.status).toBe(200);
      expect(await cancel.json()).toEqual(stored);
    }
    const cancelled = await client.responses.cancel(queued.id);
    expect(cancelled).toMatchObject({ id: queued.id, status: 'completed', output: stored.output });
    expect(await (await ferry.fetch(`/v1/responses/${queued.id}`)).json()).toEqual(stored);
  });

  it('streams created(queued) → queued → in_progress → … → completed, and replays it identically (112, 113)', async () => {
    fake.setHandler(() => slow(10));
    const live = await captureSse(
      await postJson(ferry, '/v1/responses', {
        model: 'test-model',
        input: 'stream me',
        background: true,
        stream: true,
      }),
    );
    const events = live.frames.map((frame) => frame.data);
    const checked = checkStream(events, { background: true });
    expect(checked.terminalType).toBe('response.completed');
    expect(checked.text).toBe(WORDS);
    expect((events[2] as { type: string }).type).toBe('response.in_progress');
    const id = checked.final.id as string;
    const replay = await captureSse(await ferry.fetch(`/v1/responses/${id}?stream=true`));
    expect(replay.frames.map((frame) => frame.raw)).toEqual(live.frames.map((frame) => frame.raw));
    const tail = await captureSse(await ferry.fetch(`/v1/responses/${id}?stream=true&starting_after=5`));
    expect(tail.frames.map((frame) => (frame.data as { sequence_number: number }).sequence_number)).toEqual(
      events.slice(6).map((event) => (event as { sequence_number: number }).sequence_number),
    );
    checkStream(
      tail.frames.map((frame) => frame.data),
      { startsAfter: 5 },
    );
  });

  it('keeps running when the client drops the stream, and resumes with responses.stream({response_id, starting_after}) mid-way and after the end (114–116)', async () => {
    fake.setHandler(() => slow(60));
    const response = await postJson(ferry, '/v1/responses', {
      model: 'test-model',
      input: 'resume me',
      background: true,
      stream: true,
    });
    // Read a few events, then drop the connection: the response goes on (116).
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('response.output_text.delta')) seen += decoder.decode((await reader.read()).value);
    await reader.cancel();
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(seen)![1]!;
    const lastSeen = Math.max(
      ...[...seen.matchAll(/"sequence_number":(\d+)/g)].map((match) => Number(match[1])),
    );

    const deltas: string[] = [];
    const resumed = client.responses.stream({ response_id: id, starting_after: lastSeen });
    resumed.on('response.output_text.delta', (event) => deltas.push(event.delta));
    const final = await resumed.finalResponse();
    expect(final.status).toBe('completed');
    expect(final.output_text).toBe(WORDS);
    expect(deltas.length).toBeGreaterThan(0);
    expect(WORDS.endsWith(deltas.join('').trimStart())).toBe(true);

    const after = await client.responses.stream({ response_id: id, starting_after: 0 }).finalResponse();
    expect(after.output_text).toBe(WORDS);
    expect(fake.requests.at(-1)!.aborted).toBe(false);
  });

  it('rejects a stream request for a response without an event log (117)', async () => {
    fake.setHandler(() => slow(1));
    const plain = await client.responses.create({ model: 'test-model', input: 'x', background: true });
    await settle(client, plain.id);
    const response = await ferry.fetch(`/v1/responses/${plain.id}?stream=true`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe('stream');
  });

  it('deletes a background response with its event log and job', async () => {
    fake.setHandler(() => slow(1));
    const live = await captureSse(
      await postJson(ferry, '/v1/responses', {
        model: 'test-model',
        input: 'x',
        background: true,
        stream: true,
      }),
    );
    const id = checkStream(
      live.frames.map((frame) => frame.data),
      { background: true },
    ).final.id as string;
    expect(await ferry.app.context.store.hasEvents(id)).toBe(true);
    await client.responses.delete(id);
    expect(await ferry.app.context.store.hasEvents(id)).toBe(false);
    expect((await ferry.fetch(`/v1/responses/${id}?stream=true`)).status).toBe(404);
  });

  it('fails a background response the backend refuses, with the reason', async () => {
    fake.enqueue({
      steps: [],
      status: 404,
      errorBody:
        kind === 'ollama' ? { error: "model 'gone' not found" } : { error: { message: 'not found' } },
    });
    const queued = await client.responses.create({ model: 'test-model', input: 'x', background: true });
    const done = await settle(client, queued.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'model_not_found' });
  });
});

describe('background queueing', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    fake = await startFake('ollama');
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      background: { concurrency: 1 },
      // Concurrency is per replica: these tests are about one replica's queue.
      instances: 1,
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  it('runs at most `concurrency` jobs per backend, the rest in order', async () => {
    fake.setHandler(() => slow(20));
    const ids: string[] = [];
    for (const input of ['first', 'second', 'third']) {
      ids.push((await ferry.client.responses.create({ model: 'm', input, background: true })).id);
    }
    const done = await Promise.all(ids.map((id) => settle(ferry.client, id)));
    expect(done.map((response) => response.status)).toEqual(['completed', 'completed', 'completed']);
    const chats = fake.requests.filter((request) => request.path === '/api/chat').slice(-3);
    expect(chats.map((request) => (request.body.messages as { content: string }[])[0]!.content)).toEqual([
      'first',
      'second',
      'third',
    ]);
    // One at a time: each request started only after the previous one had completed.
    for (let i = 1; i < chats.length; i++) expect(chats[i - 1]!.completed).toBe(true);
  });

  it('cancels a queued response before it reaches the backend (108)', async () => {
    fake.setHandler(() => slow(100));
    const running = await ferry.client.responses.create({ model: 'm', input: 'blocker', background: true });
    const waiting = await ferry.client.responses.create({
      model: 'm',
      input: 'never runs',
      background: true,
    });
    const cancelled = await ferry.client.responses.cancel(waiting.id);
    expect(cancelled).toMatchObject({ status: 'cancelled', output: [], usage: null });
    await settle(ferry.client, running.id);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fake.requests.some((request) => JSON.stringify(request.body).includes('never runs'))).toBe(false);
    expect((await ferry.client.responses.retrieve(waiting.id)).status).toBe('cancelled');
  });

  it('ends the event stream of a cancelled queued response with response.failed (status cancelled)', async () => {
    fake.setHandler(() => slow(100));
    const blocker = await ferry.client.responses.create({ model: 'm', input: 'blocker', background: true });
    const response = await postJson(ferry, '/v1/responses', {
      model: 'm',
      input: 'x',
      background: true,
      stream: true,
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!/"id":"resp_/.test(text)) text += decoder.decode((await reader.read()).value, { stream: true });
    const id = /"id":"(resp_[0-9a-f]+)"/.exec(text)![1]!;
    await ferry.client.responses.cancel(id);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = text
      .split('\n\n')
      .filter((block) => block.includes('data: '))
      .map((block) => JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { type: string });
    const checked = checkStream(events, { background: true });
    expect(checked.terminalType).toBe('response.failed');
    expect(checked.final).toMatchObject({ status: 'cancelled', error: null, output: [] });
    await settle(ferry.client, blocker.id);
  });
});
