import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError, type BackendErrorKind } from '../../src/backends/errors.js';
import { OllamaBackend } from '../../src/backends/ollama/driver.js';
import type { OllamaChatChunk } from '../../src/backends/ollama/wire.js';
import { OpenAIChatBackend } from '../../src/backends/openai-chat/driver.js';
import type { ChatCompletionChunk } from '../../src/backends/openai-chat/wire.js';
import type { Backend, BackendUsage, FinishReason } from '../../src/backends/types.js';
import type { UpstreamOptions } from '../../src/backends/upstream.js';
import { chatRequest, rejectionOf, runChat } from '../support/backend-parts.js';
import { awkwardOffsets, startReplayServer, type ReplayServer } from '../support/replay-server.js';

/**
 * Replays every recorded transcript in the shared fixtures folder through the matching driver,
 * cut into pieces at awkward byte offsets, and checks the parts against what the recording
 * says (expectations are computed from the files, not written down).
 */

const FIXTURES_DIR = process.env.FERRY_FIXTURES_DIR ?? '/work/shared/fixtures';
const haveFixtures = existsSync(FIXTURES_DIR);
if (!haveFixtures) {
  console.warn(
    `[fixtures.test] skipped: no recorded transcripts at ${FIXTURES_DIR} (set FERRY_FIXTURES_DIR to run them).`,
  );
}

const OPTIONS: UpstreamOptions = {
  connections: 2,
  timeouts: { connectMs: 1000, firstByteMs: 5000, idleMs: 5000, requestMs: 5000 },
};

/** Error recordings: the statuses to serve them with and the kind each must map to. */
const EXPECTED_ERRORS: Record<string, { statuses: number[]; kind: BackendErrorKind }> = {
  'ollama/error-404-model-not-found.json': { statuses: [404], kind: 'model_not_found' },
  'ollama/error-400-input-exceeds-context-length.json': { statuses: [400], kind: 'context_length_exceeded' },
  'ollama/error-400-model-does-not-support-tools.json': { statuses: [400], kind: 'invalid_request' },
  // The reporter saw a status other than the body's 400; llama.cpp itself used 500 at first.
  'openai-chat/llamacpp/error-exceed-context-size.json': {
    statuses: [400, 500],
    kind: 'context_length_exceeded',
  },
};

/** Spacing of extra cuts, so long recordings are also split at many unremarkable places. */
const EXTRA_CUT_EVERY = 4093;

interface Expectation {
  text: string;
  reasoning: string;
  toolCalls: { name: string; arguments: unknown }[];
  finish: FinishReason;
  usage: BackendUsage | undefined;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
});

describe.skipIf(!haveFixtures)('recorded Ollama transcripts', () => {
  for (const file of haveFixtures ? chatFixtures('ollama') : []) {
    const name = relative(FIXTURES_DIR, file);
    if (isErrorFixture(file)) {
      it(`maps ${name} to the right error`, () => checkError(file, 'ollama'));
      continue;
    }
    it(`replays ${name}`, async () => {
      const bytes = readFileSync(file);
      const streamed = file.endsWith('.ndjson');
      const chunks = streamed ? ndjsonLines(bytes) : [JSON.parse(bytes.toString('utf8')) as OllamaChatChunk];
      const server = await replay({ path: '/api/chat', bytes, contentType: ollamaContentType(file) });
      const result = await runChat(ollamaBackend(server), chatRequest({ stream: streamed }));
      expectParts(result, expectedFromOllama(chunks));
    });
  }
});

