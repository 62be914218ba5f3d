import { STATUS_CODES } from 'node:http';
import {
  argumentsText,
  collectWholeAnswer,
  FakeServer,
  groupToolCalls,
  randomId,
  textPieces,
  tokenCounts,
  wantsErrorStatus,
  type FakeExchange,
  type TokenCounts,
  type ToolCallStep,
  type WireAction,
} from './fake-server.js';
import type { FakeBackend, Scenario } from './scenario.js';

/**
 * A fake OpenAI-compatible Chat Completions server (`/v1/chat/completions`, `/v1/models`).
 * Each flavor reproduces the quirks its server shows in /work/shared/fixtures/openai-chat:
 *
 * - `llamacpp` (default): opening `{"role":"assistant","content":null}` chunk, `reasoning_content`,
 *   tool calls in fragments (the first carries id, name and the first piece of the arguments),
 *   a separate `choices:[]` usage chunk with `timings`.
 * - `vllm`: `reasoning` (vLLM ≥ 0.19), `"usage":null` on every chunk when usage was asked for,
 *   a first tool-call fragment with the name only, `chatcmpl-tool-…` ids.
 * - `lmstudio`: no opening chunk (the role rides on the first delta), `reasoning_content`,
 *   a tool call as a fragment with `arguments:""` followed by the whole arguments, usage with
 *   `reasoning_tokens`.
 * - `ollama-compat`: Ollama's `/v1` layer: `reasoning`, every delta repeats `role` and `content`,
 *   tool calls whole in one chunk.
 */
export type ChatFlavor = 'llamacpp' | 'vllm' | 'lmstudio' | 'ollama-compat';

export const CHAT_FLAVORS: readonly ChatFlavor[] = ['llamacpp', 'vllm', 'lmstudio', 'ollama-compat'];

export async function startFakeOpenAIChat(
  options: { models?: string[]; flavor?: ChatFlavor } = {},
): Promise<FakeBackend> {
  const flavor = FLAVORS[options.flavor ?? 'llamacpp'];
  return FakeServer.start({
    models: options.models ?? ['test-model'],
    basePath: '/v1',
    routes: [
      {
        method: 'POST',
        path: '/v1/chat/completions',
        handle: (exchange, fake) => answerChat(exchange, fake, flavor),
      },
      { method: 'GET', path: '/v1/models', handle: (exchange, fake) => listModels(exchange, fake, flavor) },
    ],
    notFound: (exchange) => exchange.sendJson(404, errorBody(404, 'File Not Found')),
  });
}

// ---- Flavors ----

type ChunkObject = 'chat.completion.chunk' | 'chat.completion';

interface CompletionMeta {
  id: string;
  created: number;
  model: string;
}

/** How one server family shapes its chunks and completions. */
interface Flavor {
  ownedBy: string;
  reasoningField: 'reasoning_content' | 'reasoning';
  completionId(): string;
  toolCallId(): string;
  /** Wraps choices in the completion object, keys in the order the server writes them. */
  envelope(meta: CompletionMeta, object: ChunkObject, choices: unknown[]): Record<string, unknown>;
  choice(body: Record<string, unknown>, finishReason: string | null): Record<string, unknown>;
  /** The delta sent before any content, if the server sends one. */
  openingDelta?: Record<string, unknown>;
  /** Fields every delta repeats (Ollama repeats `role` and `content`). */
  deltaBase?: Record<string, unknown>;
  /** The delta of the chunk carrying the finish reason. */
  finishDelta: Record<string, unknown>;
  toolCalls: 'whole' | 'fragments';
  /** What the first fragment of a streamed call carries as arguments. */
  firstArguments: 'first-piece' | 'empty' | 'none';
  /** Whether the arguments after the first fragment come in one piece. */
  restOfArgumentsWhole: boolean;
  /** Adds `"usage":null` to every chunk when usage was requested. */
  usageNullOnChunks: boolean;
  usage(tokens: TokenCounts): Record<string, unknown>;
}

const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const HEX = '0123456789abcdef';

