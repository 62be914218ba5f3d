import { describe, expect, it } from 'vitest';
import type { ResponseObject } from '../../src/api/wire.js';
import { ChainCache, type ItemText } from '../../src/store/chain-cache.js';

const body = (id: string) => ({ id, type: 'message', content: [{ text: id }] });
const item = (id: string): ItemText => ({ id, text: JSON.stringify(body(id)) });
const stored = (id: string, ancestors: string[]) => ({
  id,
  ancestors,
  responseJson: JSON.stringify({ id, status: 'completed' }),
});
/** A conversation's first turn as its first follow-up finds it: loaded from the database and remembered. */
const remembered = (cache: ChainCache, id: string, items: ItemText[]) =>
  cache.remember('t', { responseJson: stored(id, []).responseJson, path: [id], items }, cache.generation);

describe('ChainCache', () => {
  it('extends a cached chain by the new turn', () => {
    const cache = new ChainCache();
    remembered(cache, 'r1', [item('u1'), item('a1')]);
    cache.extend('t', stored('r2', ['r1']), [item('u2')], [item('a2')]);
    const chain = cache.get('t', 'r2')!;
    expect(chain.path).toEqual(['r1', 'r2']);
    expect(chain.items).toEqual(['u1', 'a1', 'u2', 'a2'].map((id) => ({ id, body: body(id) })));
    expect((chain.response as ResponseObject).id).toBe('r2');
    expect(cache.get('other-tenant', 'r2')).toBeUndefined();
  });

  it('does not keep the first turn of a conversation until a follow-up loads it', () => {
    const cache = new ChainCache();
    cache.extend('t', stored('r1', []), [item('u1')], [item('a1')]);
    expect(cache.get('t', 'r1')).toBeUndefined();
    // Nor a second turn built on it, which would need r1's items.
    cache.extend('t', stored('r2', ['r1']), [item('u2')], [item('a2')]);
    expect(cache.get('t', 'r2')).toBeUndefined();
  });

  it('does not guess a chain whose previous response it does not hold', () => {
    const cache = new ChainCache();
    cache.extend('t', stored('r2', ['r1']), [item('u2')], [item('a2')]);
    expect(cache.get('t', 'r2')).toBeUndefined();
    // Nor one whose recorded ancestry differs from the cached chain's.
    remembered(cache, 'r1', [item('u1'), item('a1')]);
    cache.extend('t', stored('r3', ['r0', 'r1']), [item('u3')], []);
    expect(cache.get('t', 'r3')).toBeUndefined();
  });

  it('drops a chain read under another count of deletions, and extends one under its own', () => {
    const cache = new ChainCache();
    const chain = { responseJson: stored('r1', []).responseJson, path: ['r1'], items: [item('u1')] };
    cache.remember('t', { ...chain, deletions: 4 }, cache.generation);
    cache.extend('t', stored('r2', ['r1']), [item('u2')], []);
    expect(cache.get('t', 'r2', 4)?.items).toHaveLength(2);
    expect(cache.get('t', 'r1', 5)).toBeUndefined();
    // Dropped, not only hidden: the old count no longer finds it either.
    expect(cache.get('t', 'r1', 4)).toBeUndefined();
    expect(cache.get('t', 'r2', 4)).toBeDefined();
  });

  it('does not remember a load that raced a deletion', () => {
    const cache = new ChainCache();
    const chain = { responseJson: '{"id":"r1"}', path: ['r1'], items: [item('u1')] };
    const generation = cache.generation;
    cache.invalidateLoads();
    cache.remember('t', chain, generation);
    expect(cache.get('t', 'r1')).toBeUndefined();
    cache.remember('t', chain, cache.generation);
    expect(cache.get('t', 'r1')?.items).toEqual([{ id: 'u1', body: body('u1') }]);
    cache.clear();
    expect(cache.get('t', 'r1')).toBeUndefined();
  });

  it('stays within its budget of JSON characters, evicting the least recently used chain', () => {
    const chainSize = stored('a', []).responseJson.length + 2 * item('a1').text.length;
    const cache = new ChainCache(2 * chainSize + 10);
    remembered(cache, 'a', [item('a1'), item('a2')]);
    remembered(cache, 'b', [item('b1'), item('b2')]);
    expect(cache.get('t', 'a')).toBeDefined(); // now b is the least recently used
    remembered(cache, 'c', [item('c1'), item('c2')]);
    expect(cache.get('t', 'b')).toBeUndefined();
    expect(cache.get('t', 'a')).toBeDefined();
    expect(cache.get('t', 'c')).toBeDefined();
    // A chain larger than the whole budget is not kept at all.
    remembered(
      cache,
      'd',
      [1, 2, 3, 4, 5, 6].map((n) => item(`d${n}`)),
    );
    expect(cache.get('t', 'd')).toBeUndefined();
    expect(cache.get('t', 'c')).toBeDefined();
  });

  it('parses an item once, hands it out frozen, and a fresh response object each time', () => {
    const cache = new ChainCache();
    remembered(cache, 'r1', [item('u1')]);
    const first = cache.get('t', 'r1')!;
    expect(Object.isFrozen(first.items[0]!.body)).toBe(true);
    first.response.status = 'failed';
    const second = cache.get('t', 'r1')!;
    expect(second.response.status).toBe('completed');
    expect(second.items[0]).toBe(first.items[0]);
    // The list itself is built once and shared, frozen.
    expect(second.items).toBe(first.items);
    expect(Object.isFrozen(second.items)).toBe(true);
    // A chain that continues this one shares its parsed items.
    cache.extend('t', stored('r2', ['r1']), [item('u2')], []);
    expect(cache.get('t', 'r2')!.items[0]).toBe(first.items[0]);
  });
});
