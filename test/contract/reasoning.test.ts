import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIError } from 'openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, startFake } from '../support/backends.js';
import { startFakeOpenAIChat } from '../support/fake-openai-chat.js';
import { postJson, startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend, Scenario } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream, type CheckedStream } from '../support/stream-checker.js';
import { callThenAnswer, chatRequests, messagesOf, TIME_TOOL } from '../support/tools.js';

type Json = Record<string, unknown>;

const THINK_THEN_ANSWER: Scenario = {
  steps: [
    { type: 'thinking', text: 'The user greets me. I should greet back.' },
    { type: 'text', text: 'Hello!' },
  ],
};

/** Reasoning items, reasoning usage, `reasoning.effort` and encrypted reasoning (74–77, 96). */
describe.each(BACKEND_KINDS)('reasoning over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry({
      backends: [{ name: 'local', kind, url: fake.url }],
      models: {
        'levels-only': { reasoning: { efforts: ['low', 'medium', 'high'] } },
        hybrid: { reasoning: { efforts: { none: false, medium: true, high: true } } },
        'no-thinking': { reasoning: { efforts: { none: null } } },
      },
    });
    client = ferry.client;
    fake.setHandler(() => THINK_THEN_ANSWER);
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  const stream = async (body: Json): Promise<CheckedStream> => {
    const response = await postJson(ferry, '/v1/responses', { model: 'test-model', stream: true, ...body });
    expect(response.status).toBe(200);
    return checkStream((await captureSse(response)).frames.map((frame) => frame.data));
  };
  const lastSent = () => chatRequests(fake).at(-1)!.body;
  /** What the backend got as the reasoning of assistant message `index`. */
  const sentReasoning = (message: Json | undefined) =>
    message?.[kind === 'ollama' ? 'thinking' : 'reasoning_content'];

  describe('reasoning items', () => {
    it('streams thinking as a reasoning item before the message, with reasoning_text events and the asked-for summary (76, 77, 96, 97)', async () => {
      const checked = await stream({ input: 'Hi', reasoning: { summary: 'auto' } });
      const reasoning = checked.items[0]!;
      const thought = 'The user greets me. I should greet back.';
      // Local models write no summaries: asked for one, Ferry gives the reasoning itself (77).
      expect(reasoning).toEqual({
        id: expect.stringMatching(/^rs_/),
        type: 'reasoning',
        summary: [{ type: 'summary_text', text: thought }],
        content: [{ type: 'reasoning_text', text: thought }],
      });
      expect(checked.items[1]).toMatchObject({ type: 'message', content: [{ text: 'Hello!' }] });
      const scoped = checked.events
        .filter(
          (event) => event.item_id === reasoning.id || (event.item as Json | undefined)?.id === reasoning.id,
        )
        .map((event) => event.type);
      expect(scoped[0]).toBe('response.output_item.added');
      expect(scoped[1]).toBe('response.content_part.added');
      expect(new Set(scoped.slice(2, -7))).toEqual(new Set(['response.reasoning_text.delta']));
      expect(scoped.slice(-7)).toEqual([
        'response.reasoning_text.done',
        'response.content_part.done',
        'response.reasoning_summary_part.added',
        'response.reasoning_summary_text.delta',
        'response.reasoning_summary_text.done',
        'response.reasoning_summary_part.done',
        'response.output_item.done',
      ]);
      expect(checked.final.reasoning).toEqual({ effort: null, summary: 'auto' });
    });

    it('returns the same items in a blocking response, without a summary unless asked for', async () => {
      const response = await client.responses.create({ model: 'test-model', input: 'Hi' });
      expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
      expect(response.output[0]).toMatchObject({
        summary: [],
        content: [{ type: 'reasoning_text', text: 'The user greets me. I should greet back.' }],
      });
      expect(response.output[0]).not.toHaveProperty('encrypted_content');
    });
  });

  describe('reasoning.effort', () => {
    it('maps every level to the backend setting when the model has no configuration', async () => {
      const cases: [string, unknown][] =
        kind === 'ollama'
          ? [
              ['none', false],
              ['minimal', 'low'],
              ['medium', 'medium'],
              ['xhigh', 'high'],
            ]
          : [
              ['none', 'none'],
              ['low', 'low'],
              ['high', 'high'],
              ['max', 'high'],
            ];
      for (const [effort, expected] of cases) {
        const response = await client.responses.create({
          model: 'test-model',
          input: 'x',
          reasoning: { effort: effort as 'none' },
        });
        expect(response.reasoning?.effort).toBe(effort);
        expect(lastSent()[kind === 'ollama' ? 'think' : 'reasoning_effort'], effort).toEqual(expected);
      }
      await client.responses.create({ model: 'test-model', input: 'x' });
      expect(lastSent()).not.toHaveProperty(kind === 'ollama' ? 'think' : 'reasoning_effort');
    });

    it("follows a model's configured levels, and refuses others with a 400 naming reasoning.effort (75)", async () => {
      await client.responses.create({ model: 'levels-only', input: 'x', reasoning: { effort: 'high' } });
      expect(lastSent()[kind === 'ollama' ? 'think' : 'reasoning_effort']).toBe('high');
      await client.responses.create({ model: 'hybrid', input: 'x', reasoning: { effort: 'none' } });
      if (kind === 'ollama') expect(lastSent().think).toBe(false);
      else expect(lastSent().chat_template_kwargs).toEqual({ enable_thinking: false });
      await client.responses.create({ model: 'no-thinking', input: 'x', reasoning: { effort: 'none' } });
      expect(lastSent()).not.toHaveProperty('think');
      expect(lastSent()).not.toHaveProperty('reasoning_effort');
      for (const [model, effort] of [
        ['levels-only', 'none'],
        ['hybrid', 'low'],
        ['no-thinking', 'high'],
      ] as const) {
        const error = await client.responses
          .create({ model, input: 'x', reasoning: { effort } })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OpenAI.BadRequestError);
        expect((error as APIError).param).toBe('reasoning.effort');
        expect((error as APIError).code).toBe('unsupported_value');
        expect((error as APIError).message).toContain(model);
      }
    });
  });

  describe('encrypted reasoning', () => {
    const include = ['reasoning.encrypted_content'];

    it('seals reasoning when asked, and restores it into the conversation when sent back (74)', async () => {
      const checked = await stream({ input: 'Hi', store: false, include });
      const reasoning = checked.items[0]!;
      expect(typeof reasoning.encrypted_content).toBe('string');
      expect(String(reasoning.encrypted_content)).not.toContain('greet');
      const blocking = await client.responses.create({
        model: 'test-model',
        input: 'Hi',
        store: false,
        include: include as never,
      });
      const sealed = blocking.output[0] as OpenAI.Responses.ResponseReasoningItem;
      expect(sealed.encrypted_content).toEqual(expect.any(String));
      // Sent back with only the sealed content (what clients do with store: false)…
      await client.responses.create({
        model: 'test-model',
        store: false,
        include: include as never,
        input: [
          { role: 'user', content: 'Hi' },
          { type: 'reasoning', id: sealed.id, summary: [], encrypted_content: sealed.encrypted_content },
          { role: 'assistant', content: 'Hello!' },
          { role: 'user', content: 'And now?' },
        ],
      });
      const messages = messagesOf(chatRequests(fake).at(-1)!);
      expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'user']);
      expect(sentReasoning(messages[1])).toBe('The user greets me. I should greet back.');
      // …or verbatim, content and all (Codex).
      await client.responses.create({
        model: 'test-model',
        store: false,
        input: [
          { role: 'user', content: 'Hi' },
          reasoning as never,
          checked.items[1] as never,
          { role: 'user', content: 'Again' },
        ],
      });
      expect(sentReasoning(messagesOf(chatRequests(fake).at(-1)!)[1])).toBe(
        'The user greets me. I should greet back.',
      );
    });

    it('refuses tampered and foreign encrypted_content with a 400 naming the item', async () => {
      const response = await client.responses.create({
        model: 'test-model',
        input: 'Hi',
        include: include as never,
      });
      const sealed = (response.output[0] as OpenAI.Responses.ResponseReasoningItem).encrypted_content!;
      const bytes = Buffer.from(sealed, 'base64url');
      bytes[bytes.length - 1]! ^= 1;
      const tampered = bytes.toString('base64url');
      const other = await startFerry({
        backends: [{ name: 'local', kind, url: fake.url }],
        reasoningKey: Buffer.alloc(32, 7).toString('base64'),
      });
      try {
        for (const [client_, blob] of [
          [client, tampered],
          [other.client, sealed],
          [client, 'not even base64 !!'],
        ] as const) {
          const error = await client_.responses
            .create({
              model: 'test-model',
              input: [
                { role: 'user', content: 'Hi' },
                { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: blob },
              ],
            })
            .catch((e: unknown) => e);
          expect(error).toBeInstanceOf(OpenAI.BadRequestError);
          expect((error as APIError).param).toBe('input[1].encrypted_content');
          expect((error as APIError).code).toBe('invalid_encrypted_content');
        }
      } finally {
        await other.close();
      }
    });
  });

  it('resolves reasoning and function calls of a previous response from the store (53, 55)', async () => {
    fake.setHandler(
      callThenAnswer(
        {
          steps: [
            { type: 'thinking', text: 'I need the time.' },
            { type: 'tool_call', name: 'get_time', arguments: { city: 'Kyiv' } },
          ],
        },
        'It is 9.',
      ),
    );
    try {
      const first = await client.responses.create({
        model: 'test-model',
        input: 'Time?',
        tools: [TIME_TOOL],
      });
      expect(first.output.map((item) => item.type)).toEqual(['reasoning', 'function_call']);
      const [reasoning, call] = first.output as [
        OpenAI.Responses.ResponseReasoningItem,
        OpenAI.Responses.ResponseFunctionToolCall,
      ];
      const output = { type: 'function_call_output' as const, call_id: call.call_id, output: '09:00' };
      const viaChain = await client.responses.create({
        model: 'test-model',
        previous_response_id: first.id,
        tools: [TIME_TOOL],
        input: [output],
      });
      expect(viaChain.output_text).toBe('It is 9.');
      const expectHistory = () => {
        const messages = messagesOf(chatRequests(fake).at(-1)!);
        expect(messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool']);
        expect(sentReasoning(messages[1])).toBe('I need the time.');
        expect((messages[1]!.tool_calls as unknown[]).length).toBe(1);
      };
      expectHistory();
      // The same by reference: a reasoning item with only its id, and an item_reference to the call.
      await client.responses.create({
        model: 'test-model',
        tools: [TIME_TOOL],
        input: [
          { role: 'user', content: 'Time?' },
          { type: 'reasoning', id: reasoning.id, summary: [] },
          { type: 'item_reference', id: call.id! },
          output,
        ],
      });
      expectHistory();
    } finally {
      fake.setHandler(() => THINK_THEN_ANSWER);
    }
  });
});

