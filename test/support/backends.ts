import { startFakeOllama } from './fake-ollama.js';
import { startFakeOpenAIChat } from './fake-openai-chat.js';
import type { FakeBackend } from './scenario.js';

/** The backend kinds every contract test runs against, each with its faithful fake server. */
export const BACKEND_KINDS = ['ollama', 'openai-chat'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

export async function startFake(kind: BackendKind, models: string[] = ['test-model']): Promise<FakeBackend> {
  return kind === 'ollama' ? startFakeOllama({ models }) : startFakeOpenAIChat({ models });
}

/** The messages a chat-style backend received in a recorded request. */
export function sentMessages(
  fake: FakeBackend,
  index = -1,
): { role: string; content: unknown; [key: string]: unknown }[] {
  const request = fake.requests
    .filter((entry) => entry.path.endsWith('/chat') || entry.path.endsWith('/chat/completions'))
    .at(index);
  if (!request) throw new Error('the fake backend received no chat request');
  return request.body.messages as { role: string; content: unknown }[];
}

/** The text of a sent message, whether its content is a string or chat content parts. */
export function messageText(message: { content: unknown }): string {
  const content = message.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part: { text?: string }) => part.text ?? '').join('');
  return '';
}
