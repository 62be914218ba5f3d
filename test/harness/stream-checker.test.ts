import { describe, expect, it } from 'vitest';
import { CreateResponseRequest } from '../../src/api/create-response.js';
import { parseOrThrow } from '../../src/api/validation.js';
import type { StreamEvent } from '../../src/api/wire.js';
import { initialResponse } from '../../src/engine/engine.js';
import { ResponseBuilder } from '../../src/engine/response-builder.js';
import { checkStream } from '../support/stream-checker.js';

/** A valid stream with reasoning (and its summary), text and a tool call, to break in the tests below. */
function validStream(): StreamEvent[] {
  const events: StreamEvent[] = [];
  const request = parseOrThrow(CreateResponseRequest, { model: 'm', input: 'hi' });
  const builder = new ResponseBuilder(initialResponse('resp_1', request, 'm'), {
    sink: (event) => events.push(JSON.parse(JSON.stringify(event)) as StreamEvent),
    summarizeReasoning: true,
  });
  builder.created();
  builder.inProgress();
  builder.accept({ type: 'reasoning-delta', text: 'think' });
  builder.accept({ type: 'text-delta', text: 'Hi' });
  builder.accept({ type: 'text-delta', text: ' there' });
  builder.accept({ type: 'tool-call', key: '0', name: 'f', arguments: '{"a":1}' });
  builder.accept({ type: 'finish', reason: 'tool_calls' });
  builder.finish();
  builder.end();
  return events;
}

const mutations: [string, (events: StreamEvent[]) => unknown[]][] = [
  [
    'a gap in sequence numbers',
    (e) => e.map((event, i) => (i === 3 ? { ...event, sequence_number: 99 } : event)),
  ],
  [
    'response.created not first',
    (e) => [e[1]!, e[0]!, ...e.slice(2)].map((event, i) => ({ ...event, sequence_number: i })),
  ],
  [
    'a missing output_item.done',
    (e) => {
      const first = e.findIndex((event) => event.type === 'response.output_item.done');
      return renumber(e.filter((_, i) => i !== first));
    },
  ],
  ['two terminal events', (e) => renumber([...e, e.at(-1)!])],
  [
    'a text delta that differs from .done',
    (e) => e.map((event) => (event.type === 'response.output_text.delta' ? { ...event, delta: 'X' } : event)),
  ],
  [
    'an unknown event type',
    (e) => e.map((event, i) => (i === 4 ? { ...event, type: 'response.made_up' } : event)),
  ],
  [
    'a wrong item_id',
    (e) =>
      e.map((event) =>
        event.type === 'response.output_text.done' ? { ...event, item_id: 'msg_other' } : event,
      ),
  ],
  [
    'a top-level error key on a normal event',
    (e) => e.map((event, i) => (i === 2 ? { ...event, error: { message: 'x' } } : event)),
  ],
  [
    'a terminal snapshot without the items',
    (e) =>
      e.map((event, i) =>
        i === e.length - 1 ? { ...event, response: { ...(event.response as object), output: [] } } : event,
      ),
  ],
  [
    'a summary delta that differs from its .done',
    (e) =>
      e.map((event) =>
        event.type === 'response.reasoning_summary_text.delta' ? { ...event, delta: 'other' } : event,
      ),
  ],
  [
    'a summary part missing from the item',
    (e) =>
      e.map((event) =>
        event.type === 'response.output_item.done' && (event.item as { type: string }).type === 'reasoning'
          ? { ...event, item: { ...(event.item as object), summary: [] } }
          : event,
      ),
  ],
  [
    'delta without logprobs',
    (e) =>
      e.map((event) =>
        event.type === 'response.output_text.delta' ? { ...event, logprobs: undefined } : event,
      ),
  ],
];

function renumber(events: StreamEvent[]): StreamEvent[] {
  return events.map((event, i) => ({ ...event, sequence_number: i }));
}

describe('the stream checker', () => {
  it('accepts a valid stream', () => {
    expect(() => checkStream(validStream())).not.toThrow();
  });

  it.each(mutations)('rejects %s', (_name, mutate) => {
    expect(() => checkStream(mutate(validStream()))).toThrow();
  });
});
