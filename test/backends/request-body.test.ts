import { describe, expect, it } from 'vitest';
import { RequestBodyEncoder } from '../../src/backends/request-body.js';
import type { BackendMessage } from '../../src/backends/types.js';
import { deepFreeze } from '../../src/deep-freeze.js';

function countingEncoder() {
  const converted: BackendMessage[] = [];
  const encoder = new RequestBodyEncoder((message: BackendMessage) => {
    converted.push(message);
    return { role: message.role, text: message.content };
  });
  return { encoder, converted };
}

describe('RequestBodyEncoder', () => {
  it('writes the messages in their wire form, then the other fields, as one JSON object', () => {
    const { encoder } = countingEncoder();
    const messages: BackendMessage[] = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'héllo "there"\n✓' },
    ];
    const body = encoder.encode(messages, { model: 'm', stream: true, options: { num_ctx: 8 } });
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(JSON.parse(body.toString('utf8'))).toEqual({
      messages: [
        { role: 'system', text: 'be brief' },
        { role: 'user', text: 'héllo "there"\n✓' },
      ],
      model: 'm',
      stream: true,
      options: { num_ctx: 8 },
    });
  });

  it('writes an empty list and no other fields, and never repeats the messages key', () => {
    const { encoder } = countingEncoder();
    expect(encoder.encode([], {}).toString()).toBe('{"messages":[]}');
    const body = encoder.encode([{ role: 'user', content: 'x' }], { messages: 'from options', model: 'm' });
    expect(body.toString()).toBe('{"messages":[{"role":"user","text":"x"}],"model":"m"}');
  });

  it('encodes a frozen message once, and a message that may still change every time', () => {
    const { encoder, converted } = countingEncoder();
    const earlier = deepFreeze<BackendMessage>({ role: 'assistant', content: 'stored turn' });
    const fresh: BackendMessage = { role: 'user', content: 'new turn' };
    const first = encoder.encode([earlier, fresh], { model: 'm' });
    fresh.content = 'changed';
    const second = encoder.encode([earlier, fresh], { model: 'm' });
    expect(converted.filter((message) => message === earlier)).toHaveLength(1);
    expect(converted.filter((message) => message === fresh)).toHaveLength(2);
    expect(JSON.parse(first.toString()).messages[1].text).toBe('new turn');
    expect(JSON.parse(second.toString()).messages).toEqual([
      { role: 'assistant', text: 'stored turn' },
      { role: 'user', text: 'changed' },
    ]);
  });
});
