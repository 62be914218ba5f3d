/**
 * The contract between the engine and every backend driver.
 *
 * A driver turns the canonical request into its wire format and its wire format back into a
 * stream of `BackendPart`s: a small, provider-neutral union in the spirit of the Vercel AI SDK's
 * stream parts. Everything OpenAI-shaped (ids, indexes, events) happens later, in the
 * ResponseBuilder; drivers know nothing about it.
 */

export type BackendKind = 'ollama' | 'openai-chat';

export interface BackendImage {
  /** A data: URL or an http(s) URL. Drivers convert to what their backend needs. */
  url: string;
}

export interface BackendToolCall {
  /** The call id Ferry assigned (`call_…`); sent back to the backend as the tool-call id. */
  id: string;
  name: string;
  /** JSON text. */
  arguments: string;
}

export type BackendMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string; images?: BackendImage[] }
  | { role: 'assistant'; content: string; reasoning?: string; toolCalls?: BackendToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string; images?: BackendImage[] };

export interface BackendTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
  strict: boolean;
}

export type BackendToolChoice = 'auto' | 'none' | 'required' | { name: string };

export type BackendResponseFormat =
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; schema: Record<string, unknown>; strict: boolean };

export type ReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh' | 'max';

/**
 * What a model's configuration says to send for a reasoning effort: Ollama `think` (a boolean or
 * a level), chat `reasoning_effort` (a string) or `chat_template_kwargs.enable_thinking` (a
 * boolean); `null` sends nothing.
 */
export type ReasoningSetting = boolean | string | null;

export interface BackendRequest {
  /** The model name the backend knows. */
  model: string;
  messages: BackendMessage[];
  /** Whether the driver should use the backend's streaming mode. */
  stream: boolean;
  /** The model's configured context window in tokens (Ollama `num_ctx`). */
  contextWindow: number;
  /** Whether the backend may silently cut the prompt when it does not fit (Ollama `truncate`). */
  allowTruncation: boolean;
  maxOutputTokens?: number;
  temperature?: number;
  topP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
  stop?: string[];
  tools?: BackendTool[];
  toolChoice?: BackendToolChoice;
  parallelToolCalls?: boolean;
  responseFormat?: BackendResponseFormat;
  reasoningEffort?: ReasoningEffort;
  /** Overrides the driver's own mapping of `reasoningEffort` (from the model's configuration). */
  reasoningSetting?: ReasoningSetting;
  /** Extra backend options from the model's configuration, passed through verbatim. */
  options?: Record<string, unknown>;
}

export interface BackendUsage {
  inputTokens: number;
  outputTokens: number;
  reasoningTokens?: number;
  cachedTokens?: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

/**
 * One step of a backend's answer. Tool calls come either whole (`tool-call`, as Ollama sends
 * them) or in pieces (`tool-call-start` → `tool-call-delta`* → `tool-call-end`); `key` only
 * correlates the pieces of one call within one stream.
 */
export type BackendPart =
  | { type: 'text-delta'; text: string }
  | { type: 'reasoning-delta'; text: string }
  | { type: 'tool-call'; key: string; name: string; arguments: string }
  | { type: 'tool-call-start'; key: string; name: string }
  | { type: 'tool-call-delta'; key: string; argumentsDelta: string }
  | { type: 'tool-call-end'; key: string }
  | { type: 'usage'; usage: BackendUsage }
  | { type: 'finish'; reason: FinishReason };

export interface BackendModel {
  id: string;
  /** Unix seconds, when the backend tells. */
  created?: number;
  ownedBy?: string;
  contextWindow?: number;
}

export interface Backend {
  readonly name: string;
  readonly kind: BackendKind;
  /** Base URL, for messages and /readyz. */
  readonly url: string;
  /**
   * Starts a generation. Resolves once the backend has accepted the request (HTTP status
   * received), so failures before the first byte can still become a plain HTTP error or a
   * failover; rejects with a BackendError otherwise. Iterating the result may also throw
   * a BackendError (a mid-stream error line, a dropped connection). Aborting `signal`
   * aborts the upstream request.
   */
  chat(request: BackendRequest, signal: AbortSignal): Promise<AsyncIterable<BackendPart>>;
  listModels(signal?: AbortSignal): Promise<BackendModel[]>;
  close(): Promise<void>;
}
