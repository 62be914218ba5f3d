import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool, type ModelMessage } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { callThenAnswer, chatRequests, messagesOf, responsesBodies } from '../support/tools.js';

/**
 * The Vercel AI SDK (`ai` + `@ai-sdk/openai`, Responses model) against Ferry: `generateText`
 * and `streamText` with a tool over several steps, then a second turn built from the first
 * one's messages, in which the SDK refers to Ferry's stored assistant text by `item_reference`.
 */
describe.each(BACKEND_KINDS)('Vercel AI SDK end to end over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let model: ReturnType<ReturnType<typeof createOpenAI>['responses']>;
  const tools = {
    get_weather: tool({
      description: 'The current weather in a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => `sunny in ${city}`,
    }),
  };

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry({ backends: [{ name: 'local', kind, url: fake.url }] });
    model = createOpenAI({ baseURL: `${ferry.url}/v1`, apiKey: 'sk-ai-sdk' }).responses('test-model');
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  const scriptWeather = (city: string) =>
    fake.setHandler(
      callThenAnswer(
        { steps: [{ type: 'tool_call', name: 'get_weather', arguments: { city } }] },
        `Sunny in ${city}.`,
      ),
    );

  it('generateText: a tool step, then a second turn that refers to stored items', async () => {
    scriptWeather('Paris');
    const first = await generateText({
      model,
      prompt: 'Weather in Paris?',
      tools,
      stopWhen: stepCountIs(3),
    });
    expect(first.text).toBe('Sunny in Paris.');
    expect(first.steps).toHaveLength(2);
    expect(first.steps[0]!.toolResults).toMatchObject([
      { toolName: 'get_weather', output: 'sunny in Paris' },
    ]);

    fake.setHandler(() => ({ steps: [{ type: 'text', text: 'Sunny tomorrow too.' }] }));
    const sentBefore = responsesBodies(ferry).length;
    const history: ModelMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      ...first.response.messages,
    ];
    const second = await generateText({
      model,
      messages: [...history, { role: 'user', content: 'And tomorrow?' }],
      tools,
    });
    expect(second.text).toBe('Sunny tomorrow too.');
    const input = responsesBodies(ferry)[sentBefore]!.input as Record<string, unknown>[];
    expect(input.some((item) => item.type === 'item_reference')).toBe(true);
    // Ferry resolved the references: the model saw the whole conversation.
    const messages = messagesOf(chatRequests(fake).at(-1)!);
    expect(messages.map((message) => message.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
      'user',
    ]);
    expect(messageText(messages[2] as { content: unknown })).toBe('sunny in Paris');
    expect(messageText(messages[3] as { content: unknown })).toBe('Sunny in Paris.');
  });

  it('streamText: streams the answer after a tool step', async () => {
    scriptWeather('Rome');
    const sentBefore = responsesBodies(ferry).length;
    const result = streamText({ model, prompt: 'Weather in Rome?', tools, stopWhen: stepCountIs(3) });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    expect(text).toBe('Sunny in Rome.');
    const steps = await result.steps;
    expect(steps).toHaveLength(2);
    expect(steps[0]!.toolCalls).toMatchObject([{ toolName: 'get_weather', input: { city: 'Rome' } }]);
    expect(
      responsesBodies(ferry)
        .slice(sentBefore)
        .map((body) => body.stream),
    ).toEqual([true, true]);
  });
});
