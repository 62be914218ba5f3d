import { RequestBodyEncoder } from '../request-body.js';
import type { BackendMessage, BackendRequest, ReasoningEffort } from '../types.js';
import type { ChatCompletionRequest, ChatContentPart, ChatMessage } from './wire.js';

const encoder = new RequestBodyEncoder(toChatMessage);

/** The `/chat/completions` body for a canonical request, as the bytes sent. */
export function encodeChatRequest(request: BackendRequest): Buffer {
  return encoder.encode(request.messages, chatFields(request));
}

/** Everything in the `/chat/completions` body but the messages. */
function chatFields(request: BackendRequest): Omit<ChatCompletionRequest, 'messages'> {
  const body: Omit<ChatCompletionRequest, 'messages'> = {
    ...request.options,
    model: request.model,
    stream: request.stream,
  };
  if (request.stream) body.stream_options = { include_usage: true };
  if (request.maxOutputTokens !== undefined) body.max_tokens = request.maxOutputTokens;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  if (request.topP !== undefined) body.top_p = request.topP;
  if (request.presencePenalty !== undefined) body.presence_penalty = request.presencePenalty;
  if (request.frequencyPenalty !== undefined) body.frequency_penalty = request.frequencyPenalty;
  if (request.seed !== undefined) body.seed = request.seed;
  if (request.stop?.length) body.stop = request.stop;
  const setting = request.reasoningSetting;
  if (typeof setting === 'string') body.reasoning_effort = setting;
  else if (typeof setting === 'boolean') {
    // Templates of hybrid models (Qwen3 and the like) switch thinking with this flag.
    const kwargs = (body.chat_template_kwargs as Record<string, unknown> | undefined) ?? {};
    body.chat_template_kwargs = { ...kwargs, enable_thinking: setting };
  } else if (setting === undefined && request.reasoningEffort !== undefined)
    body.reasoning_effort = toReasoningEffort(request.reasoningEffort);
  if (request.tools?.length) {
    body.tools = request.tools.map((tool) => ({
      type: 'function',
      function: {
        name: tool.name,
        ...(tool.description ? { description: tool.description } : {}),
        parameters: tool.parameters,
        ...(tool.strict ? { strict: true } : {}),
      },
    }));
    const choice = request.toolChoice;
    if (choice !== undefined) {
      body.tool_choice =
        typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.name } };
    }
    if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
  }
  const format = request.responseFormat;
  if (format?.type === 'json_object') body.response_format = { type: 'json_object' };
  if (format?.type === 'json_schema') {
    body.response_format = {
      type: 'json_schema',
      json_schema: { name: format.name, schema: format.schema, strict: format.strict },
    };
  }
  return body;
}

/** Open servers know `low`/`medium`/`high` (some also `none`/`minimal`); OpenAI's newer top levels map to `high`. */
function toReasoningEffort(effort: ReasoningEffort): string {
  return effort === 'xhigh' || effort === 'max' ? 'high' : effort;
}

function withImages(text: string, images: { url: string }[] | undefined): string | ChatContentPart[] {
  if (!images?.length) return text;
  const parts: ChatContentPart[] = text ? [{ type: 'text', text }] : [];
  for (const image of images) parts.push({ type: 'image_url', image_url: { url: image.url } });
  return parts;
}

function toChatMessage(message: BackendMessage): ChatMessage {
  switch (message.role) {
    case 'system':
      return { role: 'system', content: message.content };
    case 'user':
      return { role: 'user', content: withImages(message.content, message.images) };
    case 'assistant': {
      const out: ChatMessage = { role: 'assistant', content: message.content || null };
      if (message.reasoning) out.reasoning_content = message.reasoning;
      if (message.toolCalls?.length) {
        out.tool_calls = message.toolCalls.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        }));
      }
      return out;
    }
    case 'tool':
      return {
        role: 'tool',
        tool_call_id: message.toolCallId,
        content: withImages(message.content, message.images),
      };
  }
}
