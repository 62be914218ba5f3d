import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { BackendError } from '../errors.js';
import type { Backend, BackendModel, BackendPart, BackendRequest } from '../types.js';
import {
  extractErrorMessage,
  releaseStreamedBody,
  streamedChunks,
  UpstreamClient,
  type UpstreamOptions,
  type UpstreamResponse,
} from '../upstream.js';
import { ChatPartMapper } from './parts.js';
import { encodeChatRequest } from './request.js';
import type { ChatCompletionChunk, ChatModelList } from './wire.js';

/**
 * Any OpenAI-compatible Chat Completions server: llama.cpp `llama-server`, vLLM, LM Studio,
 * Ollama's `/v1`. The configured URL is the API base (`http://host:8000/v1`); a URL without a
 * path gets `/v1`.
 */
export class OpenAIChatBackend implements Backend {
  readonly kind = 'openai-chat' as const;
  readonly name: string;
  readonly url: string;
  private readonly client: UpstreamClient;

  constructor(name: string, url: string, options: UpstreamOptions & { apiKey?: string }) {
    this.name = name;
    this.url = url;
    const base = new URL(url);
    if (base.pathname === '/' || base.pathname === '') base.pathname = '/v1';
    const headers = { ...options.headers };
    if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
    this.client = new UpstreamClient(name, base.toString(), { ...options, headers });
  }

  async chat(request: BackendRequest, signal: AbortSignal): Promise<AsyncIterable<BackendPart>> {
    const response = await this.client.request('POST', '/chat/completions', {
      body: encodeChatRequest(request),
      signal,
      headers: request.stream ? { accept: 'text/event-stream' } : {},
      whole: !request.stream,
    });
    if (response.status !== 200) {
      throw this.client.statusError(
        response.status,
        await this.client.readText(response, signal),
        response.headers,
      );
    }
    return request.stream ? this.streamParts(response, signal) : this.wholeParts(response, signal);
  }

  private async *wholeParts(response: UpstreamResponse, signal: AbortSignal): AsyncGenerator<BackendPart> {
    const chunk = this.parse(await this.client.readText(response, signal));
    if (chunk.error) throw this.streamError(chunk.error);
    const mapper = new ChatPartMapper();
    yield* mapper.map(chunk);
    yield* mapper.end();
  }

  private async *streamParts(response: UpstreamResponse, signal: AbortSignal): AsyncGenerator<BackendPart> {
    const mapper = new ChatPartMapper();
    const pending: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => pending.push(event) });
    let done = false;
    try {
      const decoder = new TextDecoder();
      for await (const chunk of streamedChunks(response.body)) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        for (const event of pending) {
          if (event.data === '[DONE]') {
            done = true;
            break;
          }
          const data = this.parse(event.data);
          if (data.error || event.event === 'error') throw this.streamError(data.error ?? data);
          yield* mapper.map(data);
        }
        pending.length = 0;
        if (done) break;
      }
    } catch (error) {
      throw this.client.translate(error, signal);
    } finally {
      releaseStreamedBody(response.body, done);
    }
    // Some servers (llama-box) never send [DONE]; a finish reason is what proves completion.
    if (!mapper.finished) {
      throw new BackendError(
        this.name,
        'upstream_error',
        `${this.client.label()} ended the stream before it was done.`,
      );
    }
    yield* mapper.end();
  }

  private parse(text: string): ChatCompletionChunk {
    try {
      return JSON.parse(text) as ChatCompletionChunk;
    } catch (error) {
      throw new BackendError(
        this.name,
        'upstream_error',
        `${this.client.label()} sent data that is not JSON.`,
        {
          cause: error,
        },
      );
    }
  }

  private streamError(error: unknown): BackendError {
    const message = extractErrorMessage(JSON.stringify({ error })) ?? 'unknown error';
    return new BackendError(this.name, 'upstream_error', `${this.client.label()}: ${message}`);
  }

  async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
    const list = await this.client.json<ChatModelList>('GET', '/models', undefined, signal);
    return (list.data ?? []).map((model) => ({
      id: model.id,
      ...(model.created !== undefined ? { created: model.created } : {}),
      ...(model.owned_by !== undefined ? { ownedBy: model.owned_by } : {}),
    }));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
