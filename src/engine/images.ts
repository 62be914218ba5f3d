import { request } from 'undici';
import { ApiError, invalidRequest } from '../api/errors.js';
import type { BackendMessage } from '../backends/types.js';

const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 15_000;

/**
 * Ollama only takes images as base64, so `https://` image URLs are downloaded here and turned
 * into data: URLs (bounded in size and time). OpenAI-compatible servers fetch URLs themselves
 * and get them unchanged.
 */
export async function inlineImageUrls(
  messages: BackendMessage[],
  signal: AbortSignal,
): Promise<BackendMessage[]> {
  const remote = new Set<string>();
  for (const message of messages) {
    if (message.role !== 'user' && message.role !== 'tool') continue;
    if (!message.images) continue;
    for (const image of message.images) if (!image.url.startsWith('data:')) remote.add(image.url);
  }
  if (remote.size === 0) return messages;
  const inlined = new Map(
    await Promise.all([...remote].map(async (url) => [url, await download(url, signal)] as const)),
  );
  return messages.map((message) =>
    (message.role === 'user' || message.role === 'tool') && message.images
      ? { ...message, images: message.images.map((image) => ({ url: inlined.get(image.url) ?? image.url })) }
      : message,
  );
}

async function download(url: string, signal: AbortSignal): Promise<string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidRequest(
      `The image URL '${url.slice(0, 100)}' is not a valid URL.`,
      'input',
      'invalid_image_url',
    );
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw invalidRequest(
      `Image URLs must be http(s) or data: URLs, got '${parsed.protocol}'.`,
      'input',
      'invalid_image_url',
    );
  }
  try {
    const response = await request(parsed, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(FETCH_TIMEOUT_MS)]),
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw invalidRequest(
        `The image at ${parsed.origin}${parsed.pathname} could not be downloaded (HTTP ${response.statusCode}).`,
        'input',
        'failed_to_download_image',
      );
    }
    const declared = Number(response.headers['content-length'] ?? 0);
    if (declared > MAX_IMAGE_BYTES) {
      await response.body.dump();
      throw imageTooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_IMAGE_BYTES) {
        response.body.destroy();
        throw imageTooLarge();
      }
      chunks.push(chunk as Buffer);
    }
    const type = String(response.headers['content-type'] ?? 'image/png')
      .split(';')[0]!
      .trim();
    return `data:${type};base64,${Buffer.concat(chunks).toString('base64')}`;
  } catch (error) {
    if (error instanceof ApiError || signal.aborted) throw error;
    throw invalidRequest(
      `The image at ${parsed.origin}${parsed.pathname} could not be downloaded: ${(error as Error).message}`,
      'input',
      'failed_to_download_image',
    );
  }
}

function imageTooLarge(): ApiError {
  return invalidRequest(
    `An image is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MB.`,
    'input',
    'image_too_large',
  );
}
