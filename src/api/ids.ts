import { randomBytes } from 'node:crypto';

/**
 * Object ids in OpenAI's style: a type prefix and random hex. Random bytes are drawn in
 * blocks so that an id costs a slice, not a syscall.
 */
const BLOCK = 4096;
let pool = randomBytes(BLOCK);
let offset = 0;

function randomHex(bytes: number): string {
  if (offset + bytes > BLOCK) {
    pool = randomBytes(BLOCK);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

export type IdPrefix = 'resp' | 'msg' | 'fc' | 'call' | 'rs' | 'ctc' | 'req' | 'fco' | 'ctco' | 'item';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomHex(prefix === 'resp' ? 24 : 16)}`;
}

export function newRequestId(): string {
  return `req_${randomHex(16)}`;
}
