import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import { captureSse } from '../support/sse.js';
import type { FakeBackend } from '../support/scenario.js';

describe('retention', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      retentionSeconds: 1,
      retention: { purgeIntervalSeconds: 0.2 },
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  it('purges responses (and their event logs) once they expire', async () => {
    const plain = await ferry.client.responses.create({ model: 'm', input: 'short-lived' });
    const capture = await captureSse(
      await postJson(ferry, '/v1/responses', { model: 'm', input: 'also', background: true, stream: true }),
    );
    const streamed = { id: (capture.frames[0]!.data as { response: { id: string } }).response.id };
    expect(await ferry.app.context.store.hasEvents(streamed.id)).toBe(true);
    expect((await ferry.client.responses.retrieve(plain.id)).id).toBe(plain.id);
    const deadline = Date.now() + 10_000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      gone =
        (await ferry.client.responses.retrieve(plain.id).catch((error: unknown) => error)) instanceof
        OpenAI.NotFoundError;
    }
    expect(gone).toBe(true);
    await expect(ferry.client.responses.retrieve(streamed.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(await ferry.app.context.store.hasEvents(streamed.id)).toBe(false);
  });
});
