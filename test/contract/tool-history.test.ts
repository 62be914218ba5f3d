import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageText, sentMessages } from '../support/backends.js';
import { startFakeOllama } from '../support/fake-ollama.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';

/** Tool-call history sent back as input (what a client replays after running its tools). */
describe('tool-call history in the input', () => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  beforeAll(async () => {
    fake = await startFakeOllama({ models: ['m'] });
    ferry = await startFerry({ backends: [{ name: 'local', kind: 'ollama', url: fake.url }] });
  });
  afterAll(async () => {
    await ferry?.close();
    await fake?.close();
  });

  it('accepts function_call_output as a string and as input_text parts (54)', async () => {
    const response = await ferry.client.responses.create({
      model: 'm',
      input: [
        { role: 'user', content: 'weather in two cities?' },
        { type: 'function_call', call_id: 'call_1', name: 'weather', arguments: '{"city":"Oslo"}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
        { type: 'function_call', call_id: 'call_2', name: 'weather', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'call_2', output: [{ type: 'input_text', text: 'rainy' }] },
      ],
    });
    expect(response.status).toBe('completed');
    const tools = sentMessages(fake).filter((message) => message.role === 'tool');
    expect(tools.map((message) => messageText(message))).toEqual(['sunny', 'rainy']);
  });

  it('refuses a function_call_output whose call_id matches no call (41)', async () => {
    const error = await ferry.client.responses
      .create({
        model: 'm',
        input: [
          { role: 'user', content: 'x' },
          { type: 'function_call_output', call_id: 'call_nowhere', output: 'r' },
        ],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ param: 'input' });
    expect((error as Error).message).toContain('call_nowhere');
  });
});
