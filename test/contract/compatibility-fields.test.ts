import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sentMessages } from '../support/backends.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream } from '../support/stream-checker.js';

/**
 * Fields clients send that a self-hosted backend has no use for: accepted (and, where the
 * Response object has them, echoed) so clients keep working — the compatibility manifest lists
 * them as "echoed" or, when not echoed, as accepted — plus small stream behaviours the
 * manifest links here.
 */
describe('compatibility-only request fields', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({
      backends: [{ name: 'local', kind: 'ollama', url: fake.url }],
      streamKeepAliveSeconds: 0.1,
    });
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  it('accepts and echoes verbosity and cache retention without sending them to the backend, alongside penalties, a reasoning summary and tool_choice none without tools', async () => {
    // Not every field is in the SDK's request type yet; the wire format has them all.
    const response = await ferry.client.responses.create({
      model: 'm',
      input: 'x',
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      text: { verbosity: 'low' },
      prompt_cache_retention: '24h',
      reasoning: { summary: 'auto' },
      tool_choice: 'none',
      parallel_tool_calls: false,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(response).toMatchObject({
      status: 'completed',
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      text: { format: { type: 'text' }, verbosity: 'low' },
      prompt_cache_retention: '24h',
      reasoning: { summary: 'auto' },
      tool_choice: 'none',
      parallel_tool_calls: false,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(response.output.every((item) => item.type === 'message')).toBe(true);
    // None of them reaches the backend as something it would misread.
    const sent = JSON.stringify(fake.requests.at(-1)!.body);
    expect(sent).not.toContain('verbosity');
    expect(sent).not.toContain('24h');
    expect(sentMessages(fake).at(-1)).toMatchObject({ role: 'user' });
  });

  it('accepts client_metadata, prompt_cache_options, reasoning.mode and reasoning.context, echoing none of them', async () => {
    const response = await postJson(ferry, '/v1/responses', {
      model: 'm',
      input: 'x',
      client_metadata: { session_id: 'session-7' },
      prompt_cache_options: { ttl: 'long' },
      reasoning: { mode: 'auto', context: 'all_turns' },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.status).toBe('completed');
    expect(body).not.toHaveProperty('client_metadata');
    expect(body).not.toHaveProperty('prompt_cache_options');
    expect(body.reasoning).toEqual({ effort: null, summary: null });
    const sent = JSON.stringify(fake.requests.at(-1)!.body);
    for (const value of ['session-7', 'long', 'all_turns']) expect(sent).not.toContain(value);
  });

  it('sends SSE keep-alive comments while a stream is quiet', async () => {
    fake.enqueue({
      steps: [
        { type: 'text', text: 'wait' },
        { type: 'wait', ms: 600 },
        { type: 'text', text: 'for it' },
      ],
    });
    const capture = await captureSse(
      await postJson(ferry, '/v1/responses', { model: 'm', input: 'x', stream: true }),
    );
    expect(capture.comments.length).toBeGreaterThanOrEqual(1);
    expect(capture.comments[0]).toContain('keep-alive');
    expect(checkStream(capture.frames.map((frame) => frame.data)).text).toBe('waitfor it');
  });

  it('never puts obfuscation padding on delta events, whatever stream_options says (102)', async () => {
    for (const streamOptions of [undefined, { include_obfuscation: false }, { include_obfuscation: true }]) {
      const capture = await captureSse(
        await postJson(ferry, '/v1/responses', {
          model: 'm',
          input: 'x',
          stream: true,
          ...(streamOptions ? { stream_options: streamOptions } : {}),
        }),
      );
      const deltas = capture.frames.filter((frame) =>
        (frame.data as { type: string }).type.endsWith('.delta'),
      );
      expect(deltas.length).toBeGreaterThan(0);
      for (const delta of deltas) expect(delta.data).not.toHaveProperty('obfuscation');
    }
  });
});
