import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateKey } from '../../src/access/api-keys.js';
import { SqlApiKeyStore } from '../../src/store/api-keys.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry } from '../support/ferry.js';
import { captureLogs, type CapturedLogs } from '../support/logs.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';

const CONFIG_KEY = 'sk-config-secret-key-0123456789';
const PROMPT = 'confidential prompt about project bluebird';
const ANSWER = 'confidential answer about project bluebird';

async function gatewayLogging(level: string, fake: FakeBackend) {
  const logs = captureLogs(level);
  const ferry = await startFerry(
    {
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      apiKeys: { [CONFIG_KEY]: { tenant: 'team-a', name: 'laptop' } },
    },
    { logger: logs.logger },
  );
  const stored = generateKey('team-b');
  await new SqlApiKeyStore((ferry.app.context.store as SqlStore).db).create(stored.record);
  return { logs, ferry, storedKey: stored.key, storedId: stored.record.id };
}

/** Structured logs: one line per request with what an operator needs, and never a secret. */
describe('request logs', () => {
  let fake: FakeBackend;
  let info: Awaited<ReturnType<typeof gatewayLogging>>;
  let debug: Awaited<ReturnType<typeof gatewayLogging>>;

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    fake.setHandler(() => ({ steps: [{ type: 'text', text: ANSWER }], usage: { input: 9, output: 6 } }));
    info = await gatewayLogging('info', fake);
    debug = await gatewayLogging('debug', fake);
    for (const { ferry, storedKey } of [info, debug]) {
      for (const key of [CONFIG_KEY, storedKey]) {
        const client = new OpenAI({ baseURL: `${ferry.url}/v1`, apiKey: key, maxRetries: 0 });
        await client.responses.create({ model: 'm', input: PROMPT });
        await captureSse(
          await postJson(
            ferry,
            '/v1/responses',
            { model: 'm', input: PROMPT, stream: true },
            { authorization: `Bearer ${key}` },
          ),
        );
      }
      await postJson(
        ferry,
        '/v1/responses',
        { model: 'm', input: PROMPT },
        { authorization: 'Bearer sk-wrong-but-secret-0123' },
      );
    }
  });
  afterAll(async () => {
    await info?.ferry.close();
    await debug?.ferry.close();
    await fake?.close();
  });

  const requestLines = (logs: CapturedLogs) => logs.lines().filter((line) => line.msg === 'request');

  it('writes one JSON line per request with request id, tenant, key id, model, backend, status, latency and tokens', async () => {
    await vi.waitFor(() => expect(requestLines(info.logs)).toHaveLength(5), { timeout: 5_000, interval: 20 });
    const [blocking, streamed, , , refused] = requestLines(info.logs);
    expect(blocking).toMatchObject({
      level: 30,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      service: 'ferry',
      reqId: expect.stringMatching(/^req_/),
      tenant: 'team-a',
      keyId: 'cfg_laptop',
      method: 'POST',
      route: '/v1/responses',
      status: 200,
      ms: expect.any(Number),
      model: 'm',
      backend: 'local',
      responseId: expect.stringMatching(/^resp_/),
      responseStatus: 'completed',
      inputTokens: 9,
      outputTokens: 6,
    });
    expect(streamed).toMatchObject({ status: 200, responseStatus: 'completed', outputTokens: 6 });
    expect(requestLines(info.logs)[2]).toMatchObject({ tenant: 'team-b', keyId: info.storedId });
    expect(refused).toMatchObject({ status: 401, errorCode: 'invalid_api_key' });
    expect(refused!.tenant).toBeUndefined();
  });

  it('never logs an API key, and logs prompts and answers only at debug level', async () => {
    await vi.waitFor(() => expect(requestLines(debug.logs)).toHaveLength(5), {
      timeout: 5_000,
      interval: 20,
    });
    for (const { logs, storedKey } of [info, debug]) {
      const text = logs.text();
      expect(text).not.toContain(CONFIG_KEY);
      expect(text).not.toContain(storedKey);
      expect(text).not.toContain('sk-wrong-but-secret');
    }
    expect(info.logs.text()).not.toContain('bluebird');
    const bodies = debug.logs.lines().filter((line) => line.msg === 'response bodies');
    expect(bodies).toHaveLength(4);
    expect(bodies[0]).toMatchObject({
      level: 20,
      input: PROMPT,
      responseId: expect.stringMatching(/^resp_/),
    });
    expect(JSON.stringify(bodies[0]!.output)).toContain(ANSWER);
  });

  it('redacts keys and auth headers even when an object holding them is logged', () => {
    const logs = captureLogs('info');
    logs.logger.info(
      {
        headers: { authorization: `Bearer ${CONFIG_KEY}` },
        config: {
          apiKeys: { [CONFIG_KEY]: 'team-a' },
          backends: [{ name: 'vllm', apiKey: 'sk-backend-secret' }],
        },
        apiKey: 'sk-top-level-secret',
      },
      'something',
    );
    const text = logs.text();
    expect(text).not.toContain(CONFIG_KEY);
    expect(text).not.toContain('sk-backend-secret');
    expect(text).not.toContain('sk-top-level-secret');
    expect(text).toContain('[redacted]');
    expect(text).toContain('vllm');
  });
});
