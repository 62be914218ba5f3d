/** The parts of the OpenAI Chat Completions wire format that Ferry reads and writes. */

export type ChatContentPart =
  { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string | ChatContentPart[] }
  | { role: 'assistant'; content: string | null; tool_calls?: ChatToolCall[]; reasoning_content?: string }
  | { role: 'tool'; tool_call_id: string; content: string | ChatContentPart[] };

export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  stream: boolean;
  stream_options?: { include_usage: boolean };
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  seed?: number;
  stop?: string[];
  tools?: {
    type: 'function';
    function: { name: string; description?: string; parameters: unknown; strict?: boolean };
  }[];
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };
  parallel_tool_calls?: boolean;
  response_format?:
    | { type: 'json_object' }
    | { type: 'json_schema'; json_schema: { name: string; schema: unknown; strict: boolean } };
  reasoning_effort?: string;
  /** llama.cpp and vLLM pass these to the chat template (`enable_thinking` for hybrid models). */
  chat_template_kwargs?: Record<string, unknown>;
  [option: string]: unknown;
}

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

export interface ChatToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

/** A streamed chunk (`delta`) or a whole completion (`message`); servers differ in details. */
export interface ChatCompletionChunk {
  choices?: {
    index?: number;
    delta?: ChatDelta;
    message?: ChatDelta;
    finish_reason?: string | null;
  }[];
  usage?: ChatUsage | null;
  /** vLLM and llama.cpp report mid-stream failures as a data event with an error. */
  error?: unknown;
}

export interface ChatDelta {
  content?: string | null;
  /** llama.cpp, LM Studio (one setting), older vLLM. */
  reasoning_content?: string | null;
  /** Ollama's compat layer, LM Studio (other setting), vLLM ≥ 0.19. */
  reasoning?: string | null;
  tool_calls?: ChatToolCallDelta[] | null;
}

export interface ChatModelList {
  data?: { id: string; created?: number; owned_by?: string }[];
}
