/**
 * What a fake backend "model" says, independent of wire format. Each fake server renders a
 * scenario in its own backend's format, with that backend's quirks (Ollama sends tool calls
 * whole in one NDJSON line; OpenAI-compatible servers stream argument fragments, etc.).
 */
export type ScenarioStep =
  /** Reasoning text (Ollama `thinking`, chat `reasoning_content`/`reasoning`), streamed in pieces. */
  | { type: 'thinking'; text: string }
  /** Answer text, streamed in pieces. */
  | { type: 'text'; text: string }
  /** A tool call. `arguments` objects are serialised as the backend would. */
  | { type: 'tool_call'; name: string; arguments: Record<string, unknown> | string; id?: string }
  /** A failure after streaming began (Ollama `{"error":…}` line; an SSE data event with `error`). */
  | { type: 'error'; message: string }
  /** The connection is destroyed abruptly mid-stream. */
  | { type: 'drop' }
  /** A pause before the next chunk. */
  | { type: 'wait'; ms: number };

export interface Scenario {
  steps: ScenarioStep[];
  /** Why generation stopped; default `stop` (`tool_calls` on chat servers when calls were made). */
  finish?: 'stop' | 'length';
  /** Token counts reported at the end; default: derived from the text lengths. */
  usage?: { input: number; output: number; reasoning?: number; cached?: number };
  /** Milliseconds between streamed chunks (default 0). */
  chunkDelayMs?: number;
  /** Characters per streamed text chunk (default: one word per chunk). */
  chunkSize?: number;
  /** Answer with this HTTP status and `errorBody` instead of generating (e.g. 503 queue full, 404 model). */
  status?: number;
  errorBody?: string | Record<string, unknown>;
  /** Milliseconds to wait before sending the response headers. */
  headerDelayMs?: number;
}

/** A request the fake received, as parsed JSON, with whether the client went away before the end. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  /** Set when the client closed the connection before the fake finished answering. */
  aborted: boolean;
  /** Set when the fake finished writing its answer. */
  completed: boolean;
}

export type ScenarioHandler = (request: RecordedRequest) => Scenario;

/** The common face of every fake backend server. */
export interface FakeBackend {
  /** Base URL to configure Ferry with (Ollama: `http://127.0.0.1:PORT`; chat: `…/v1`). */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Answers the next requests with these scenarios, in order, before falling back to the handler. */
  enqueue(...scenarios: Scenario[]): void;
  /** Sets the handler used when no scenario is queued (default: `echoScenario`). */
  setHandler(handler: ScenarioHandler): void;
  /** Models reported by the listing endpoint. */
  setModels(models: string[]): void;
  /** Resolves once a request with `aborted` set has been seen (bounded wait). */
  waitForAbort(timeoutMs?: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

/** Default behaviour: answer `Echo: <last user text>`, so tests can see what the model was sent. */
export function echoScenario(request: RecordedRequest): Scenario {
  const messages = (request.body.messages as { role: string; content: unknown }[] | undefined) ?? [];
  const lastUser = [...messages].reverse().find((message) => message.role === 'user');
  const content = lastUser?.content;
  const text =
    typeof content === 'string'
      ? content
      : Array.isArray(content)
        ? content
            .map((part: { type?: string; text?: string }) => (part.type === 'text' ? (part.text ?? '') : ''))
            .join('')
        : '';
  return { steps: [{ type: 'text', text: `Echo: ${text}` }] };
}
