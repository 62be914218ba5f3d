import { ApiError } from '../api/errors.js';
import type { BackendMessage } from '../backends/types.js';
import { estimateMessageTokens, estimateMessagesTokens } from './tokens.js';

export interface FittedContext {
  messages: BackendMessage[];
  estimatedTokens: number;
}

/**
 * Makes a conversation fit the model's context window.
 *
 * `disabled` refuses an input that clearly does not fit (the backend, told not to truncate,
 * catches the borderline cases it can count exactly). `auto` drops the oldest turns, keeping
 * system messages and the latest turn, and never separating a tool call from its results.
 */
export function fitContext(
  messages: BackendMessage[],
  contextWindow: number,
  mode: 'auto' | 'disabled',
  model: string,
  /** Tokens the request needs besides the messages (tool definitions). */
  fixedTokens = 0,
): FittedContext {
  let total = fixedTokens + estimateMessagesTokens(messages);
  if (total <= contextWindow) return { messages, estimatedTokens: total };
  if (mode === 'disabled') throw contextExceeded(model, total, contextWindow);

  const costs = messages.map(estimateMessageTokens);
  const keep = messages.map(() => true);
  const lastUser = messages.findLastIndex((message) => message.role === 'user');
  for (let start = 0; start < messages.length && total > contextWindow;) {
    const message = messages[start]!;
    if (message.role === 'system' || start >= lastUser) {
      start++;
      continue;
    }
    // A turn: the message plus, for an assistant's tool calls, the tool results that follow.
    let end = start + 1;
    if (message.role === 'assistant' && message.toolCalls?.length) {
      while (end < messages.length && messages[end]!.role === 'tool') end++;
    }
    for (let index = start; index < end; index++) {
      keep[index] = false;
      total -= costs[index]!;
    }
    start = end;
  }
  const kept = messages.filter((_, index) => keep[index]);
  if (total > contextWindow) throw contextExceeded(model, total, contextWindow);
  return { messages: kept, estimatedTokens: total };
}

export function contextExceeded(
  model: string,
  tokens: number | undefined,
  contextWindow: number | undefined,
): ApiError {
  const detail =
    tokens !== undefined && contextWindow !== undefined
      ? ` (about ${tokens} tokens for a context window of ${contextWindow})`
      : '';
  return new ApiError(
    400,
    `The input exceeds the context window of model '${model}'${detail}. Shorten the input, or set truncation to 'auto' to drop the oldest turns.`,
    { param: 'input', code: 'context_length_exceeded' },
  );
}
