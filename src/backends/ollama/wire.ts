/** The parts of Ollama's native `/api/chat` wire format that Ferry reads and writes. */

export interface OllamaToolCall {
  id?: string;
  function: { index?: number; name: string; arguments: Record<string, unknown> | string };
}

export interface OllamaMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  thinking?: string;
  images?: string[];
  tool_calls?: OllamaToolCall[];
  tool_name?: string;
  tool_call_id?: string;
}

export interface OllamaChatRequest {
  model: string;
  messages: OllamaMessage[];
  stream: boolean;
  /** `true`/`false`, or a level (`low`, `medium`, `high`) for models that have levels (gpt-oss). */
  think?: boolean | string;
  format?: 'json' | Record<string, unknown>;
  tools?: { type: 'function'; function: { name: string; description?: string; parameters: unknown } }[];
  options: Record<string, unknown>;
  truncate?: boolean;
}

/** One NDJSON line of a streamed answer, or the whole body of a non-streamed one. */
export interface OllamaChatChunk {
  model?: string;
  message?: { role?: string; content?: string; thinking?: string; tool_calls?: OllamaToolCall[] };
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  /** A failure reported inside a 200 stream. */
  error?: string;
}

export interface OllamaTags {
  models?: { name: string; model?: string; modified_at?: string }[];
}
