import { describe, expect, it } from 'vitest';
import type { ApiError } from '../../src/api/errors.js';
import { deepFreeze } from '../../src/deep-freeze.js';
import { checkAgainstContext, namedIds, toBackendMessages } from '../../src/engine/conversation.js';
import type { StoredItem } from '../../src/store/types.js';

const message = (id: string): StoredItem => ({
  id,
  body: { id, type: 'message', role: 'user', content: [] },
});
const call = (id: string, callId: string): StoredItem => ({
  id,
  body: { id, type: 'function_call', call_id: callId, name: 'f', arguments: '{}' },
});
const output = (id: string, callId: string): StoredItem => ({
  id,
  body: { id, type: 'function_call_output', call_id: callId, output: 'ok' },
});

function refusal(run: () => void): ApiError {
  try {
    run();
  } catch (error) {
    return error as ApiError;
  }
  throw new Error('expected a refusal');
}

describe('checkAgainstContext', () => {
  const chain = [message('msg_1'), call('fc_1', 'call_1'), output('fco_1', 'call_1'), message('msg_2')];

  it('accepts new items, and tool outputs answering a call in the chain or earlier in the input', () => {
    expect(() =>
      checkAgainstContext(
        chain,
        [output('fco_2', 'call_1'), call('fc_2', 'call_2'), output('fco_3', 'call_2'), message('msg_3')],
        new Set(),
      ),
    ).not.toThrow();
  });

  it('refuses an item whose id is already in the chain, or twice in the input', () => {
    const inChain = refusal(() => checkAgainstContext(chain, [message('msg_2')], new Set()));
    expect(inChain.status).toBe(400);
    expect(inChain.message).toBe(
      'Duplicate item found with id msg_2. Remove the duplicate item from your input and try again.',
    );
    expect(inChain.param).toBe('input');
    const twice = refusal(() => checkAgainstContext(chain, [message('msg_9'), message('msg_9')], new Set()));
    expect(twice.message).toMatch(/Duplicate item found with id msg_9/);
  });

  it('lets a reference name an item of the chain', () => {
    expect(() => checkAgainstContext(chain, [message('msg_1')], new Set(['msg_1']))).not.toThrow();
  });

  it('leaves the chain unread when the input names no id of its own and answers no call', () => {
    const unreadable = new Proxy(chain, {
      get(target, key, receiver) {
        if (key === Symbol.iterator) throw new Error('the chain was read');
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    // msg_2 is in the chain, but Ferry made this one (the client named no id): it cannot repeat.
    expect(() => checkAgainstContext(unreadable, [message('msg_new')], new Set(), new Set())).not.toThrow();
    expect(() => checkAgainstContext(unreadable, [message('msg_2')], new Set(), new Set(['msg_2']))).toThrow(
      'the chain was read',
    );
    expect(namedIds('hi')).toEqual(new Set());
    expect(
      namedIds([
        { type: 'message', role: 'user', content: 'a', id: 'msg_mine' },
        { type: 'message', role: 'user', content: 'b' },
      ]),
    ).toEqual(new Set(['msg_mine']));
  });

  it('refuses a tool output that answers no call, naming its place in the input', () => {
    const error = refusal(() =>
      checkAgainstContext(chain, [message('msg_3'), output('fco_2', 'call_missing')], new Set()),
    );
    expect(error.status).toBe(400);
    expect(error.message).toBe(
      'No tool call found for function_call_output with call_id call_missing (input[1]).',
    );
    expect(error.param).toBe('input');
    // A call that comes after its output in the input does not count.
    const late = refusal(() =>
      checkAgainstContext([], [output('fco_4', 'call_4'), call('fc_4', 'call_4')], new Set()),
    );
    expect(late.message).toMatch(/call_id call_4 \(input\[0\]\)/);
  });
});

describe('toBackendMessages over stored items', () => {
  const said = (id: string, role: string, text: string): StoredItem => ({
    id,
    body: { id, type: 'message', role, content: [{ type: 'input_text', text }] },
  });
  const reasoning = (id: string, text: string): StoredItem => ({
    id,
    body: { id, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text }] },
  });

  it('hands out the same frozen message for a frozen item on every turn, and fresh ones otherwise', () => {
    const stored = deepFreeze([said('msg_1', 'user', 'hi'), said('msg_2', 'assistant', 'hello')]);
    const first = toBackendMessages([...stored, said('msg_3', 'user', 'again')], 'be brief');
    const second = toBackendMessages([...stored, said('msg_4', 'user', 'more')], 'be brief');
    expect(first).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
      { role: 'user', content: 'again' },
    ]);
    expect(second[1]).toBe(first[1]);
    expect(second[2]).toBe(first[2]);
    expect(Object.isFrozen(first[2])).toBe(true);
    expect(Object.isFrozen(first[3])).toBe(false);
    expect(second[3]).toEqual({ role: 'user', content: 'more' });
  });

  it('gives tool calls after a stored assistant message their own copy of it', () => {
    const stored = deepFreeze([said('msg_1', 'user', 'hi'), said('msg_2', 'assistant', 'let me look')]);
    const plain = toBackendMessages(stored, undefined);
    const withCall = toBackendMessages([...stored, call('fc_1', 'call_1')], undefined);
    expect(withCall[1]).toEqual({
      role: 'assistant',
      content: 'let me look',
      toolCalls: [{ id: 'call_1', name: 'f', arguments: '{}' }],
    });
    expect(plain[1]).toEqual({ role: 'assistant', content: 'let me look' });
    expect(toBackendMessages(stored, undefined)[1]).toBe(plain[1]);
  });

  it('carries the reasoning before a stored assistant message, whatever came before it last time', () => {
    const answer = deepFreeze(said('msg_2', 'assistant', 'four'));
    const thought = deepFreeze(reasoning('rs_1', '2+2'));
    expect(toBackendMessages([thought, answer], undefined)).toEqual([
      { role: 'assistant', content: 'four', reasoning: '2+2' },
    ]);
    expect(toBackendMessages([answer], undefined)).toEqual([{ role: 'assistant', content: 'four' }]);
  });

  it('names a stored tool output after the call it answers', () => {
    const answered = deepFreeze(output('fco_1', 'call_1'));
    expect(toBackendMessages([call('fc_1', 'call_1'), answered], undefined)[1]).toMatchObject({
      role: 'tool',
      name: 'f',
      content: 'ok',
    });
    const renamed = { ...call('fc_1', 'call_1'), body: { ...call('fc_1', 'call_1').body, name: 'g' } };
    expect(toBackendMessages([renamed, answered], undefined)[1]).toMatchObject({ name: 'g' });
  });
});
