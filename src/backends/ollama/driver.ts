import { BackendError } from '../errors.js';
import type { Backend, BackendModel, BackendPart, BackendRequest } from '../types.js';
import {
  readLines,
  releaseStreamedBody,
  streamedChunks,
  UpstreamClient,
  type UpstreamOptions,
  type UpstreamResponse,
} from '../upstream.js';
import { OllamaPartMapper } from './parts.js';
import { encodeOllamaRequest } from './request.js';
import type { OllamaChatChunk, OllamaTags } from './wire.js';

/** Ollama's native API: `/api/chat` (NDJSON when streaming) and `/api/tags`. */
export class OllamaBackend implements Backend {
  readonly kind = 'ollama' as const;
  readonly name: string;
  readonly url: string;
  private readonly client: UpstreamClient;

  constructor(name: string, url: string, options: UpstreamOptions) {
    this.name = name;
    this.url = url;
    this.client = new UpstreamClient(name, url, options);
  }

  async chat(request: BackendRequest, signal: AbortSignal): Promise<AsyncIterable<BackendPart>> {
    const response = await this.client.request('POST', '/api/chat', {
      body: encodeOllamaRequest(request),
      signal,
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
    yield* new OllamaPartMapper().map({ ...chunk, done: true });
  }

  private async *streamParts(response: UpstreamResponse, signal: AbortSignal): AsyncGenerator<BackendPart> {
    const mapper = new OllamaPartMapper();
    let finished = false;
    try {
      for await (const line of readLines(streamedChunks(response.body))) {
        const chunk = this.parse(line);
        // After the first byte Ollama keeps status 200 and reports failures as one more line.
        if (chunk.error) throw this.streamError(chunk.error);
        yield* mapper.map(chunk);
        if (chunk.done) {
          finished = true;
          break;
        }
      }
    } catch (error) {
      throw this.client.translate(error, signal);
    } finally {
      releaseStreamedBody(response.body, finished);
    }
    if (!finished) {
      throw new BackendError(
        this.name,
        'upstream_error',
        `${this.client.label()} ended the stream before it was done.`,
      );
    }
  }

  private parse(text: string): OllamaChatChunk {
    try {
      return JSON.parse(text) as OllamaChatChunk;
    } catch (error) {
      throw new BackendError(
        this.name,
        'upstream_error',
        `${this.client.label()} sent a line that is not JSON.`,
        {
          cause: error,
        },
      );
    }
  }

  private streamError(message: string): BackendError {
    return new BackendError(this.name, 'upstream_error', `${this.client.label()}: ${message}`);
  }

  async listModels(signal?: AbortSignal): Promise<BackendModel[]> {
    const tags = await this.client.json<OllamaTags>('GET', '/api/tags', undefined, signal);
    return (tags.models ?? []).map((model) => {
      const modified = model.modified_at ? Date.parse(model.modified_at) : NaN;
      return {
        id: model.name,
        ownedBy: 'ollama',
        ...(Number.isFinite(modified) ? { created: Math.floor(modified / 1000) } : {}),
      };
    });
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
