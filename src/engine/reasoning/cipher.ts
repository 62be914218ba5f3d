import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { invalidRequest } from '../../api/errors.js';
import type { StoredItem } from '../../store/types.js';

/**
 * `encrypted_content` of reasoning items: the model's reasoning, sealed so that a client can
 * carry it between turns (Codex sends `store: false` and replays every item) and only this
 * deployment can open it. AES-256-GCM authenticates as it encrypts, so a tampered or foreign
 * blob is refused instead of being fed to the model.
 *
 * Layout (base64url): version (1 byte) · key id (4 bytes) · IV (12) · tag (16) · ciphertext.
 * The key id lets a rotated deployment still open blobs sealed with a previous key.
 */
const VERSION = 1;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + IV_BYTES + TAG_BYTES;
/** Binds blobs to their purpose: no other Ferry ciphertext opens as reasoning. */
const CONTEXT = Buffer.from('ferry:reasoning:v1');

export class ReasoningCipher {
  private readonly current: { id: Buffer; key: Buffer };
  private readonly byId = new Map<string, Buffer>();

  /** `keys[0]` seals; every key opens. Each key is 32 bytes. */
  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error('ReasoningCipher needs at least one key.');
    for (const key of keys) {
      if (key.length !== 32) throw new Error('Reasoning encryption keys must be 32 bytes.');
      const id = keyId(key);
      if (!this.byId.has(id.toString('hex'))) this.byId.set(id.toString('hex'), key);
    }
    this.current = { id: keyId(keys[0]!), key: keys[0]! };
  }

  seal(reasoning: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(CONTEXT);
    const payload = Buffer.from(JSON.stringify({ text: reasoning }), 'utf8');
    const body = Buffer.concat([cipher.update(payload), cipher.final()]);
    const header = Buffer.concat([Buffer.from([VERSION]), this.current.id, iv, cipher.getAuthTag()]);
    return Buffer.concat([header, body]).toString('base64url');
  }

  /** The reasoning sealed in `blob`, or undefined when it is not an authentic blob of this deployment. */
  open(blob: string): string | undefined {
    const data = Buffer.from(blob, 'base64url');
    if (data.length < HEADER_BYTES || data[0] !== VERSION) return undefined;
    const key = this.byId.get(data.subarray(1, 1 + KEY_ID_BYTES).toString('hex'));
    if (!key) return undefined;
    const iv = data.subarray(1 + KEY_ID_BYTES, 1 + KEY_ID_BYTES + IV_BYTES);
    const tag = data.subarray(1 + KEY_ID_BYTES + IV_BYTES, HEADER_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(CONTEXT);
      decipher.setAuthTag(tag);
      const payload = Buffer.concat([decipher.update(data.subarray(HEADER_BYTES)), decipher.final()]);
      const value = JSON.parse(payload.toString('utf8')) as { text?: unknown };
      return typeof value.text === 'string' ? value.text : undefined;
    } catch {
      return undefined;
    }
  }
}

function keyId(key: Buffer): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES);
}

/** A new random key, base64 (what `reasoningKey` takes). */
export function generateReasoningKey(): string {
  return randomBytes(32).toString('base64');
}

/** Reads a configured key: 32 bytes as base64 (44 characters) or hex (64 characters). */
export function decodeReasoningKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, 'hex')
    : Buffer.from(trimmed, 'base64');
  return key.length === 32 ? key : undefined;
}

/**
 * Input reasoning items that carry `encrypted_content`: opened, and their reasoning put back as
 * `reasoning_text` content for the backend conversation. The stored items stay as the client
 * sent them. A blob that does not open is a 400 naming the item.
 */
export function restoreEncryptedReasoning(items: StoredItem[], cipher: ReasoningCipher): StoredItem[] {
  return items.map((item, index) => {
    const { body } = item;
    if (body.type !== 'reasoning' || typeof body.encrypted_content !== 'string' || !body.encrypted_content)
      return item;
    const text = cipher.open(body.encrypted_content);
    if (text === undefined) {
      throw invalidRequest(
        `The encrypted_content of reasoning item '${item.id}' could not be verified: it was altered, or it was not produced by this deployment.`,
        `input[${index}].encrypted_content`,
        'invalid_encrypted_content',
      );
    }
    return { id: item.id, body: { ...body, content: [{ type: 'reasoning_text', text }] } };
  });
}
