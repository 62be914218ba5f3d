import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import {
  argumentsObject,
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
 * A fake Ollama speaking the native API the way the recorded transcripts in
 * /work/shared/fixtures/ollama show it: NDJSON streams (streaming is the default), tool calls
 * whole in one line with object arguments, `done_reason:"stop"` even after tool calls, timings
 * in nanoseconds, errors as `{"error":"…"}` (a bare string), mid-stream failures as one more
 * line in a 200 stream.
 */

export const FAKE_OLLAMA_VERSION = '0.13.5';
/** What the fake reports as every model's context length in `/api/show`. */
export const FAKE_OLLAMA_CONTEXT_LENGTH = 131_072;

const NDJSON = 'application/x-ndjson';

export async function startFakeOllama(options: { models?: string[] } = {}): Promise<FakeBackend> {
  return FakeServer.start({
    models: options.models ?? ['test-model'],
    routes: [
      { method: 'POST', path: '/api/chat', handle: answerChat },
      { method: 'GET', path: '/api/tags', handle: listTags },
      {
        method: 'GET',
        path: '/api/version',
        handle: (exchange) => exchange.sendJson(200, { version: FAKE_OLLAMA_VERSION }),
      },
      { method: 'POST', path: '/api/show', handle: showModel },
      { method: 'GET', path: '/', handle: (exchange) => exchange.sendText(200, 'Ollama is running') },
      { method: 'HEAD', path: '/', handle: (exchange) => exchange.sendText(200, '') },
    ],
    notFound: (exchange) => exchange.sendText(404, '404 page not found'),
  });
}

async function answerChat(exchange: FakeExchange, fake: FakeServer): Promise<void> {
  const body = exchange.body;
  if (exchange.parseError) return exchange.sendJson(400, { error: exchange.parseError });
  if (typeof body.model !== 'string' || !body.model)
    return exchange.sendJson(400, { error: 'model is required' });

  const scenario = fake.nextScenario(exchange.recorded);
  if (!(await exchange.pause(scenario.headerDelayMs ?? 0))) return;
  if (wantsErrorStatus(scenario)) return sendError(exchange, scenario, body.model);

  const reply = new OllamaReply(body.model, tokenCounts(scenario, exchange.recorded), exchange.startedAt);
  // Ollama streams unless the request says `"stream": false`.
  if (body.stream !== false) {
    await exchange.stream({ 'content-type': NDJSON }, streamLines(scenario, reply), scenario.chunkDelayMs);
    return;
  }
  const answer = await collectWholeAnswer(exchange, scenario);
  if (!answer) return;
  if (answer.error !== undefined) return exchange.sendJson(500, { error: answer.error });
  const message: Record<string, unknown> = { role: 'assistant', content: answer.text };
  if (answer.thinking) message.thinking = answer.thinking;
  if (answer.toolCalls.length) message.tool_calls = reply.toolCalls(answer.toolCalls);
  exchange.sendJson(200, reply.final(message, scenario));
}

/** A scenario as Ollama's NDJSON lines. */
function* streamLines(scenario: Scenario, reply: OllamaReply): Generator<WireAction> {
  for (const item of groupToolCalls(scenario.steps)) {
    if (Array.isArray(item)) {
      yield reply.line({ content: '', tool_calls: reply.toolCalls(item) });
      continue;
    }
    switch (item.type) {
      case 'thinking':
        for (const piece of textPieces(item.text, scenario.chunkSize))
          yield reply.line({ content: '', thinking: piece });
        break;
      case 'text':
        for (const piece of textPieces(item.text, scenario.chunkSize)) yield reply.line({ content: piece });
        break;
      case 'error':
        // After the first byte Ollama keeps the 200 and reports the failure as a last line.
        yield { write: `${JSON.stringify({ error: item.message })}\n` };
        return;
      case 'drop':
        yield { drop: true };
        return;
      case 'wait':
        yield { wait: item.ms };
        break;
    }
  }
  yield { write: `${JSON.stringify(reply.final({ role: 'assistant', content: '' }, scenario))}\n` };
}

/** Builds the objects of one Ollama answer, with the fields and key order Ollama uses. */
class OllamaReply {
  private toolCallCount = 0;

  constructor(
    private readonly model: string,
    private readonly tokens: TokenCounts,
    private readonly startedAt: bigint,
  ) {}

  line(message: Record<string, unknown>): WireAction {
    const chunk = {
      model: this.model,
      created_at: new Date().toISOString(),
      message: { role: 'assistant', ...message },
      done: false,
    };
    return { write: `${JSON.stringify(chunk)}\n` };
  }

  toolCalls(steps: ToolCallStep[]): unknown[] {
    return steps.map((step) => ({
      id: step.id ?? `call_${randomId(8, 'abcdefghijklmnopqrstuvwxyz0123456789')}`,
      function: { index: this.toolCallCount++, name: step.name, arguments: argumentsObject(step.arguments) },
    }));
  }

  /** The `done:true` object: the last streamed line, or the whole non-streamed body. */
  final(message: Record<string, unknown>, scenario: Scenario): Record<string, unknown> {
    // Ollama says "stop" even when the model called tools; only a cut-off says "length".
    const doneReason = scenario.finish === 'length' ? 'length' : 'stop';
    const total = Number(process.hrtime.bigint() - this.startedAt);
    return {
      model: this.model,
      created_at: new Date().toISOString(),
      message,
      done: true,
      done_reason: doneReason,
      total_duration: total,
      load_duration: Math.round(total * 0.1),
      prompt_eval_count: this.tokens.input,
      prompt_eval_duration: Math.round(total * 0.2),
      eval_count: this.tokens.output,
      eval_duration: Math.round(total * 0.6),
    };
  }
}

function sendError(exchange: FakeExchange, scenario: Scenario, model: string): void {
  const status = scenario.status ?? 500;
  const body = scenario.errorBody;
  if (typeof body === 'object') return exchange.sendJson(status, body);
  exchange.sendJson(status, { error: body ?? defaultErrorMessage(status, model) });
}

/** The messages Ollama itself uses for the statuses tests ask for most. */
function defaultErrorMessage(status: number, model: string): string {
  if (status === 404) return `model '${model}' not found`;
  if (status === 503) return 'server busy, please try again.  maximum pending requests exceeded';
  return STATUS_CODES[status]?.toLowerCase() ?? `status ${status}`;
}

function listTags(exchange: FakeExchange, fake: FakeServer): void {
  const modifiedAt = new Date(Date.now() - 86_400_000).toISOString();
  exchange.sendJson(200, {
    models: fake.models.map((name) => ({
      name,
      model: name,
      modified_at: modifiedAt,
      size: 4_920_753_328,
      digest: createHash('sha256').update(name).digest('hex'),
      details: modelDetails(),
    })),
  });
}

function showModel(exchange: FakeExchange, fake: FakeServer): void {
  const requested = exchange.body.model ?? exchange.body.name;
  const name = typeof requested === 'string' ? requested : '';
  const known = fake.models.some(
    (model) => model === name || model === `${name}:latest` || `${model}:latest` === name,
  );
  if (!known) return exchange.sendJson(404, { error: `model '${name}' not found` });
  exchange.sendJson(200, {
    license: '',
    modelfile: `# Modelfile generated by "ollama show"\nFROM ${name}\n`,
    parameters: 'stop                           "<|eot_id|>"',
    template: '{{ .Prompt }}',
    details: modelDetails(),
    model_info: {
      'general.architecture': 'llama',
      'general.parameter_count': 8_030_261_312,
      'llama.context_length': FAKE_OLLAMA_CONTEXT_LENGTH,
      'llama.embedding_length': 4096,
    },
    capabilities: ['completion', 'tools'],
    modified_at: new Date(Date.now() - 86_400_000).toISOString(),
  });
}

function modelDetails(): Record<string, unknown> {
  return {
    parent_model: '',
    format: 'gguf',
    family: 'llama',
    families: ['llama'],
    parameter_size: '8.0B',
    quantization_level: 'Q4_K_M',
  };
}
