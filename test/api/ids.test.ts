import { describe, expect, it } from 'vitest';
import { newId } from '../../src/api/ids.js';

describe('newId', () => {
  it('keeps OpenAI-style lengths: a prefix and 48 hex digits for responses, 32 for items', () => {
    expect(newId('resp')).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(newId('msg')).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(newId('fc')).toMatch(/^fc_[0-9a-f]{32}$/);
  });

  it('begins with the creation time, so ids made later sort after (database indexes stay append-mostly)', () => {
    const before = Date.now();
    const id = newId('resp');
    const millis = parseInt(id.slice('resp_'.length, 'resp_'.length + 12), 16);
    expect(millis).toBeGreaterThanOrEqual(before);
    expect(millis).toBeLessThanOrEqual(Date.now());
    const earlier = `resp_${(before - 1).toString(16).padStart(12, '0')}${'f'.repeat(36)}`;
    expect(earlier < id).toBe(true);
  });

  it('differs within the same millisecond', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId('msg')));
    expect(ids.size).toBe(10_000);
  });
});
