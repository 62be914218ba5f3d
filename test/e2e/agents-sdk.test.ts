import { Agent, OpenAIProvider, Runner, setTracingDisabled, tool } from '@openai/agents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { callThenAnswer, chatRequests, messagesOf, responsesBodies } from '../support/tools.js';

/**
 * The OpenAI Agents SDK (`@openai/agents`) running an agent with a function tool against Ferry,
 * plain and streamed. The SDK sends strict tools whose parameters carry `$schema`, replays the
 * whole conversation every turn (function calls with Ferry's ids, outputs with a status), and
 * in streaming mode acts on the items of `response.completed`.
 */
describe.each(BACKEND_KINDS)('Agents SDK end to end over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let runner: Runner;
  const cities: string[] = [];

  const getWeather = tool({
    name: 'get_weather',
    description: 'The current weather in a city',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      cities.push(city);
      return `sunny and 21C in ${city}`;
    },
  });
  const agent = new Agent({
    name: 'Weather agent',
    instructions: 'Answer weather questions with the get_weather tool.',
    tools: [getWeather],
    model: 'test-model',
  });

  beforeAll(async () => {
    setTracingDisabled(true);
    fake = await startFake(kind);
    ferry = await startFerry({ backends: [{ name: 'local', kind, url: fake.url }] });
    // The provider builds its own client (the SDK bundles its own `openai` major).
    runner = new Runner({
      modelProvider: new OpenAIProvider({
        apiKey: 'sk-agents',
        baseURL: `${ferry.url}/v1`,
        useResponses: true,
      }),
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  const scriptWeather = (city: string) =>
    fake.setHandler(
      callThenAnswer(
        {
          steps: [
            { type: 'thinking', text: 'I need the weather tool.' },
            { type: 'tool_call', name: 'get_weather', arguments: { city } },
          ],
        },
        `It is sunny in ${city}.`,
      ),
    );

  /** Checks the two Responses requests of one run and what the model was sent on turn two. */
  const expectRoundTrip = (sentBefore: number, city: string) => {
    const sent = responsesBodies(ferry).slice(sentBefore);
    expect(sent).toHaveLength(2);
    const tools = sent[0]!.tools as Record<string, unknown>[];
    expect(tools[0]).toMatchObject({ type: 'function', name: 'get_weather', strict: true });
    expect(tools[0]!.parameters).toHaveProperty('$schema');
    // Turn two replays the call (with Ferry's item id) and its output.
    const replay = sent[1]!.input as Record<string, unknown>[];
    expect(replay.find((item) => item.type === 'function_call')).toMatchObject({
      id: expect.stringMatching(/^fc_/),
    });
    expect(replay.find((item) => item.type === 'function_call_output')).toMatchObject({
      status: 'completed',
    });
    const messages = messagesOf(chatRequests(fake).at(-1)!);
    expect(messages.map((message) => message.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(messageText(messages[3] as { content: unknown })).toBe(`sunny and 21C in ${city}`);
  };

  it('runs a function tool and answers', async () => {
    scriptWeather('Paris');
    const sentBefore = responsesBodies(ferry).length;
    const result = await runner.run(agent, 'What is the weather in Paris?');
    expect(result.finalOutput).toBe('It is sunny in Paris.');
    expect(cities.at(-1)).toBe('Paris');
    expectRoundTrip(sentBefore, 'Paris');
  });

  it('runs a function tool and answers, streamed', async () => {
    scriptWeather('Lisbon');
    const sentBefore = responsesBodies(ferry).length;
    const result = await runner.run(agent, 'What is the weather in Lisbon?', { stream: true });
    let text = '';
    for await (const delta of result.toTextStream()) text += delta;
    await result.completed;
    expect(text).toBe('It is sunny in Lisbon.');
    expect(result.finalOutput).toBe('It is sunny in Lisbon.');
    expect(cities.at(-1)).toBe('Lisbon');
    expect(
      responsesBodies(ferry)
        .slice(sentBefore)
        .every((body) => body.stream === true),
    ).toBe(true);
    expectRoundTrip(sentBefore, 'Lisbon');
  });
});
