import { randomBytes } from 'node:crypto';

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

/** Hex digits of the millisecond timestamp at the front of an id (enough until the year 10889). */
const TIME_DIGITS = 12;

export function newId(prefix: IdPrefix): string {
  const time = Date.now().toString(16).padStart(TIME_DIGITS, '0');
  // 48 hex digits in all for responses, 32 for the rest, as before the time prefix.
  return `${prefix}_${time}${randomHex(prefix === 'resp' ? 18 : 10)}`;
}

export function newRequestId(): string {
  return `req_${randomHex(16)}`;
}