const llamacpp: Flavor = {
  ownedBy: 'llamacpp',
  reasoningField: 'reasoning_content',
  completionId: () => `chatcmpl-${randomId(32)}`,
  toolCallId: () => randomId(32),
  envelope: (meta, object, choices) => ({
    choices,
    created: meta.created,
    id: meta.id,
    model: meta.model,
    system_fingerprint: 'b7010-c27efd2bd',
    object,
  }),
  choice: (body, finishReason) => ({ finish_reason: finishReason, index: 0, ...body }),
  openingDelta: { role: 'assistant', content: null },
  finishDelta: {},
  toolCalls: 'fragments',
  firstArguments: 'first-piece',
  restOfArgumentsWhole: false,
  usageNullOnChunks: false,
  usage: (tokens) => ({
    usage: {
      completion_tokens: tokens.output,
      prompt_tokens: tokens.input,
      total_tokens: tokens.input + tokens.output,
    },
    timings: {
      cache_n: tokens.cached,
      prompt_n: tokens.input - tokens.cached,
      prompt_ms: tokens.input * 0.5,
      predicted_n: tokens.output,
      predicted_ms: tokens.output * 8,
    },
  }),
};

const vllm: Flavor = {
  ownedBy: 'vllm',
  reasoningField: 'reasoning',
  completionId: () => `chatcmpl-${randomId(32, HEX)}`,
  toolCallId: () => `chatcmpl-tool-${randomId(32, HEX)}`,
  envelope: (meta, object, choices) => ({
    id: meta.id,
    object,
    created: meta.created,
    model: meta.model,
    choices,
  }),
  choice: (body, finishReason) => ({ index: 0, ...body, logprobs: null, finish_reason: finishReason }),
  openingDelta: { role: 'assistant', content: '' },
  finishDelta: {},
  toolCalls: 'fragments',
  firstArguments: 'none',
  restOfArgumentsWhole: false,
  usageNullOnChunks: true,
  usage: (tokens) => ({
    usage: {
      prompt_tokens: tokens.input,
      total_tokens: tokens.input + tokens.output,
      completion_tokens: tokens.output,
      prompt_tokens_details: tokens.cached ? { cached_tokens: tokens.cached } : null,
    },
  }),
};

const lmstudio: Flavor = {
  ownedBy: 'organization_owner',
  reasoningField: 'reasoning_content',
  completionId: () => `chatcmpl-${randomId(22, LOWER_ALNUM)}`,
  toolCallId: () => randomId(9, '0123456789'),
  envelope: (meta, object, choices) => ({
    id: meta.id,
    object,
    created: meta.created,
    model: meta.model,
    system_fingerprint: meta.model,
    choices,
  }),
  choice: (body, finishReason) => ({ index: 0, ...body, logprobs: null, finish_reason: finishReason }),
  finishDelta: {},
  toolCalls: 'fragments',
  firstArguments: 'empty',
  restOfArgumentsWhole: true,
  usageNullOnChunks: false,
  usage: (tokens) => ({
    usage: {
      prompt_tokens: tokens.input,
      completion_tokens: tokens.output,
      total_tokens: tokens.input + tokens.output,
      completion_tokens_details: { reasoning_tokens: tokens.reasoning },
    },
  }),
};

const ollamaCompat: Flavor = {
  ownedBy: 'library',
  reasoningField: 'reasoning',
  completionId: () => `chatcmpl-${100 + Math.floor(Math.random() * 900)}`,
  toolCallId: () => `call_${randomId(8, LOWER_ALNUM)}`,
  envelope: (meta, object, choices) => ({
    id: meta.id,
    object,
    created: meta.created,
    model: meta.model,
    system_fingerprint: 'fp_ollama',
    choices,
  }),
  choice: (body, finishReason) => ({ index: 0, ...body, finish_reason: finishReason }),
  deltaBase: { role: 'assistant', content: '' },
  finishDelta: { role: 'assistant', content: '' },
  toolCalls: 'whole',
  firstArguments: 'first-piece',
  restOfArgumentsWhole: true,
  usageNullOnChunks: false,
  usage: (tokens) => ({
    usage: {
      prompt_tokens: tokens.input,
      completion_tokens: tokens.output,
      total_tokens: tokens.input + tokens.output,
    },
  }),
};

