import { describe, expect, it } from 'vitest';
import {
  decodeReasoningKey,
  generateReasoningKey,
  ReasoningCipher,
} from '../../src/engine/reasoning/cipher.js';

describe('ReasoningCipher', () => {
  const key = Buffer.alloc(32, 3);

  it('seals and opens, with a fresh IV each time', () => {
    const cipher = new ReasoningCipher([key]);
    const [a, b] = [cipher.seal('secret thoughts ✓'), cipher.seal('secret thoughts ✓')];
    expect(a).not.toBe(b);
    expect(a).not.toContain('secret');
    expect(cipher.open(a)).toBe('secret thoughts ✓');
    expect(cipher.open(b)).toBe('secret thoughts ✓');
  });

  it('refuses any changed byte, other keys, and garbage', () => {
    const cipher = new ReasoningCipher([key]);
    const sealed = Buffer.from(cipher.seal('x'), 'base64url');
    for (let index = 0; index < sealed.length; index++) {
      const changed = Buffer.from(sealed);
      changed[index]! ^= 0x80;
      expect(cipher.open(changed.toString('base64url')), `byte ${index}`).toBeUndefined();
    }
    expect(new ReasoningCipher([Buffer.alloc(32, 4)]).open(sealed.toString('base64url'))).toBeUndefined();
    expect(cipher.open('')).toBeUndefined();
    expect(cipher.open('%%%')).toBeUndefined();
  });

  it('opens blobs of previous keys after a rotation', () => {
    const old = new ReasoningCipher([key]).seal('before');
    const rotated = new ReasoningCipher([Buffer.alloc(32, 9), key]);
    expect(rotated.open(old)).toBe('before');
    expect(new ReasoningCipher([key]).open(rotated.seal('after'))).toBeUndefined();
  });

  it('reads keys as base64 or hex', () => {
    expect(decodeReasoningKey(generateReasoningKey())).toHaveLength(32);
    expect(decodeReasoningKey('ab'.repeat(32))).toEqual(Buffer.alloc(32, 0xab));
    expect(decodeReasoningKey('short')).toBeUndefined();
  });
});