describe.skipIf(!haveFixtures)('recorded OpenAI-compatible transcripts', () => {
  for (const file of haveFixtures ? chatFixtures('openai-chat') : []) {
    const name = relative(FIXTURES_DIR, file);
    if (isErrorFixture(file)) {
      it(`maps ${name} to the right error`, () => checkError(file, 'openai-chat'));
      continue;
    }
    it(`replays ${name}`, async () => {
      const bytes = readFileSync(file);
      const streamed = file.endsWith('.sse');
      const chunks = streamed ? sseData(bytes) : [JSON.parse(bytes.toString('utf8')) as ChatCompletionChunk];
      const server = await replay({
        path: '/v1/chat/completions',
        bytes,
        contentType: streamed ? 'text/event-stream' : 'application/json; charset=utf-8',
      });
      const result = await runChat(chatBackend(server), chatRequest({ stream: streamed }));
      expectParts(result, expectedFromChat(chunks));
    });
  }
});

// ---- Running ----

async function replay(options: { path: string; bytes: Buffer; contentType: string; status?: number }) {
  const server = await startReplayServer([
    {
      path: options.path,
      body: options.bytes,
      contentType: options.contentType,
      status: options.status,
      splitAt: cutOffsets(options.bytes),
    },
  ]);
  cleanups.push(() => server.close());
  return server;
}

function cutOffsets(bytes: Buffer): number[] {
  const offsets = awkwardOffsets(bytes);
  for (let offset = EXTRA_CUT_EVERY; offset < bytes.length; offset += EXTRA_CUT_EVERY) offsets.push(offset);
  return offsets;
}

function ollamaBackend(server: ReplayServer): Backend {
  const backend = new OllamaBackend('recorded', server.url, OPTIONS);
  cleanups.push(() => backend.close());
  return backend;
}

function chatBackend(server: ReplayServer): Backend {
  const backend = new OpenAIChatBackend('recorded', `${server.url}/v1`, OPTIONS);
  cleanups.push(() => backend.close());
  return backend;
}

async function checkError(file: string, kind: 'ollama' | 'openai-chat'): Promise<void> {
  const name = relative(FIXTURES_DIR, file);
  const expected = EXPECTED_ERRORS[name];
  if (!expected) throw new Error(`no expected error kind for ${name}: add it to EXPECTED_ERRORS`);
  const bytes = readFileSync(file);
  const message = recordedErrorMessage(bytes);
  for (const status of expected.statuses) {
    const path = kind === 'ollama' ? '/api/chat' : '/v1/chat/completions';
    const server = await replay({ path, bytes, status, contentType: 'application/json; charset=utf-8' });
    const backend = kind === 'ollama' ? ollamaBackend(server) : chatBackend(server);
    const error = await rejectionOf(backend.chat(chatRequest({ stream: false }), AbortSignal.timeout(5000)));
    expect(error).toBeInstanceOf(BackendError);
    expect(error).toMatchObject({ kind: expected.kind, status });
    expect((error as BackendError).message).toContain(message);
  }
}

function expectParts(result: Awaited<ReturnType<typeof runChat>>, expected: Expectation): void {
  // A recording that parses to nothing would make every other check vacuous.
  expect(expected.text.length + expected.reasoning.length + expected.toolCalls.length).toBeGreaterThan(0);
  expect(result.text).toBe(expected.text);
  expect(result.reasoning).toBe(expected.reasoning);
  const calls = result.toolCalls.map((call) => ({
    name: call.name,
    arguments: JSON.parse(call.arguments) as unknown,
  }));
  expect(calls).toEqual(expected.toolCalls);
  expect(result.finish).toBe(expected.finish);
  expect(result.usage).toEqual(expected.usage);
  expect(result.parts.at(-1)?.type).toBe('finish');
}

// ---- Reading the recordings ----

function chatFixtures(folder: string): string[] {
  return listFiles(join(FIXTURES_DIR, folder))
    .filter((file) => /\.(ndjson|sse|json)$/.test(file))
    .filter((file) => !/(^|\/)show-[^/]*$/.test(file))
    .sort();
}

function listFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(directory, entry.name)) : [join(directory, entry.name)],
  );
}

function isErrorFixture(file: string): boolean {
  return /(^|\/)error-[^/]*$/.test(file);
}

