import { afterEach, describe, expect, it, vi } from 'vitest';
import { perMillisecond } from '../src/clock.js';

describe('perMillisecond', () => {
  afterEach(() => vi.restoreAllMocks());

  it('formats the time once per millisecond and again when it changes', () => {
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_000);
    const format = vi.fn((millis: number) => `t${millis}`);
    const current = perMillisecond(format);
    expect([current(), current(), current()]).toEqual(['t1000', 't1000', 't1000']);
    expect(format).toHaveBeenCalledTimes(1);
    now.mockReturnValue(1_001);
    expect(current()).toBe('t1001');
    expect(format).toHaveBeenCalledTimes(2);
  });
});