const FLAVORS: Record<ChatFlavor, Flavor> = { llamacpp, vllm, lmstudio, 'ollama-compat': ollamaCompat };

// ---- /v1/chat/completions ----

async function answerChat(exchange: FakeExchange, fake: FakeServer, flavor: Flavor): Promise<void> {
  const body = exchange.body;
  if (exchange.parseError) return exchange.sendJson(400, errorBody(400, exchange.parseError));
  if (!Array.isArray(body.messages)) return exchange.sendJson(400, errorBody(400, "'messages' is required"));

  const scenario = fake.nextScenario(exchange.recorded);
  if (!(await exchange.pause(scenario.headerDelayMs ?? 0))) return;
  if (wantsErrorStatus(scenario)) return sendError(exchange, scenario);

  const includeUsage =
    (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  const meta = {
    id: flavor.completionId(),
    created: Math.floor(Date.now() / 1000),
    model: typeof body.model === 'string' ? body.model : 'unknown',
  };
  const reply = new ChatReply(flavor, meta, body.stream === true && includeUsage);
  const tokens = tokenCounts(scenario, exchange.recorded);
  if (body.stream === true) {
    const headers = {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    };
    await exchange.stream(headers, streamEvents(scenario, reply, tokens), scenario.chunkDelayMs);
    return;
  }
  const answer = await collectWholeAnswer(exchange, scenario);
  if (!answer) return;
  if (answer.error !== undefined) return exchange.sendJson(500, errorBody(500, answer.error));
  const message: Record<string, unknown> = { role: 'assistant' };
  if (answer.thinking) message[flavor.reasoningField] = answer.thinking;
  // Servers send `content: null` when the model only called tools.
  message.content = answer.text || (answer.toolCalls.length ? null : '');
  if (answer.toolCalls.length) {
    message.tool_calls = answer.toolCalls.map((step) => ({
      id: step.id ?? flavor.toolCallId(),
      type: 'function',
      function: { name: step.name, arguments: argumentsText(step.arguments) },
    }));
  }
  exchange.sendJson(200, reply.completion(message, finishReason(scenario, answer.toolCalls.length), tokens));
}

/** A scenario as SSE events in the flavor's shape. */
function* streamEvents(scenario: Scenario, reply: ChatReply, tokens: TokenCounts): Generator<WireAction> {
  const flavor = reply.flavor;
  if (flavor.openingDelta) yield reply.event(flavor.openingDelta);
  let toolCalls = 0;
  for (const item of groupToolCalls(scenario.steps)) {
    if (Array.isArray(item)) {
      yield* toolCallEvents(item, toolCalls, reply, scenario.chunkSize);
      toolCalls += item.length;
      continue;
    }
    switch (item.type) {
      case 'thinking':
        for (const piece of textPieces(item.text, scenario.chunkSize))
          yield reply.event({ [flavor.reasoningField]: piece });
        break;
      case 'text':
        for (const piece of textPieces(item.text, scenario.chunkSize)) yield reply.event({ content: piece });
        break;
      case 'error':
        yield { write: `data: ${JSON.stringify(errorBody(500, item.message))}\n\n` };
        return;
      case 'drop':
        yield { drop: true };
        return;
      case 'wait':
        yield { wait: item.ms };
        break;
    }
  }
  yield reply.event(flavor.finishDelta, finishReason(scenario, toolCalls));
  if (reply.includeUsage) yield reply.usageEvent(tokens);
  yield { write: 'data: [DONE]\n\n' };
}

/** Consecutive tool calls: whole in one chunk, or each in fragments, as the flavor streams them. */
function* toolCallEvents(
  steps: ToolCallStep[],
  firstIndex: number,
  reply: ChatReply,
  chunkSize: number | undefined,
): Generator<WireAction> {
  const flavor = reply.flavor;
  const calls = steps.map((step, offset) => ({
    index: firstIndex + offset,
    id: step.id ?? flavor.toolCallId(),
    name: step.name,
    arguments: argumentsText(step.arguments),
  }));
  if (flavor.toolCalls === 'whole') {
    const whole = calls.map((call) => ({
      id: call.id,
      index: call.index,
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    }));
    yield reply.event({ tool_calls: whole });
    return;
  }
  for (const call of calls) {
    // Argument pieces are short, like the token-sized fragments real servers send.
    const pieces = flavor.restOfArgumentsWhole
      ? [call.arguments]
      : [...textPieces(call.arguments, chunkSize ?? 5)];
    const opening: Record<string, unknown> = { name: call.name };
    if (flavor.firstArguments === 'first-piece') opening.arguments = pieces.shift() ?? '';
    if (flavor.firstArguments === 'empty') opening.arguments = '';
    yield reply.event({
      tool_calls: [{ index: call.index, id: call.id, type: 'function', function: opening }],
    });
    for (const piece of pieces) {
      if (piece) yield reply.event({ tool_calls: [{ index: call.index, function: { arguments: piece } }] });
    }
  }
}

/** Builds the chunks and the completion of one answer. */
class ChatReply {
  private roleSent: boolean;

  /** `includeUsage`: the client asked for a usage chunk (`stream_options.include_usage`). */
  constructor(
    readonly flavor: Flavor,
    private readonly meta: CompletionMeta,
    readonly includeUsage: boolean,
  ) {
    // Flavors without an opening chunk put the role on their first delta.
    this.roleSent = flavor.openingDelta !== undefined || flavor.deltaBase !== undefined;
  }

  event(delta: Record<string, unknown>, finishReason: string | null = null): WireAction {
    let body = { ...this.flavor.deltaBase, ...delta };
    if (!this.roleSent) {
      body = { role: 'assistant', ...body };
      this.roleSent = true;
    }
    const chunk = this.flavor.envelope(this.meta, 'chat.completion.chunk', [
      this.flavor.choice({ delta: body }, finishReason),
    ]);
    // vLLM, like OpenAI, puts `"usage":null` on every chunk once usage was asked for.
    if (this.includeUsage && this.flavor.usageNullOnChunks) chunk.usage = null;
    return { write: `data: ${JSON.stringify(chunk)}\n\n` };
  }

  usageEvent(tokens: TokenCounts): WireAction {
    const chunk = {
      ...this.flavor.envelope(this.meta, 'chat.completion.chunk', []),
      ...this.flavor.usage(tokens),
    };
    return { write: `data: ${JSON.stringify(chunk)}\n\n` };
  }

  completion(message: Record<string, unknown>, reason: string, tokens: TokenCounts): Record<string, unknown> {
    const choice = this.flavor.choice({ message }, reason);
    return { ...this.flavor.envelope(this.meta, 'chat.completion', [choice]), ...this.flavor.usage(tokens) };
  }
}

function finishReason(scenario: Scenario, toolCalls: number): string {
  if (scenario.finish === 'length') return 'length';
  return toolCalls > 0 ? 'tool_calls' : 'stop';
}

// ---- Errors and /v1/models ----

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  503: 'unavailable_error',
};

/** The OpenAI-style error body llama.cpp, vLLM and LM Studio answer with. */
function errorBody(
  status: number,
  message: string,
): { error: { message: string; type: string; code: number } } {
  return { error: { message, type: ERROR_TYPES[status] ?? 'server_error', code: status } };
}

function sendError(exchange: FakeExchange, scenario: Scenario): void {
  const status = scenario.status ?? 500;
  const body = scenario.errorBody;
  if (typeof body === 'object') return exchange.sendJson(status, body);
  exchange.sendJson(status, errorBody(status, body ?? STATUS_CODES[status] ?? `status ${status}`));
}

function listModels(exchange: FakeExchange, fake: FakeServer, flavor: Flavor): void {
  const created = Math.floor(Date.now() / 1000) - 86_400;
  exchange.sendJson(200, {
    object: 'list',
    data: fake.models.map((id) => ({ id, object: 'model', created, owned_by: flavor.ownedBy })),
  });
}