function ollamaContentType(file: string): string {
  if (file.endsWith('.json')) return 'application/json; charset=utf-8';
  // Ollama Cloud served its NDJSON streams as application/json.
  return /(^|\/)cloud-[^/]*$/.test(file) ? 'application/json' : 'application/x-ndjson';
}

function ndjsonLines(bytes: Buffer): OllamaChatChunk[] {
  return bytes
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as OllamaChatChunk);
}

/** The JSON payloads of an SSE body's `data:` events, up to `[DONE]`. */
function sseData(bytes: Buffer): ChatCompletionChunk[] {
  const payloads = bytes
    .toString('utf8')
    .split('\n\n')
    .map((block) =>
      block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice('data:'.length).trimStart())
        .join('\n'),
    )
    .filter(Boolean);
  const done = payloads.indexOf('[DONE]');
  return (done === -1 ? payloads : payloads.slice(0, done)).map(
    (payload) => JSON.parse(payload) as ChatCompletionChunk,
  );
}

function recordedErrorMessage(bytes: Buffer): string {
  const body = JSON.parse(bytes.toString('utf8')) as { error: string | { message: string } };
  return typeof body.error === 'string' ? body.error : body.error.message;
}

// ---- What the recordings say ----

function expectedFromOllama(chunks: OllamaChatChunk[]): Expectation {
  const expected: Expectation = { text: '', reasoning: '', toolCalls: [], finish: 'stop', usage: undefined };
  for (const chunk of chunks) {
    expected.text += chunk.message?.content ?? '';
    expected.reasoning += chunk.message?.thinking ?? '';
    for (const call of chunk.message?.tool_calls ?? []) {
      expected.toolCalls.push({ name: call.function.name, arguments: call.function.arguments });
    }
    if (!chunk.done) continue;
    expected.usage = { inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 };
    // Ollama says "stop" after tool calls too; Ferry reports tool_calls then.
    expected.finish = finishReason(chunk.done_reason, expected.toolCalls.length);
  }
  return expected;
}

function expectedFromChat(chunks: ChatCompletionChunk[]): Expectation {
  const expected: Expectation = { text: '', reasoning: '', toolCalls: [], finish: 'stop', usage: undefined };
  const calls = new Map<number, { name: string; arguments: string }>();
  let recordedFinish: string | undefined;
  for (const chunk of chunks) {
    if (chunk.usage) expected.usage = usageOf(chunk.usage);
    const choice = chunk.choices?.[0];
    const delta = choice?.delta ?? choice?.message;
    if (!choice || !delta) continue;
    expected.text += delta.content ?? '';
    expected.reasoning += delta.reasoning_content ?? delta.reasoning ?? '';
    for (const [position, call] of (delta.tool_calls ?? []).entries()) {
      const index = call.index ?? position;
      const entry = calls.get(index) ?? { name: call.function?.name ?? '', arguments: '' };
      entry.arguments += call.function?.arguments ?? '';
      calls.set(index, entry);
    }
    if (choice.finish_reason) recordedFinish = choice.finish_reason;
  }
  expected.toolCalls = [...calls.values()].map((call) => ({
    name: call.name,
    arguments: JSON.parse(call.arguments) as unknown,
  }));
  expected.finish = finishReason(recordedFinish, calls.size);
  return expected;
}

/** A recorded finish reason as Ferry reports it: `length` stays, tool calls win over `stop`. */
function finishReason(recorded: string | undefined, toolCalls: number): FinishReason {
  if (recorded === 'length') return 'length';
  return toolCalls > 0 ? 'tool_calls' : 'stop';
}

function usageOf(usage: NonNullable<ChatCompletionChunk['usage']>): BackendUsage {
  const reasoning = usage.completion_tokens_details?.reasoning_tokens;
  const cached = usage.prompt_tokens_details?.cached_tokens;
  return {
    inputTokens: usage.prompt_tokens ?? 0,
    outputTokens: usage.completion_tokens ?? 0,
    ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {}),
    ...(cached !== undefined ? { cachedTokens: cached } : {}),
  };
}
