import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { captureSse } from '../support/sse.js';
import { checkStream, type CheckedStream } from '../support/stream-checker.js';
import { chatRequests, messagesOf, offeredTools } from '../support/tools.js';
import { zstdStored } from '../support/zstd-frames.js';

type Json = Record<string, unknown>;

const FIXTURES_DIR = process.env.FERRY_FIXTURES_DIR ?? '/work/shared/fixtures';
const RECORDING = join(FIXTURES_DIR, 'codex', 'codex-0.169-requests.json');
const haveRecording = existsSync(RECORDING);
if (!haveRecording)
  console.warn(`[codex-wire.test] recorded Codex requests skipped: ${RECORDING} is absent.`);

interface RecordedCodexRequest {
  turn: number;
  headers: Record<string, string>;
  body: Json;
}

/**
 * What Codex 0.169 sends, exactly as recorded (`store: false`, reasoning with encrypted content,
 * a `namespace` tool, `web_search`, developer messages with client-made ids, zstd bodies), and
 * the transport details it relies on: an immediate answer to a WebSocket upgrade, and keep-alive
 * comments while a model thinks in silence.
 */
describe.each(BACKEND_KINDS)('Codex on the wire over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;

  beforeAll(async () => {
    fake = await startFake(kind);
    ferry = await startFerry({
      backends: [{ name: 'local', kind, url: fake.url }],
      // Codex's prompt and tools are ~40 KB: a coding agent needs a large context window.
      models: { 'gpt-oss:20b': { contextWindow: 65_536 } },
      streamKeepAliveSeconds: 0.1,
    });
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
  });

  /** POSTs a body the way Codex does: zstd-compressed, with Codex's headers. */
  const post = async (body: Json, headers: Record<string, string> = {}): Promise<CheckedStream> => {
    const { 'content-length': _length, ...rest } = headers;
    const response = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { ...rest, 'content-type': 'application/json', 'content-encoding': 'zstd' },
      body: zstdStored(Buffer.from(JSON.stringify(body))),
    });
    expect(response.status, await peekError(response)).toBe(200);
    return checkStream((await captureSse(response)).frames.map((frame) => frame.data));
  };

  describe.skipIf(!haveRecording)('the recorded tool round trip', () => {
    const recorded = () => JSON.parse(readFileSync(RECORDING, 'utf8')) as RecordedCodexRequest[];

    it('turn 1: offers the flattened tools without web_search, and returns reasoning and the call', async () => {
      const [turn1] = recorded();
      fake.enqueue({
        steps: [
          { type: 'thinking', text: 'I will write the file with a shell command.' },
          {
            type: 'tool_call',
            name: 'exec_command',
            arguments: { cmd: 'echo CODEX_TOOL_RAN > proof.txt && cat proof.txt' },
          },
        ],
      });
      const checked = await post(turn1!.body, turn1!.headers);
      expect(checked.terminalType).toBe('response.completed');
      expect(checked.final.store).toBe(false);
      const [reasoning, call] = checked.items;
      expect(reasoning).toMatchObject({ type: 'reasoning', encrypted_content: expect.any(String) });
      expect(call).toMatchObject({
        type: 'function_call',
        name: 'exec_command',
        arguments: '{"cmd":"echo CODEX_TOOL_RAN > proof.txt && cat proof.txt"}',
      });
      const sent = chatRequests(fake).at(-1)!;
      const tools = offeredTools(sent);
      expect(tools).toContain('exec_command');
      expect(tools).toContain('multi_agent_v1__spawn_agent');
      expect(tools.some((name) => name.includes('web_search'))).toBe(false);
      expect(tools).toHaveLength(
        (turn1!.body.tools as Json[]).reduce(
          (count, tool) =>
            count +
            (tool.type === 'namespace' ? (tool.tools as unknown[]).length : tool.type === 'function' ? 1 : 0),
          0,
        ),
      );
      // Codex's developer messages reach the model as system messages, its prompt as the user's.
      const messages = messagesOf(sent);
      expect(messages.map((message) => message.role)).toEqual(['system', 'system', 'user', 'user']);
      expect(messageText(messages[3]! as { content: unknown })).toBe('run the thing');
    });

    it('turn 2: takes back the call, its output and (sealed) reasoning, and answers', async () => {
      const [turn1, turn2] = recorded();
      fake.enqueue({
        steps: [
          { type: 'thinking', text: 'Let me look.' },
          { type: 'tool_call', name: 'exec_command', arguments: { cmd: 'ls' } },
        ],
      });
      const first = await post(turn1!.body, turn1!.headers);
      const [reasoning] = first.items;
      // Codex resends the history with the model's items, ids kept; here with our reasoning item.
      const input = [...(turn2!.body.input as Json[])];
      input.splice(input.length - 2, 0, reasoning!);
      fake.enqueue({ steps: [{ type: 'text', text: 'The file says CODEX_TOOL_RAN.' }] });
      const second = await post({ ...turn2!.body, input }, turn2!.headers);
      expect(second.terminalType).toBe('response.completed');
      expect(second.text).toBe('The file says CODEX_TOOL_RAN.');
      const messages = messagesOf(chatRequests(fake).at(-1)!);
      expect(messages.map((message) => message.role)).toEqual([
        'system',
        'system',
        'user',
        'user',
        'assistant',
        'tool',
      ]);
      const assistant = messages[4]!;
      expect(assistant[kind === 'ollama' ? 'thinking' : 'reasoning_content']).toBe('Let me look.');
      const calls = assistant.tool_calls as { id: string; function: { name: string } }[];
      expect(calls).toMatchObject([{ id: 'call_1', function: { name: 'exec_command' } }]);
      expect(messageText(messages[5]! as { content: unknown })).toContain('CODEX_TOOL_RAN');
    });
  });

  it('answers a WebSocket upgrade on /v1/responses with 426 at once, so Codex falls back to HTTP', async () => {
    const url = new URL(ferry.url);
    const started = performance.now();
    const answer = await new Promise<{ status: number; body: string; headers: Json }>((resolve, reject) => {
      const upgrade = httpRequest({
        host: url.hostname,
        port: url.port,
        path: '/v1/responses',
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-version': '13',
        },
      });
      upgrade.on('upgrade', () => reject(new Error('the upgrade was accepted')));
      upgrade.on('response', (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode!, body, headers: response.headers }));
      });
      upgrade.on('error', reject);
      upgrade.setTimeout(5_000, () => upgrade.destroy(new Error('no answer to the upgrade')));
      upgrade.end();
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(answer.status).toBe(426);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toMatchObject({
      error: { code: 'websocket_not_supported', type: 'invalid_request_error' },
    });
    // Without an upgrade, GET /v1/responses is still an unknown URL.
    expect((await ferry.fetch('/v1/responses')).status).toBe(404);
  });

  it('keeps a stream alive with SSE comments while the model reasons silently, and takes gzip bodies', async () => {
    fake.enqueue({
      steps: [
        { type: 'thinking', text: 'Hmm.' },
        { type: 'wait', ms: 450 },
        { type: 'text', text: 'Done thinking.' },
      ],
    });
    const response = await ferry.fetch('/v1/responses', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(Buffer.from(JSON.stringify({ model: 'test-model', input: 'think', stream: true }))),
    });
    const capture = await captureSse(response);
    expect(capture.comments.filter((comment) => comment === 'keep-alive').length).toBeGreaterThanOrEqual(2);
    expect(checkStream(capture.frames.map((frame) => frame.data)).text).toBe('Done thinking.');
  });
});

async function peekError(response: Response): Promise<string> {
  return response.status === 200 ? '' : await response.clone().text();
}
