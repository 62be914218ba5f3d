import { randomBytes } from 'node:crypto';
import { perMillisecond } from '../clock.js';

/**
 * Object ids in OpenAI's style: a type prefix and hex, whose first 12 digits are the creation
 * time in milliseconds (OpenAI's ids also begin with their creation time) and the rest random.
 * Time-ordered ids keep the database's indexes append-mostly: a random id lands on a random page
 * of a large B-tree, and every such page is rewritten at commit. Random bytes are drawn in blocks
 * so that an id costs a slice, not a syscall.
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

/** The millisecond timestamp at the front of an id, in 12 hex digits (enough until the year 10889). */
const timeHex = perMillisecond((millis) => millis.toString(16).padStart(12, '0'));

export function newId(prefix: IdPrefix): string {
  // 48 hex digits in all for responses, 32 for the rest, as before the time prefix.
  return `${prefix}_${timeHex()}${randomHex(prefix === 'resp' ? 18 : 10)}`;
}

export function newRequestId(): string {
  return `req_${randomHex(16)}`;
}
