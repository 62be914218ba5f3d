import type { BackendPart, FinishReason } from '../types.js';
import type { OllamaChatChunk } from './wire.js';

/**
 * Turns Ollama chat chunks (NDJSON lines, or one non-streamed body) into backend parts.
 * Ollama sends tool calls whole, one array per line, and says `done_reason:"stop"` even after
 * a tool call, so the finish reason is derived here.
 */
export class OllamaPartMapper {
  private toolCalls = 0;

  *map(chunk: OllamaChatChunk): Generator<BackendPart> {
    const message = chunk.message;
    if (message) {
      if (message.thinking) yield { type: 'reasoning-delta', text: message.thinking };
      if (message.content) yield { type: 'text-delta', text: message.content };
      for (const call of message.tool_calls ?? []) {
        const args = call.function.arguments;
        yield {
          type: 'tool-call',
          key: String(this.toolCalls++),
          name: call.function.name,
          arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
        };
      }
    }
    if (chunk.done) {
      if (chunk.prompt_eval_count !== undefined || chunk.eval_count !== undefined) {
        yield {
          type: 'usage',
          usage: { inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 },
        };
      }
      yield { type: 'finish', reason: this.finishReason(chunk.done_reason) };
    }
  }

  private finishReason(doneReason: string | undefined): FinishReason {
    if (doneReason === 'length') return 'length';
    return this.toolCalls > 0 ? 'tool_calls' : 'stop';
  }
}