describe('reasoning usage and keys', () => {
  it('fills output_tokens_details.reasoning_tokens where the backend reports it', async () => {
    const fake = await startFakeOpenAIChat({ flavor: 'lmstudio' });
    const ferry = await startFerry({ backends: [{ name: 'lms', kind: 'openai-chat', url: fake.url }] });
    try {
      fake.setHandler(() => ({ ...THINK_THEN_ANSWER, usage: { input: 20, output: 30, reasoning: 12 } }));
      const blocking = await ferry.client.responses.create({ model: 'test-model', input: 'Hi' });
      expect(blocking.usage).toMatchObject({
        output_tokens: 30,
        output_tokens_details: { reasoning_tokens: 12 },
      });
      const final = await ferry.client.responses.stream({ model: 'test-model', input: 'Hi' }).finalResponse();
      expect(final.usage).toMatchObject({
        output_tokens: 30,
        output_tokens_details: { reasoning_tokens: 12 },
      });
    } finally {
      await ferry.close();
      await fake.close();
    }
  });

  it('shares a generated key through the database, and opens blobs of a rotated-out key', async () => {
    const fake = await startFake('ollama');
    fake.setHandler(() => THINK_THEN_ANSWER);
    const directory = mkdtempSync(join(tmpdir(), 'ferry-keys-'));
    const database = join(directory, 'ferry.db');
    const started: RunningFerry[] = [];
    const start = async (config: Json = {}) => {
      const ferry = await startFerry({
        backends: [{ name: 'o', kind: 'ollama', url: fake.url }],
        database,
        ...config,
      });
      started.push(ferry);
      return ferry;
    };
    const seal = async (ferry: RunningFerry) => {
      const response = await ferry.client.responses.create({
        model: 'test-model',
        input: 'Hi',
        store: false,
        include: ['reasoning.encrypted_content'],
      });
      return (response.output[0] as OpenAI.Responses.ResponseReasoningItem).encrypted_content!;
    };
    const opens = async (ferry: RunningFerry, blob: string) =>
      ferry.client.responses
        .create({
          model: 'test-model',
          store: false,
          input: [
            { role: 'user', content: 'Hi' },
            { type: 'reasoning', id: 'rs_x', summary: [], encrypted_content: blob },
          ],
        })
        .then(
          () => true,
          () => false,
        );
    try {
      const [a, b] = [await start(), await start()];
      const fromA = await seal(a);
      expect(await opens(b, fromA)).toBe(true);
      const oldKey = Buffer.alloc(32, 1).toString('base64');
      const withOld = await start({ reasoningKey: oldKey });
      const fromOld = await seal(withOld);
      expect(await opens(a, fromOld)).toBe(false);
      const rotated = await start({
        reasoningKey: Buffer.alloc(32, 2).toString('hex'),
        previousReasoningKeys: [oldKey],
      });
      expect(await opens(rotated, fromOld)).toBe(true);
      expect(await opens(rotated, fromA)).toBe(false);
    } finally {
      for (const ferry of started) await ferry.close();
      await fake.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
