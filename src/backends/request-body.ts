import type { BackendMessage } from './types.js';

const OPEN = Buffer.from('{"messages":[');
const COMMA = 0x2c;

/**
 * Builds a backend's request body as bytes, its messages from UTF-8 encoded once per message.
 *
 * A conversation continued with `previous_response_id` sends every earlier turn again on every
 * turn, and those turns reach a driver as the same frozen messages each time (the engine builds
 * them once per stored item). Encoding such a message is remembered, so a body is one copy of
 * bytes already encoded: at 1,000 turns (160 KB), JSON.stringify and the conversion to bytes
 * cost about 0.5 ms a request, the copy about 0.1 ms. A message that is not frozen (a turn's
 * new input) is encoded every time: it might still change. The bytes live as long as their
 * message, which lives as long as the chain cache keeps its item: about the item's JSON again.
 */
export class RequestBodyEncoder<Wire> {
  private readonly encoded = new WeakMap<BackendMessage, Buffer>();

  constructor(private readonly toWire: (message: BackendMessage) => Wire) {}

  /** `{"messages":[…], …fields}`: the messages in their wire form, then the other fields. */
  encode(messages: readonly BackendMessage[], fields: object): Buffer {
    const parts = messages.map((message) => this.message(message));
    // Whatever `fields` holds under "messages" would repeat the key.
    const others = JSON.stringify({ ...fields, messages: undefined });
    const tail = Buffer.from(others === '{}' ? ']}' : `],${others.slice(1)}`);
    let length = OPEN.length + Math.max(parts.length - 1, 0) + tail.length;
    for (const part of parts) length += part.length;
    // `set`, not `Buffer#copy`: Node 20's copy costs ~40 ns a call in JavaScript.
    const body = Buffer.allocUnsafe(length);
    body.set(OPEN, 0);
    let at = OPEN.length;
    for (let index = 0; index < parts.length; index++) {
      if (index > 0) body[at++] = COMMA;
      body.set(parts[index]!, at);
      at += parts[index]!.length;
    }
    body.set(tail, at);
    return body;
  }

  private message(message: BackendMessage): Buffer {
    const cached = this.encoded.get(message);
    if (cached) return cached;
    const encoded = Buffer.from(JSON.stringify(this.toWire(message)));
    if (Object.isFrozen(message)) this.encoded.set(message, encoded);
    return encoded;
  }
}
