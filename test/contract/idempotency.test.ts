import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';

const chats = (fake: FakeBackend) => fake.requests.filter((request) => request.path === '/api/chat').length;

describe('Idempotency-Key', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      apiKeys: { 'sk-tenant-one': 'one', 'sk-tenant-two': 'two' },
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  const post = (body: unknown, key: string, apiKey = 'sk-tenant-one') =>
    postJson(ferry, '/v1/responses', body, { 'idempotency-key': key, authorization: `Bearer ${apiKey}` });

  it('runs two concurrent identical requests once and gives both the same response', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'only once' }], chunkDelayMs: 50 }));
    const before = chats(fake);
    const body = { model: 'm', input: 'charge the card' };
    const [a, b] = await Promise.all([post(body, 'key-concurrent'), post(body, 'key-concurrent')]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    const [first, second] = (await Promise.all([a.json(), b.json()])) as { id: string }[];
    expect(second).toEqual(first);
    expect(chats(fake) - before).toBe(1);
    expect([a.headers.get('idempotent-replayed'), b.headers.get('idempotent-replayed')]).toContain('true');
  });

  it('refuses the same key with a different body with a 422', async () => {
    await post({ model: 'm', input: 'one thing' }, 'key-mismatch');
    const other = await post({ model: 'm', input: 'another thing' }, 'key-mismatch');
    expect(other.status).toBe(422);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('idempotency_key_reused');
  });

  it('keeps keys per tenant', async () => {
    const before = chats(fake);
    const body = { model: 'm', input: 'per tenant' };
    const one = (await (await post(body, 'key-shared-name', 'sk-tenant-one')).json()) as { id: string };
    const two = (await (await post(body, 'key-shared-name', 'sk-tenant-two')).json()) as { id: string };
    expect(two.id).not.toBe(one.id);
    expect(chats(fake) - before).toBe(2);
  });

  it('replays a stream byte for byte, also while the first one is still running', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'streamed exactly once' }], chunkDelayMs: 40 }));
    const before = chats(fake);
    const body = { model: 'm', input: 'stream it', stream: true };
    const first = post(body, 'key-stream');
    await new Promise((resolve) => setTimeout(resolve, 60));
    const [live, retried] = await Promise.all([
      first.then((r) => captureSse(r)),
      post(body, 'key-stream').then((r) => captureSse(r)),
    ]);
    checkStream(live.frames.map((frame) => frame.data));
    expect(retried.frames.map((frame) => frame.raw)).toEqual(live.frames.map((frame) => frame.raw));
    expect(chats(fake) - before).toBe(1);
  });

  it('remembers a client error, but lets a retry through after a backend failure', async () => {
    fake.enqueue({ steps: [], status: 404, errorBody: { error: "model 'nope' not found" } });
    const before = chats(fake);
    const missing = await post({ model: 'nope', input: 'x' }, 'key-404');
    expect(missing.status).toBe(404);
    const again = await post({ model: 'nope', input: 'x' }, 'key-404');
    expect(again.status).toBe(404);
    expect(chats(fake) - before).toBe(1);

    fake.enqueue({ steps: [], status: 503, errorBody: { error: 'busy' } });
    const busy = await post({ model: 'm', input: 'retry me' }, 'key-503');
    expect(busy.status).toBe(503);
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'now it works' }] }));
    const ok = await post({ model: 'm', input: 'retry me' }, 'key-503');
    expect(ok.status).toBe(200);
  });

  it('gives a background request the same response, and survives a restart', async () => {
    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'durable' }] }));
    const body = { model: 'm', input: 'in the background', background: true };
    const first = (await (await post(body, 'key-background')).json()) as { id: string };
    const second = (await (await post(body, 'key-background')).json()) as { id: string };
    expect(second.id).toBe(first.id);

    const blocking = { model: 'm', input: 'before the restart' };
    const original = await (await post(blocking, 'key-restart')).json();
    await ferry.restart();
    const before = chats(fake);
    const replayed = await post(blocking, 'key-restart');
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await replayed.json()).toEqual(original);
    expect(chats(fake)).toBe(before);
  });

  it('refuses a malformed key', async () => {
    const response = await post({ model: 'm', input: 'x' }, 'k'.repeat(300));
    expect(response.status).toBe(400);
  });
});
