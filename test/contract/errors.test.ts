import { gzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SqlApiKeyStore } from '../../src/store/api-keys.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { zstdBomb, zstdStored } from '../support/zstd-frames.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Bad input of every kind gets the right status and the OpenAI envelope, and the server keeps serving. */
describe('errors and bad input', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      limits: { bodyBytes: 64 * 1024, decompressedBodyBytes: 256 * 1024 },
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  async function expectError(response: Response, status: number, expected: Partial<ErrorBody['error']>) {
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const body = (await response.json()) as ErrorBody;
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error).toMatchObject(expected);
    return body.error;
  }

  const post = (body: unknown) => postJson(ferry, '/v1/responses', body);

  it.each([
    [
      'a string max_output_tokens (35)',
      { model: 'm', input: 'x', max_output_tokens: 'lots' },
      'max_output_tokens',
      'invalid_type',
    ],
    [
      'max_output_tokens below 16 (34)',
      { model: 'm', input: 'x', max_output_tokens: 8 },
      'max_output_tokens',
      'integer_below_min_value',
    ],
    [
      'temperature above 2 (38)',
      { model: 'm', input: 'x', temperature: 2.5 },
      'temperature',
      'decimal_above_max_value',
    ],
    ['top_p below 0 (38)', { model: 'm', input: 'x', top_p: -1 }, 'top_p', 'decimal_below_min_value'],
    [
      'top_logprobs above 20 (38)',
      { model: 'm', input: 'x', top_logprobs: 21 },
      'top_logprobs',
      'integer_above_max_value',
    ],
    [
      'an unknown top-level field (44)',
      { model: 'm', input: 'x', system: 'be nice' },
      'system',
      'unknown_parameter',
    ],
    [
      '17 metadata keys (37)',
      {
        model: 'm',
        input: 'x',
        metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])),
      },
      'metadata',
      'invalid_value',
    ],
    [
      'a metadata value over 512 chars (37)',
      { model: 'm', input: 'x', metadata: { k: 'v'.repeat(513) } },
      'metadata.k',
      'string_above_max_length',
    ],
    [
      'a metadata key over 64 chars (37)',
      { model: 'm', input: 'x', metadata: { ['k'.repeat(65)]: 'v' } },
      'metadata',
      null,
    ],
    [
      'a json_schema format without name (39)',
      { model: 'm', input: 'x', text: { format: { type: 'json_schema', schema: {} } } },
      'text.format.name',
      'missing_required_parameter',
    ],
    ['an input of the wrong type', { model: 'm', input: 42 }, 'input', 'invalid_type'],
    [
      'an unknown item type',
      { model: 'm', input: [{ type: 'telepathy' }] },
      'input[0].type',
      'invalid_value',
    ],
    [
      'an unknown role',
      { model: 'm', input: [{ role: 'robot', content: 'x' }] },
      'input[0].role',
      'invalid_value',
    ],
    [
      'a part without text',
      { model: 'm', input: [{ role: 'user', content: [{ type: 'input_text' }] }] },
      'input[0].content[0].text',
      'missing_required_parameter',
    ],
    ['a missing model', { input: 'x' }, 'model', 'missing_required_parameter'],
    ['a missing input', { model: 'm' }, 'input', 'missing_required_parameter'],
    [
      'an unknown truncation mode',
      { model: 'm', input: 'x', truncation: 'sometimes' },
      'truncation',
      'invalid_value',
    ],
    [
      'stream_options without stream',
      { model: 'm', input: 'x', stream_options: { include_obfuscation: false } },
      'stream_options',
      null,
    ],
    [
      'a conversation (not available)',
      { model: 'm', input: 'x', conversation: 'conv_1' },
      'conversation',
      'unsupported_parameter',
    ],
    [
      'a stored prompt (not available)',
      { model: 'm', input: 'x', prompt: { id: 'p' } },
      'prompt',
      'unsupported_parameter',
    ],
    [
      'a file input (not available)',
      { model: 'm', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }] },
      'input[0].content[0]',
      'unsupported_parameter',
    ],
    [
      'an image by file_id (not available)',
      { model: 'm', input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }] },
      'input[0].content[0]',
      'unsupported_parameter',
    ],
    [
      'a file in a tool output (not available)',
      {
        model: 'm',
        input: [
          { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
          {
            type: 'function_call_output',
            call_id: 'c1',
            output: [{ type: 'input_file', file_id: 'file-1' }],
          },
        ],
      },
      'input[1].output[0]',
      'unsupported_parameter',
    ],
    [
      'a hosted tool (not available)',
      { model: 'm', input: 'x', tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] },
      'tools[0].type',
      'unsupported_parameter',
    ],
    [
      'logprobs (not available)',
      { model: 'm', input: 'x', include: ['message.output_text.logprobs'] },
      'include',
      'unsupported_parameter',
    ],
  ])('rejects %s with a 400 naming the parameter', async (_name, body, param, code) => {
    const error = await expectError(await post(body), 400, { type: 'invalid_request_error', param });
    if (code !== null) expect(error.code).toBe(code);
    expect(error.message).toContain(param.split(/[.[]/)[0]!);
  });

  it('rejects malformed JSON', async () => {
    const response = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":',
    });
    await expectError(response, 400, { code: 'invalid_json', param: null });
  });

  it('rejects a body that is not an object', async () => {
    await expectError(await post([1, 2]), 400, { code: 'invalid_type' });
  });

  it('answers an oversized body with 413', async () => {
    await expectError(await post({ model: 'm', input: 'x'.repeat(100 * 1024) }), 413, {
      code: 'request_too_large',
    });
  });

  it('accepts gzip and zstd bodies and refuses decompression bombs and unknown encodings', async () => {
    const body = Buffer.from(JSON.stringify({ model: 'm', input: 'compressed hello' }));
    for (const [encoding, data] of [
      ['gzip', gzipSync(body)],
      ['zstd', zstdStored(body)],
    ] as const) {
      const response = await ferry.fetch('/v1/responses', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body: data,
      });
      expect(response.status, encoding).toBe(200);
      expect(((await response.json()) as { status: string }).status).toBe('completed');
    }
    const bomb = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'zstd' },
      body: zstdBomb(10 * 1024 * 1024),
    });
    await expectError(bomb, 413, { code: 'request_too_large' });
    const gzipBomb = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)),
    });
    await expectError(gzipBomb, 413, { code: 'request_too_large' });
    const garbage = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: 'not gzip at all',
    });
    await expectError(garbage, 400, { code: 'invalid_body_encoding' });
    const unknown = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'lzma' },
      body,
    });
    await expectError(unknown, 415, { code: 'unsupported_content_encoding' });
  });

  it('answers unknown ids and URLs with 404, and cancel of a foreground response with 400 (110, 111)', async () => {
    await expectError(await ferry.fetch('/v1/responses/resp_missing'), 404, {
      type: 'invalid_request_error',
    });
    await expectError(await ferry.fetch('/v1/responses/resp_missing/input_items'), 404, {});
    await expectError(await ferry.fetch('/v1/responses/resp_missing/cancel', { method: 'POST' }), 404, {});
    await expectError(await ferry.fetch('/v1/nothing-here'), 404, { code: 'unknown_url' });
    const created = (await (await post({ model: 'm', input: 'x' })).json()) as { id: string };
    await expectError(await ferry.fetch(`/v1/responses/${created.id}/cancel`, { method: 'POST' }), 400, {});
    await expectError(await ferry.fetch(`/v1/responses/${created.id}?stream=true`), 400, { param: 'stream' });
  });

  it('never answers a client mistake with a status the SDKs retry (48)', async () => {
    const client = new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: 'x', maxRetries: 2 });
    const before = fake.requests.length;
    const error = await client.responses
      .create({ model: 'm', input: 'x', max_output_tokens: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fake.requests.length).toBe(before);
  });

  it('keeps serving after all of the above', async () => {
    const response = await post({ model: 'm', input: 'still alive?' });
    expect(response.status).toBe(200);
    expect(
      ((await response.json()) as { output: { content: { text: string }[] }[] }).output[0]!.content[0]!.text,
    ).toBe('Echo: still alive?');
  });
});

