import type { AIMessageChunk } from '@langchain/core/messages';
import { HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { callThenAnswer, chatRequests, messagesOf, responsesBodies } from '../support/tools.js';

/**
 * LangChain (`@langchain/openai` with `useResponsesApi: true`) against Ferry: a tool round
 * trip, plain and streamed. LangChain sends `strict: null` tools and `text: {}`, and builds
 * streamed tool calls from `output_item.added` plus the concatenated argument deltas.
 */
describe.each(BACKEND_KINDS)('LangChain end to end over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let model: ReturnType<ChatOpenAI['bindTools']>;

  const getWeather = tool(async ({ city }: { city: string }) => `sunny in ${city}`, {
    name: 'get_weather',
    description: 'The current weather in a city',
    schema: z.object({ city: z.string() }),
  });

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry({ backends: [{ name: 'local', kind, url: fake.url }] });
    model = new ChatOpenAI({
      model: 'test-model',
      apiKey: 'sk-langchain',
      configuration: { baseURL: `${ferry.url}/v1` },
      useResponsesApi: true,
      maxRetries: 0,
    }).bindTools([getWeather]);
    fake.setHandler(
      callThenAnswer(
        {
          steps: [
            { type: 'text', text: 'Let me check.' },
            { type: 'tool_call', name: 'get_weather', arguments: { city: 'Paris' } },
          ],
        },
        'It is sunny in Paris.',
      ),
    );
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  /** Runs the tool calls of `ai` and returns the conversation with their results. */
  async function withToolResults(messages: BaseMessage[], ai: AIMessageChunk): Promise<BaseMessage[]> {
    const results: BaseMessage[] = [];
    for (const call of ai.tool_calls ?? []) {
      const output = await getWeather.invoke(call.args as { city: string });
      results.push(new ToolMessage({ content: output, tool_call_id: call.id! }));
    }
    return [...messages, ai, ...results];
  }

  const expectToolTurn = () => {
    const messages = messagesOf(chatRequests(fake).at(-1)!);
    expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool']);
    expect(messageText(messages[1] as { content: unknown })).toBe('Let me check.');
    expect(messageText(messages[2] as { content: unknown })).toBe('sunny in Paris');
  };

  it('completes a tool round trip', async () => {
    const sentBefore = responsesBodies(ferry).length;
    const question = [new HumanMessage('Weather in Paris?')];
    const ai = await model.invoke(question);
    expect(ai.tool_calls).toMatchObject([{ name: 'get_weather', args: { city: 'Paris' } }]);
    const final = await model.invoke(await withToolResults(question, ai));
    expect(final.text).toBe('It is sunny in Paris.');
    const first = responsesBodies(ferry)[sentBefore]!;
    expect(first).toMatchObject({ stream: false, text: {} });
    expect((first.tools as Record<string, unknown>[])[0]).toMatchObject({
      name: 'get_weather',
      strict: null,
    });
    expectToolTurn();
  });

  it('completes a tool round trip, streamed', async () => {
    const question = [new HumanMessage('Weather in Paris?')];
    let ai: AIMessageChunk | undefined;
    for await (const chunk of await model.stream(question)) ai = ai ? ai.concat(chunk) : chunk;
    // Arguments built from output_item.added + deltas must not come out doubled.
    expect(ai!.tool_calls).toMatchObject([{ name: 'get_weather', args: { city: 'Paris' } }]);
    let final: AIMessageChunk | undefined;
    for await (const chunk of await model.stream(await withToolResults(question, ai!)))
      final = final ? final.concat(chunk) : chunk;
    expect(final!.text).toBe('It is sunny in Paris.');
    expectToolTurn();
  });
});
