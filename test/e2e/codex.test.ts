import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_KINDS, messageText, startFake } from '../support/backends.js';
import { startFerry, type RunningFerry } from '../support/ferry.js';
import type { FakeBackend } from '../support/scenario.js';
import { callThenAnswer, chatRequests, messagesOf, responsesBodies } from '../support/tools.js';

/**
 * The real Codex CLI (`@openai/codex`, a native binary from npm) against Ferry: `codex exec`
 * with a custom provider (`wire_api = "responses"`), so it sends what it sends to OpenAI —
 * `store: false`, `include: ["reasoning.encrypted_content"]`, its namespace tools and
 * `web_search`, full replays of every item. The fake model asks Codex to run a shell command
 * through Codex's own `exec_command` tool; the test checks the command ran and the answer came.
 */
const CODEX = join(process.cwd(), 'node_modules', '.bin', 'codex');
const MODEL = 'llama3.1:8b'; // a name Codex has no metadata for, so it uses the plain Responses shape
const API_KEY = 'sk-codex-e2e-0123456789';
const RUN_TIMEOUT_MS = 60_000;

interface CodexRun {
  code: number | null;
  events: Record<string, unknown>[];
  stderr: string;
  lastMessage: string | undefined;
  ms: number;
}

describe.each(BACKEND_KINDS)('Codex CLI end to end over %s', (kind) => {
  let fake: FakeBackend;
  let ferry: RunningFerry;
  let root: string;

  beforeAll(async () => {
    fake = await startFake(kind, [MODEL]);
    ferry = await startFerry({
      backends: [{ name: 'local', kind, url: fake.url }],
      // Codex's instructions and tools alone are ~10k tokens.
      models: { [MODEL]: { contextWindow: 131_072 } },
      apiKeys: { [API_KEY]: 'codex' },
    });
    root = mkdtempSync(join(tmpdir(), 'ferry-codex-'));
  });
  afterAll(async () => {
    await ferry.close();
    await fake.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** Runs `codex exec` in a fresh home and work directory, bounded in time. */
  async function codexExec(prompt: string): Promise<CodexRun & { work: string }> {
    const run = mkdtempSync(join(root, 'run-'));
    const [home, codexHome, work] = ['home', 'codex-home', 'work'].map((name) => join(run, name));
    for (const directory of [home!, codexHome!, work!]) mkdirSync(directory);
    writeFileSync(
      join(codexHome!, 'config.toml'),
      [
        `model = "${MODEL}"`,
        'model_provider = "ferry"',
        'approval_policy = "never"',
        'sandbox_mode = "danger-full-access"',
        '',
        '[model_providers.ferry]',
        'name = "Ferry"',
        `base_url = "${ferry.url}/v1"`,
        'wire_api = "responses"',
        'env_key = "FERRY_API_KEY"',
        'request_max_retries = 0',
        'stream_max_retries = 0',
        'stream_idle_timeout_ms = 20000',
        '',
      ].join('\n'),
    );
    const lastFile = join(run, 'last.txt');
    const started = performance.now();
    const { code, stdout, stderr } = await new Promise<{
      code: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      const child = spawn(
        CODEX,
        [
          'exec',
          '--skip-git-repo-check',
          '--dangerously-bypass-approvals-and-sandbox',
          '--ephemeral',
          '--color',
          'never',
          '--json',
          '-C',
          work!,
          '-o',
          lastFile,
          prompt,
        ],
        {
          env: { PATH: process.env.PATH, HOME: home, CODEX_HOME: codexHome, FERRY_API_KEY: API_KEY },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
      child.on('close', (exitCode) => {
        clearTimeout(timer);
        resolve({ code: exitCode, stdout: out, stderr: err });
      });
    });
    const events = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return {
      code,
      events,
      stderr,
      lastMessage: existsSync(lastFile) ? readFileSync(lastFile, 'utf8') : undefined,
      ms: Math.round(performance.now() - started),
      work: work!,
    };
  }

  it(
    'runs a shell command through exec_command and reports the answer (store: false, encrypted reasoning)',
    async () => {
      const command = 'echo CODEX_TOOL_RAN > proof.txt && cat proof.txt';
      fake.setHandler(
        callThenAnswer(
          {
            steps: [
              { type: 'thinking', text: 'I should write the proof file with a shell command.' },
              { type: 'tool_call', name: 'exec_command', arguments: { cmd: command } },
            ],
          },
          'I wrote proof.txt; it says CODEX_TOOL_RAN.',
        ),
      );
      const before = chatRequests(fake).length;
      const sentBefore = responsesBodies(ferry).length;
      const result = await codexExec('Write CODEX_TOOL_RAN into proof.txt using the shell.');
      console.info(`[codex e2e over ${kind}] codex exec finished in ${result.ms} ms`);
      expect(result.code, result.stderr).toBe(0);

      // The command really ran, in Codex's working directory.
      expect(readFileSync(join(result.work, 'proof.txt'), 'utf8')).toBe('CODEX_TOOL_RAN\n');
      const items = result.events
        .filter((event) => event.type === 'item.completed')
        .map((event) => event.item as Record<string, unknown>);
      expect(items).toContainEqual(
        expect.objectContaining({
          type: 'command_execution',
          exit_code: 0,
          status: 'completed',
          aggregated_output: 'CODEX_TOOL_RAN\n',
        }),
      );
      // Codex shows reasoning summaries only; Ferry gives the model's reasoning as the summary.
      expect(items).toContainEqual({
        id: expect.any(String),
        type: 'reasoning',
        text: 'I should write the proof file with a shell command.',
      });
      expect(items.at(-1)).toMatchObject({
        type: 'agent_message',
        text: 'I wrote proof.txt; it says CODEX_TOOL_RAN.',
      });
      expect(result.lastMessage).toBe('I wrote proof.txt; it says CODEX_TOOL_RAN.');
      expect(result.events.at(-1)).toMatchObject({ type: 'turn.completed' });

      // What Codex sent: stateless turns with sealed reasoning, its namespace tool and web_search.
      const sent = responsesBodies(ferry).slice(sentBefore);
      expect(sent).toHaveLength(2);
      for (const body of sent) {
        expect(body).toMatchObject({ stream: true, store: false, include: ['reasoning.encrypted_content'] });
        const types = (body.tools as { type: string }[]).map((tool) => tool.type);
        expect(types).toEqual(expect.arrayContaining(['function', 'namespace', 'web_search']));
        expect(body).not.toHaveProperty('previous_response_id');
      }
      const replayed = (sent[1]!.input as Record<string, unknown>[]).filter(
        (item) => item.type === 'reasoning',
      );
      expect(replayed).toHaveLength(1);
      expect(replayed[0]!.encrypted_content).toEqual(expect.any(String));

      // Turn two carried the command's output and the model's own reasoning back to the model.
      const requests = chatRequests(fake).slice(before);
      expect(requests).toHaveLength(2);
      const offered = (requests[0]!.body.tools as { function: { name: string } }[]).map(
        (tool) => tool.function.name,
      );
      expect(offered).toContain('exec_command');
      expect(offered.some((name) => name.includes('web_search'))).toBe(false);
      const history = messagesOf(requests[1]!);
      const [assistant, tool] = history.slice(-2);
      expect(assistant![kind === 'ollama' ? 'thinking' : 'reasoning_content']).toBe(
        'I should write the proof file with a shell command.',
      );
      expect(messageText(tool as { content: unknown })).toContain('CODEX_TOOL_RAN');
    },
    RUN_TIMEOUT_MS + 10_000,
  );
});
