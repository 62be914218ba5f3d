import type { BackendPart, FinishReason } from '../types.js';
import type { ChatCompletionChunk, ChatDelta, ChatUsage } from './wire.js';

/**
 * Turns chat-completion chunks (or one whole completion) into backend parts.
 *
 * Absorbs the differences between servers: reasoning as `reasoning_content` or `reasoning`;
 * tool calls streamed in fragments (llama.cpp, vLLM) or whole in one chunk (Ollama's compat
 * layer); usage in a separate `choices:[]` chunk or inside the finishing chunk (llama-box);
 * `finish_reason:"stop"` after a tool call (older Ollama). Tool calls are only closed at the
 * end, so fragments that arrive interleaved still land on the right call.
 */
export class ChatPartMapper {
  private readonly started = new Set<string>();
  private finishReason: string | null = null;
  private usage: ChatUsage | null = null;

  *map(chunk: ChatCompletionChunk): Generator<BackendPart> {
    if (chunk.usage) this.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) return;
    const delta: ChatDelta | undefined = choice.delta ?? choice.message;
    if (delta) {
      const reasoning = delta.reasoning_content ?? delta.reasoning;
      if (reasoning) yield { type: 'reasoning-delta', text: reasoning };
      if (delta.content) yield { type: 'text-delta', text: delta.content };
      for (const [position, call] of (delta.tool_calls ?? []).entries()) {
        const key = String(call.index ?? position);
        if (!this.started.has(key)) {
          this.started.add(key);
          yield { type: 'tool-call-start', key, name: call.function?.name ?? '' };
        }
        const fragment = call.function?.arguments;
        if (fragment) yield { type: 'tool-call-delta', key, argumentsDelta: fragment };
      }
    }
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
  }

  /** Whether a finish reason has been seen (a stream without one was cut short). */
  get finished(): boolean {
    return this.finishReason !== null;
  }

  /** Closes open tool calls and reports usage and the finish reason. */
  *end(): Generator<BackendPart> {
    for (const key of this.started) yield { type: 'tool-call-end', key };
    const usage = this.usage;
    if (usage && (usage.prompt_tokens !== undefined || usage.completion_tokens !== undefined)) {
      yield {
        type: 'usage',
        usage: {
          inputTokens: usage.prompt_tokens ?? 0,
          outputTokens: usage.completion_tokens ?? 0,
          ...(usage.completion_tokens_details?.reasoning_tokens !== undefined
            ? { reasoningTokens: usage.completion_tokens_details.reasoning_tokens }
            : {}),
          ...(usage.prompt_tokens_details?.cached_tokens !== undefined
            ? { cachedTokens: usage.prompt_tokens_details.cached_tokens }
            : {}),
        },
      };
    }
    yield { type: 'finish', reason: this.mapFinishReason() };
  }

  private mapFinishReason(): FinishReason {
    switch (this.finishReason) {
      case 'length':
        return 'length';
      case 'content_filter':
        return 'content_filter';
      default:
        return this.started.size > 0 ? 'tool_calls' : 'stop';
    }
  }
}
