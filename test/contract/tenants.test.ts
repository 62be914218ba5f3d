import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/access/api-keys.js';
import { SqlApiKeyStore } from '../../src/store/api-keys.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * Two teams share one gateway. Each tries every endpoint that reads stored data with the
 * other's ids: the answer is always the same as for an id that never existed (404, or the
 * 400 `previous_response_not_found`), never a 403 that would confirm the id exists.
 */
describe('tenant isolation', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let keyA: string;
  let keyB: string;

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    fake.setHandler(() => ({
      steps: [
        { type: 'thinking', text: 'private thought' },
        { type: 'text', text: 'private answer' },
      ],
    }));
    // Team A's key is stored in the database (`ferry keys create`), team B's is in the config file.
    keyB = 'sk-config-team-b-0123456789';
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      apiKeys: { [keyB]: 'team-b' },
    });
    const created = generateKey('team-a');
    await new SqlApiKeyStore((ferry.app.context.store as SqlStore).db).create(created.record);
    keyA = created.key;
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  const clientFor = (apiKey: string) =>
    new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });
  const raw = (apiKey: string, path: string, init: RequestInit = {}) =>
    ferry.fetch(path, { ...init, headers: { authorization: `Bearer ${apiKey}`, ...init.headers } });

  async function expectSameAsUnknown(
    apiKey: string,
    path: (id: string) => string,
    foreignId: string,
    init: RequestInit = {},
  ) {
    const foreign = await raw(apiKey, path(foreignId), init);
    const unknownId = foreignId.replace(/[0-9a-f]{8}$/, '00000000');
    const unknown = await raw(apiKey, path(unknownId), init);
    expect(foreign.status, path(foreignId)).toBe(404);
    expect(unknown.status).toBe(404);
    const foreignError = ((await foreign.json()) as ErrorBody).error;
    const unknownError = ((await unknown.json()) as ErrorBody).error;
    expect(foreignError).toEqual({
      ...unknownError,
      message: unknownError.message.replace(unknownId, foreignId),
    });
    expect(JSON.stringify(foreignError)).not.toContain('private');
  }

  it('keeps stored responses, items and chains to their tenant on every endpoint', async () => {
    const a = clientFor(keyA);
    const b = clientFor(keyB);
    const mine = await a.responses.create({ model: 'm', input: 'secret of team a' });
    const reasoning = mine.output.find((item) => item.type === 'reasoning')!;
    const message = mine.output.find((item) => item.type === 'message')!;
    expect(reasoning.id).toMatch(/^rs_/);

    // Retrieve, retrieve as a stream, delete, input items, cancel: 404 like an unknown id.
    await expectSameAsUnknown(keyB, (id) => `/v1/responses/${id}`, mine.id);
    await expectSameAsUnknown(keyB, (id) => `/v1/responses/${id}?stream=true`, mine.id);
    await expectSameAsUnknown(keyB, (id) => `/v1/responses/${id}/input_items`, mine.id);
    await expectSameAsUnknown(keyB, (id) => `/v1/responses/${id}/cancel`, mine.id, { method: 'POST' });
    await expectSameAsUnknown(keyB, (id) => `/v1/responses/${id}`, mine.id, { method: 'DELETE' });

    // previous_response_id: the same 400 as an unknown response.
    const chained = await b.responses
      .create({ model: 'm', input: 'x', previous_response_id: mine.id })
      .catch((e: unknown) => e);
    expect(chained).toBeInstanceOf(OpenAI.BadRequestError);
    expect(chained).toMatchObject({ code: 'previous_response_not_found', param: 'previous_response_id' });

    // item_reference and a reasoning item sent back by id: not found, and nothing reaches the model.
    const before = fake.requests.length;
    const referenced = await b.responses
      .create({ model: 'm', input: [{ type: 'item_reference', id: message.id! }] })
      .catch((e: unknown) => e);
    expect(referenced).toBeInstanceOf(OpenAI.NotFoundError);
    const replayed = await b.responses
      .create({ model: 'm', input: [{ type: 'reasoning', id: reasoning.id, summary: [] }] })
      .catch((e: unknown) => e);
    expect(replayed).toBeInstanceOf(OpenAI.NotFoundError);
    expect(fake.requests.length).toBe(before);

    // Team A still has everything, untouched by B's attempts.
    expect((await a.responses.retrieve(mine.id)).output_text).toBe('private answer');
    const items = await a.responses.inputItems.list(mine.id);
    expect(items.data).toHaveLength(1);
    const followUp = await a.responses.create({
      model: 'm',
      input: [{ type: 'item_reference', id: message.id! }],
      previous_response_id: undefined,
    });
    expect(followUp.status).toBe('completed');
  });

  it('lets each tenant chain only onto its own responses, in both directions', async () => {
    const a = clientFor(keyA);
    const b = clientFor(keyB);
    const ofB = await b.responses.create({ model: 'm', input: 'secret of team b' });
    await expect(a.responses.retrieve(ofB.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      a.responses.create({ model: 'm', input: 'x', previous_response_id: ofB.id }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const next = await b.responses.create({ model: 'm', input: 'x', previous_response_id: ofB.id });
    expect(next.previous_response_id).toBe(ofB.id);
  });

  it('answers missing, wrong and revoked keys with the same 401 envelope, and probes without a key', async () => {
    const missing = await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' });
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as ErrorBody).error).toMatchObject({
      type: 'invalid_request_error',
      code: 'invalid_api_key',
      param: null,
    });
    const wrong = await raw('sk-ferry-not-a-real-key', '/v1/models');
    expect(wrong.status).toBe(401);
    const wrongError = ((await wrong.json()) as ErrorBody).error;

    const revoked = generateKey('team-a');
    const keys = new SqlApiKeyStore((ferry.app.context.store as SqlStore).db);
    await keys.create(revoked.record);
    expect((await raw(revoked.key, '/v1/models')).status).toBe(200);
    await keys.revoke(revoked.record.id, 1);
    // A fresh gateway on the same database has no cached answer for it.
    const second = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      apiKeys: { [keyB]: 'team-b' },
      database: ferry.app.context.config.database,
    });
    try {
      const refused = await second.fetch('/v1/models', {
        headers: { authorization: `Bearer ${revoked.key}` },
      });
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as ErrorBody).error).toEqual(wrongError);
      const ok = await second.fetch('/v1/models', { headers: { authorization: `Bearer ${keyA}` } });
      expect(ok.status).toBe(200);
    } finally {
      await second.close();
    }
    for (const path of ['/healthz', '/readyz', '/metrics'])
      expect((await ferry.fetch(path)).status).toBe(200);
  });
});

describe('a gateway without keys', () => {
  it('is open: every request acts for tenant "default"', async () => {
    const fake = await startFakeOllama({ models: ['m'] });
    const ferry = await startFerry({ backends: [{ name: 'local', kind: 'ollama', url: fake.url }] });
    try {
      expect(ferry.app.context.keys.open).toBe(true);
      const created = await ferry.client.responses.create({ model: 'm', input: 'hello' });
      const other = new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: 'anything', maxRetries: 0 });
      expect((await other.responses.retrieve(created.id)).id).toBe(created.id);
      expect(await ferry.app.context.store.getResponse('default', created.id)).toBeDefined();
    } finally {
      await ferry.close();
      await fake.close();
    }
  });
});