describe('a gateway whose only backend is down', () => {
  let ferry: RunningFerry;
  beforeAll(async () => {
    // Nothing listens on port 9 (discard) on loopback in CI; connections are refused.
    ferry = await startFerry({ backends: [{ name: 'gone', kind: 'ollama', url: 'http://127.0.0.1:9' }] });
  });
  afterAll(() => ferry.close());

  it('starts, reports the backend in /readyz, and answers requests with a clear 503', async () => {
    expect((await ferry.fetch('/healthz')).status).toBe(200);
    const ready = await ferry.fetch('/readyz');
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as {
      database: { ok: boolean };
      backends: { name: string; ok: boolean; lastError: string }[];
    };
    expect(body.database.ok).toBe(true);
    expect(body.backends).toEqual([
      expect.objectContaining({ name: 'gone', ok: false, lastError: expect.stringContaining('unreachable') }),
    ]);
    const response = await postJson(ferry, '/v1/responses', { model: 'any', input: 'x', stream: true });
    expect(response.status).toBe(503);
    const error = ((await response.json()) as ErrorBody).error;
    expect(error).toMatchObject({ code: 'backend_unavailable', type: 'server_error' });
    expect(error.message).toContain("'gone'");
  });
});

describe('API keys', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      apiKeys: { 'sk-team-a-key': 'team-a', 'sk-team-b-key': 'team-b' },
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  it('rejects missing and wrong keys with 401, and keeps each tenant to its own responses', async () => {
    const missing = await postJson(ferry, '/v1/responses', { model: 'm', input: 'x' });
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('invalid_api_key');
    const wrong = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'x' },
      { authorization: 'Bearer sk-wrong-key' },
    );
    expect(wrong.status).toBe(401);
    expect((await ferry.fetch('/healthz')).status).toBe(200);

    const a = new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: 'sk-team-a-key', maxRetries: 0 });
    const b = new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: 'sk-team-b-key', maxRetries: 0 });
    const mine = await a.responses.create({ model: 'm', input: 'secret of a' });
    expect((await a.responses.retrieve(mine.id)).id).toBe(mine.id);
    await expect(b.responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.responses.inputItems.list(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.responses.delete(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const chained = await b.responses
      .create({ model: 'm', input: 'x', previous_response_id: mine.id })
      .catch((e: unknown) => e);
    expect(chained).toBeInstanceOf(OpenAI.BadRequestError);
    const referenced = await b.responses
      .create({ model: 'm', input: [{ type: 'item_reference', id: mine.output[0]!.id! }] })
      .catch((e: unknown) => e);
    expect(referenced).toBeInstanceOf(OpenAI.NotFoundError);
    expect((await a.responses.retrieve(mine.id)).id).toBe(mine.id);
  });

  it('answers 503 with the envelope when a key cannot be looked up, and serves the next request', async () => {
    const lookup = vi
      .spyOn(SqlApiKeyStore.prototype, 'findByHash')
      .mockRejectedValueOnce(new Error('database is locked'));
    try {
      const failed = await postJson(
        ferry,
        '/v1/responses',
        { model: 'm', input: 'x' },
        { authorization: 'Bearer sk-not-cached-key' },
      );
      expect(failed.status).toBe(503);
      expect(failed.headers.get('x-request-id')).toMatch(/^req_/);
      expect(((await failed.json()) as ErrorBody).error).toMatchObject({
        type: 'server_error',
        code: 'store_unavailable',
      });
      expect(lookup).toHaveBeenCalledTimes(1);
    } finally {
      lookup.mockRestore();
    }
    const again = await postJson(
      ferry,
      '/v1/responses',
      { model: 'm', input: 'x' },
      { authorization: 'Bearer sk-team-a-key' },
    );
    expect(again.status).toBe(200);
  });
});
