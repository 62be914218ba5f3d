import { RequestBodyEncoder } from '../request-body.js';
import type { BackendMessage, BackendRequest, ReasoningEffort } from '../types.js';
import type { OllamaChatRequest, OllamaMessage } from './wire.js';

const encoder = new RequestBodyEncoder(toOllamaMessage);

/** The `/api/chat` body for a canonical request, as the bytes sent. */
export function encodeOllamaRequest(request: BackendRequest): Buffer {
  return encoder.encode(request.messages, ollamaFields(request));
}

/** Everything in the `/api/chat` body but the messages. */
function ollamaFields(request: BackendRequest): Omit<OllamaChatRequest, 'messages'> {
  const options: Record<string, unknown> = {
    ...request.options,
    // Always explicit: Ollama's own default (2048–4096) silently truncates long conversations.
    num_ctx: request.contextWindow,
  };
  if (request.maxOutputTokens !== undefined) options.num_predict = request.maxOutputTokens;
  if (request.temperature !== undefined) options.temperature = request.temperature;
  if (request.topP !== undefined) options.top_p = request.topP;
  if (request.presencePenalty !== undefined) options.presence_penalty = request.presencePenalty;
  if (request.frequencyPenalty !== undefined) options.frequency_penalty = request.frequencyPenalty;
  if (request.seed !== undefined) options.seed = request.seed;
  if (request.stop?.length) options.stop = request.stop;

  const body: Omit<OllamaChatRequest, 'messages'> = {
    model: request.model,
    stream: request.stream,
    options,
    truncate: request.allowTruncation,
  };
  const think =
    request.reasoningSetting !== undefined ? request.reasoningSetting : toThink(request.reasoningEffort);
  if (think !== undefined && think !== null) body.think = think;
  if (request.responseFormat) {
    body.format = request.responseFormat.type === 'json_schema' ? request.responseFormat.schema : 'json';
  }
  if (request.tools?.length && request.toolChoice !== 'none') {
    body.tools = request.tools.map((tool) => ({
      type: 'function',
      function: { name: tool.name, description: tool.description, parameters: tool.parameters },
    }));
  }
  return body;
}

function toOllamaMessage(message: BackendMessage): OllamaMessage {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      return message.images?.length
        ? {
            role: 'user',
            content: message.content,
            images: message.images.map((image) => toBase64(image.url)),
          }
        : { role: 'user', content: message.content };
    case 'assistant': {
      const out: OllamaMessage = { role: 'assistant', content: message.content };
      if (message.reasoning) out.thinking = message.reasoning;
      if (message.toolCalls?.length) {
        out.tool_calls = message.toolCalls.map((call) => ({
          id: call.id,
          function: { name: call.name, arguments: parseArguments(call.arguments) },
        }));
      }
      return out;
    }
    case 'tool': {
      const out: OllamaMessage = {
        role: 'tool',
        content: message.content,
        tool_name: message.name,
        tool_call_id: message.toolCallId,
      };
      if (message.images?.length) out.images = message.images.map((image) => toBase64(image.url));
      return out;
    }
  }
}

/** Ollama takes a tool call's arguments as an object, not as JSON text. */
function parseArguments(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** Ollama wants bare base64; the engine has already turned every image into a data: URL. */
function toBase64(url: string): string {
  const comma = url.indexOf(',');
  return url.startsWith('data:') && comma !== -1 ? url.slice(comma + 1) : url;
}

function toThink(effort: ReasoningEffort | undefined): OllamaChatRequest['think'] {
  switch (effort) {
    case undefined:
      return undefined;
    case 'none':
      return false;
    case 'minimal':
    case 'low':
      return 'low';
    case 'medium':
      return 'medium';
    default:
      return 'high';
  }
}
