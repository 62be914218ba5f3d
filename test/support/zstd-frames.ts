/**
 * Hand-built zstd frames for tests (Node 20 has no zstd encoder). Raw and RLE blocks are
 * part of the zstd format (RFC 8878 §3.1.1.2), so every decoder must accept them.
 */
const MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** No content size, no checksum; window 128 KiB (the largest block). */
const HEADER = Buffer.from([0x00, 0x38]);
const MAX_BLOCK = 128 * 1024;

function blockHeader(last: boolean, type: 0 | 1, size: number): Buffer {
  const value = (last ? 1 : 0) | (type << 1) | (size << 3);
  return Buffer.from([value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff]);
}

/** `data` stored uncompressed in a zstd frame. */
export function zstdStored(data: Buffer): Buffer {
  const parts: Buffer[] = [MAGIC, HEADER];
  for (let offset = 0; offset < data.length || offset === 0; offset += MAX_BLOCK) {
    const chunk = data.subarray(offset, offset + MAX_BLOCK);
    parts.push(blockHeader(offset + MAX_BLOCK >= data.length, 0, chunk.length), chunk);
    if (data.length === 0) break;
  }
  return Buffer.concat(parts);
}

/** A tiny frame that expands to `size` copies of `byte`: a decompression bomb. */
export function zstdBomb(size: number, byte = 0x20): Buffer {
  const parts: Buffer[] = [MAGIC, HEADER];
  for (let remaining = size; remaining > 0; remaining -= MAX_BLOCK) {
    const chunk = Math.min(remaining, MAX_BLOCK);
    parts.push(blockHeader(remaining <= MAX_BLOCK, 1, chunk), Buffer.from([byte]));
  }
  return Buffer.concat(parts);
}
