import type { BackendMessage } from '../backends/types.js';

/**
 * Token estimates for when a backend does not count (and for context-window checks before a
 * request is sent). Roughly four characters a token for English text and code; the backend's
 * own counts replace these whenever it reports them.
 */
const CHARS_PER_TOKEN = 4;
const MESSAGE_OVERHEAD = 4;
const IMAGE_TOKENS = 256;

export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

export function estimateMessageTokens(message: BackendMessage): number {
  let tokens = MESSAGE_OVERHEAD + estimateTextTokens(message.content);
  if (message.role === 'assistant') {
    if (message.reasoning) tokens += estimateTextTokens(message.reasoning);
    if (message.toolCalls)
      for (const call of message.toolCalls) tokens += estimateTextTokens(call.name + call.arguments);
  }
  if ((message.role === 'user' || message.role === 'tool') && message.images)
    tokens += IMAGE_TOKENS * message.images.length;
  return tokens;
}

export function estimateMessagesTokens(messages: readonly BackendMessage[]): number {
  let total = 0;
  for (const message of messages) total += estimateMessageTokens(message);
  return total;
}
