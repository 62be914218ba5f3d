import type {
  Backend,
  BackendPart,
  BackendRequest,
  BackendUsage,
  FinishReason,
} from '../../src/backends/types.js';

/** What a driver's part stream amounts to, with tool-call pieces put back together. */
export interface PartsSummary {
  parts: BackendPart[];
  text: string;
  reasoning: string;
  /** In the order the calls started; `arguments` is JSON text. */
  toolCalls: { name: string; arguments: string }[];
  usage: BackendUsage | undefined;
  finish: FinishReason | undefined;
}

/** A minimal valid request; tests override what they look at. */
export function chatRequest(overrides: Partial<BackendRequest> = {}): BackendRequest {
  return {
    model: 'test-model',
    messages: [{ role: 'user', content: 'Hello there' }],
    stream: true,
    contextWindow: 8192,
    allowTruncation: false,
    ...overrides,
  };
}

/** Runs one generation to the end (bounded by `timeoutMs`) and summarises its parts. */
export async function runChat(
  backend: Backend,
  request: BackendRequest,
  signal: AbortSignal = AbortSignal.timeout(10_000),
): Promise<PartsSummary> {
  const parts: BackendPart[] = [];
  for await (const part of await backend.chat(request, signal)) parts.push(part);
  return summarizeParts(parts);
}

/**
 * Summarises parts, checking the stream's grammar on the way: tool-call pieces start once,
 * continue and end under a known key, every started call ends, and `finish` comes last.
 */
export function summarizeParts(parts: BackendPart[]): PartsSummary {
  const summary: PartsSummary = {
    parts,
    text: '',
    reasoning: '',
    toolCalls: [],
    usage: undefined,
    finish: undefined,
  };
  const open = new Map<string, { name: string; arguments: string }>();
  const ended = new Set<string>();
  for (const part of parts) {
    if (summary.finish) throw new Error(`a '${part.type}' part came after the finish`);
    switch (part.type) {
      case 'text-delta':
        summary.text += part.text;
        break;
      case 'reasoning-delta':
        summary.reasoning += part.text;
        break;
      case 'tool-call':
        summary.toolCalls.push({ name: part.name, arguments: part.arguments });
        break;
      case 'tool-call-start': {
        if (open.has(part.key) || ended.has(part.key))
          throw new Error(`tool call '${part.key}' started twice`);
        const call = { name: part.name, arguments: '' };
        open.set(part.key, call);
        summary.toolCalls.push(call);
        break;
      }
      case 'tool-call-delta':
        openCall(open, part.key).arguments += part.argumentsDelta;
        break;
      case 'tool-call-end':
        openCall(open, part.key);
        open.delete(part.key);
        ended.add(part.key);
        break;
      case 'usage':
        summary.usage = part.usage;
        break;
      case 'finish':
        summary.finish = part.reason;
        break;
    }
  }
  if (open.size) throw new Error(`tool calls never ended: ${[...open.keys()].join(', ')}`);
  return summary;
}

function openCall(open: Map<string, { name: string; arguments: string }>, key: string) {
  const call = open.get(key);
  if (!call) throw new Error(`a piece of tool call '${key}' arrived while it was not open`);
  return call;
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
