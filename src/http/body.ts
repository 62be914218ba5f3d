import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { Decompress } from 'fzstd';
import { ApiError, invalidRequest } from '../api/errors.js';

/**
 * Request bodies: optionally compressed (Codex sends zstd; gzip, deflate and br are accepted
 * too), always JSON. Decompression is capped so a small "zip bomb" cannot exhaust memory.
 */
export function decodeBody(raw: Buffer, encoding: string | undefined, maxBytes: number): Buffer {
  const coding = encoding?.trim().toLowerCase();
  if (!coding || coding === 'identity') return raw;
  try {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        return gunzipSync(raw, { maxOutputLength: maxBytes });
      case 'deflate':
        return inflateSync(raw, { maxOutputLength: maxBytes });
      case 'br':
        return brotliDecompressSync(raw, { maxOutputLength: maxBytes });
      case 'zstd':
        return zstdDecompress(raw, maxBytes);
      default:
        throw new ApiError(
          415,
          `Unsupported Content-Encoding '${encoding}'. Use gzip, deflate, br or zstd.`,
          {
            code: 'unsupported_content_encoding',
          },
        );
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof TooLarge)
      throw tooLarge(maxBytes, true);
    throw invalidRequest(
      `The request body could not be decompressed as ${coding}.`,
      null,
      'invalid_body_encoding',
    );
  }
}

class TooLarge extends Error {}

function zstdDecompress(raw: Buffer, maxBytes: number): Buffer {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const stream = new Decompress((chunk) => {
    size += chunk.length;
    if (size > maxBytes) throw new TooLarge();
    chunks.push(chunk);
  });
  stream.push(raw, true);
  return Buffer.concat(chunks, size);
}

export function tooLarge(maxBytes: number, decompressed = false): ApiError {
  return new ApiError(
    413,
    `The request body is too large${decompressed ? ' once decompressed' : ''}: the limit is ${maxBytes} bytes.`,
    { code: 'request_too_large' },
  );
}

export function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw invalidRequest(
      'We could not parse the JSON body of your request. The API expects a JSON payload, but what was sent was not valid JSON.',
      null,
      'invalid_json',
    );
  }
}
