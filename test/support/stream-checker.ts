import assert from 'node:assert/strict';

/**
 * Checks a Responses event stream against the ordering and shape rules of the contract
 * (reference checklist items 78–105). Every streaming test runs its events through this, so a
 * regression in the event machine fails loudly wherever it shows.
 */

export interface StreamEventLike {
  type: string;
  sequence_number: number;
  [key: string]: unknown;
}

type Json = Record<string, unknown>;

const LIFECYCLE = new Set([
  'response.created',
  'response.queued',
  'response.in_progress',
  'response.completed',
  'response.failed',
  'response.incomplete',
]);
const TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete']);

/** Event types Ferry may emit on the default stream (checklist 103). */
const KNOWN = new Set([
  ...LIFECYCLE,
  'error',
  'keepalive',
  'response.output_item.added',
  'response.output_item.done',
  'response.content_part.added',
  'response.content_part.done',
  'response.output_text.delta',
  'response.output_text.done',
  'response.refusal.delta',
  'response.refusal.done',
  'response.function_call_arguments.delta',
  'response.function_call_arguments.done',
  'response.custom_tool_call_input.delta',
  'response.custom_tool_call_input.done',
  'response.reasoning_text.delta',
  'response.reasoning_text.done',
  'response.reasoning_summary_part.added',
  'response.reasoning_summary_part.done',
  'response.reasoning_summary_text.delta',
  'response.reasoning_summary_text.done',
]);

export interface CheckedStream {
  events: StreamEventLike[];
  /** The terminal event's response. */
  final: Json;
  terminalType: string;
  /** Concatenated output text of every message item, in order. */
  text: string;
  /** Items as given by their `output_item.done` events. */
  items: Json[];
}

interface OpenItem {
  index: number;
  added: Json;
  done?: Json;
  parts: { type: string; added: Json; deltas: string; done?: string; partDone?: Json }[];
  argumentDeltas: string;
  argumentsDone?: string;
  inputDeltas: string;
  inputDone?: string;
  summaries: { deltas: string; done?: string; partDone?: Json }[];
  events: string[];
}

export interface CheckOptions {
  /** A background stream starts `queued` (checklist 82, 83). */
  background?: boolean;
  /** A resumed stream starts mid-way (no ordering checks before `startAfter`). */
  startsAfter?: number;
}

export function checkStream(rawEvents: readonly unknown[], options: CheckOptions = {}): CheckedStream {
  const events = rawEvents.filter((event) => event !== '[DONE]') as StreamEventLike[];
  const doneSentinel = rawEvents.indexOf('[DONE]');
  if (doneSentinel !== -1) assert.equal(doneSentinel, rawEvents.length - 1, '[DONE] may only come last');
  assert.ok(events.length > 0, 'the stream carried no events');

  // 81: sequence numbers start at 0 (or after the resume point) and increase by exactly one.
  const first = options.startsAfter === undefined ? 0 : options.startsAfter + 1;
  events.forEach((event, position) => {
    assert.equal(typeof event.type, 'string', `event ${position} has no type`);
    assert.equal(
      event.sequence_number,
      first + position,
      `event ${position} (${event.type}) has the wrong sequence_number`,
    );
    // 103: only known event types.
    assert.ok(KNOWN.has(event.type), `unknown event type ${event.type}`);
    // 99: no top-level error key except on error events.
    if (event.type !== 'error') assert.ok(!('error' in event), `${event.type} carries a top-level error key`);
  });

  const resumed = options.startsAfter !== undefined && options.startsAfter >= 0;
  if (!resumed) {
    // 82, 83
    const created = events[0]!;
    assert.equal(created.type, 'response.created', 'the first event must be response.created');
    const createdResponse = created.response as Json;
    assert.equal(createdResponse.status, options.background ? 'queued' : 'in_progress');
    assert.deepEqual(createdResponse.output, []);
    assert.equal(createdResponse.usage, null);
    assert.equal(events[1]?.type, options.background ? 'response.queued' : 'response.in_progress');
  }

  // 84: exactly one terminal event, and it is last.
  const terminals = events.filter((event) => TERMINAL.has(event.type));
  assert.equal(
    terminals.length,
    1,
    `expected exactly one terminal event, got ${terminals.map((e) => e.type).join(', ')}`,
  );
  const terminal = events.at(-1)!;
  assert.ok(TERMINAL.has(terminal.type), `the last event must be terminal, got ${terminal.type}`);
  const final = terminal.response as Json;

  // 87: one response id throughout.
  for (const event of events.filter((e) => LIFECYCLE.has(e.type))) {
    assert.equal((event.response as Json).id, final.id, `${event.type} names another response`);
  }

  const items: OpenItem[] = [];
  let errorSeen = false;
  for (const event of events) {
    switch (event.type) {
      case 'response.output_item.added': {
        // 88: indexes in order, no gaps.
        if (!resumed) assert.equal(event.output_index, items.length, 'output_item.added out of order');
        const item = event.item as Json;
        assert.ok(typeof item.id === 'string' && item.id, 'every item needs an id');
        if (item.type === 'message') assert.deepEqual(item.content, [], 'a message starts with no content');
        if (item.type === 'function_call') {
          assert.equal(item.arguments, '', 'a function call starts with empty arguments');
          assert.equal(item.status, 'in_progress');
          assert.ok(item.call_id && item.name, 'a function call needs call_id and name when added');
        }
        items[event.output_index as number] = {
          index: event.output_index as number,
          added: item,
          parts: [],
          argumentDeltas: '',
          inputDeltas: '',
          summaries: [],
          events: [],
        };
        break;
      }
      case 'response.output_item.done': {
        const open = itemAt(items, event, resumed);
        if (!open) break;
        assert.equal(open.done, undefined, 'output_item.done twice for one item');
        const item = event.item as Json;
        // 89: same type, id and call_id.
        assert.equal(item.type, open.added.type);
        assert.equal(item.id, open.added.id);
        assert.equal(item.call_id, open.added.call_id);
        open.done = item;
        checkItemDone(open, item, resumed);
        break;
      }
      case 'response.content_part.added': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        assert.equal(event.content_index, open.parts.length, 'content_part.added out of order');
        const part = event.part as Json;
        if (part.type === 'output_text') {
          assert.equal(part.text, '');
          assert.deepEqual(part.annotations, []);
        }
        open.parts.push({ type: String(part.type), added: part, deltas: '' });
        break;
      }
      case 'response.output_text.delta':
      case 'response.reasoning_text.delta':
      case 'response.refusal.delta': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        const part = open.parts[event.content_index as number];
        assert.ok(part, `${event.type} before its content_part.added`);
        assert.equal(part.done, undefined, `${event.type} after the part was done`);
        if (event.type === 'response.output_text.delta')
          assert.ok(Array.isArray(event.logprobs), '93: delta needs logprobs');
        part.deltas += String(event.delta);
        break;
      }
      case 'response.output_text.done':
      case 'response.reasoning_text.done':
      case 'response.refusal.done': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        const part = open.parts[event.content_index as number];
        assert.ok(part, `${event.type} before its content_part.added`);
        const text = String(event.type === 'response.refusal.done' ? event.refusal : event.text);
        // 91
        if (!resumed) assert.equal(text, part.deltas, `${event.type} differs from its deltas`);
        part.done = text;
        break;
      }
      case 'response.content_part.done': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        const part = open.parts[event.content_index as number];
        assert.ok(part, 'content_part.done before content_part.added');
        assert.notEqual(part.done, undefined, 'content_part.done before the text was done');
        part.partDone = event.part as Json;
        break;
      }
      case 'response.function_call_arguments.delta': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        assert.equal(open.argumentsDone, undefined, 'argument delta after .done');
        open.argumentDeltas += String(event.delta);
        break;
      }
      case 'response.function_call_arguments.done': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        if (!resumed)
          assert.equal(event.arguments, open.argumentDeltas, '95: argument deltas differ from .done');
        assert.equal(event.name, open.added.name);
        open.argumentsDone = String(event.arguments);
        break;
      }
      case 'response.custom_tool_call_input.delta': {
        const open = scoped(items, event, resumed);
        if (open) open.inputDeltas += String(event.delta);
        break;
      }
      case 'response.custom_tool_call_input.done': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        if (!resumed) assert.equal(event.input, open.inputDeltas);
        open.inputDone = String(event.input);
        break;
      }
      case 'response.reasoning_summary_part.added': {
        // 97
        const open = scoped(items, event, resumed);
        if (!open) break;
        assert.equal(event.summary_index, open.summaries.length, 'reasoning_summary_part.added out of order');
        assert.deepEqual(event.part, { type: 'summary_text', text: '' });
        open.summaries.push({ deltas: '' });
        break;
      }
      case 'response.reasoning_summary_text.delta':
      case 'response.reasoning_summary_text.done':
      case 'response.reasoning_summary_part.done': {
        const open = scoped(items, event, resumed);
        if (!open) break;
        const summary = open.summaries[event.summary_index as number];
        assert.ok(summary, `${event.type} before its reasoning_summary_part.added`);
        if (event.type === 'response.reasoning_summary_text.delta') {
          assert.equal(summary.done, undefined, 'summary delta after its .done');
          summary.deltas += String(event.delta);
        } else if (event.type === 'response.reasoning_summary_text.done') {
          if (!resumed) assert.equal(event.text, summary.deltas, 'summary deltas differ from .done');
          summary.done = String(event.text);
        } else {
          assert.notEqual(summary.done, undefined, 'reasoning_summary_part.done before the text was done');
          assert.deepEqual(event.part, { type: 'summary_text', text: summary.done });
          summary.partDone = event.part as Json;
        }
        break;
      }
      case 'error': {
        // 98: nested error object.
        const error = event.error as Json;
        assert.ok(error && typeof error.message === 'string', 'error events carry error.message');
        assert.ok(
          'code' in error && 'type' in error && 'param' in error,
          'error events carry type, code, param',
        );
        errorSeen = true;
        break;
      }
    }
  }

  // 89: every added item was done before the terminal event.
  for (const open of items) if (open) assert.ok(open.done, `item ${open.index} never got output_item.done`);

  // 85, 86: the terminal snapshot holds every item in its final form.
  const output = final.output as Json[];
  if (!resumed) {
    assert.equal(output.length, items.length, 'the terminal response must list every streamed item');
    items.forEach((open, index) =>
      assert.deepEqual(output[index], open.done, `item ${index} differs in the terminal snapshot`),
    );
  }
  switch (terminal.type) {
    case 'response.completed':
      assert.equal(final.status, 'completed');
      assert.ok(final.usage, '85: usage is set on completion');
      assert.equal(typeof final.completed_at, 'number');
      break;
    case 'response.incomplete':
      // 101
      assert.equal(final.status, 'incomplete');
      assert.ok(final.incomplete_details, 'an incomplete response says why');
      assert.equal(final.completed_at, null);
      break;
    case 'response.failed':
      // A cancelled background stream ends here too: the API has no response.cancelled event.
      if (final.status === 'cancelled') break;
      // 98
      assert.equal(final.status, 'failed');
      assert.ok(
        final.error && typeof (final.error as Json).message === 'string',
        'a failed response carries error',
      );
      // Ferry always precedes response.failed with an error event.
      assert.ok(errorSeen, 'response.failed must follow an error event');
      break;
  }

  const text = output
    .filter((item) => item.type === 'message')
    .flatMap((item) => item.content as Json[])
    .filter((part) => part.type === 'output_text')
    .map((part) => part.text)
    .join('');
  return { events, final, terminalType: terminal.type, text, items: items.map((open) => open.done!) };
}

function itemAt(items: OpenItem[], event: StreamEventLike, resumed: boolean): OpenItem | undefined {
  const open = items[event.output_index as number];
  if (!open && resumed) return undefined;
  assert.ok(open, `${event.type} for output_index ${String(event.output_index)} before output_item.added`);
  return open;
}

/** 92: item-scoped events name the item by id and index. */
function scoped(items: OpenItem[], event: StreamEventLike, resumed: boolean): OpenItem | undefined {
  const open = itemAt(items, event, resumed);
  if (!open) return undefined;
  assert.equal(event.item_id, open.added.id, `${event.type} names the wrong item`);
  assert.equal(open.done, undefined, `${event.type} after output_item.done`);
  open.events.push(event.type);
  const type = open.added.type;
  if (event.type.startsWith('response.output_text') || event.type.startsWith('response.refusal'))
    assert.equal(type, 'message');
  if (event.type.startsWith('response.function_call_arguments')) assert.equal(type, 'function_call');
  if (event.type.startsWith('response.custom_tool_call_input')) assert.equal(type, 'custom_tool_call');
  if (event.type.startsWith('response.reasoning')) assert.equal(type, 'reasoning');
  return open;
}

function checkItemDone(open: OpenItem, item: Json, resumed: boolean): void {
  if (item.type === 'message') {
    // 90, 91
    const content = item.content as Json[];
    if (!resumed)
      assert.equal(content.length, open.parts.length, 'message parts differ from the streamed parts');
    open.parts.forEach((part, index) => {
      assert.notEqual(part.done, undefined, `part ${index} never got its .done`);
      assert.ok(part.partDone, `part ${index} never got content_part.done`);
      if (!resumed) {
        assert.ok(part.deltas.length > 0 || part.done === '', `part ${index} had no deltas`);
        assert.equal((content[index] as Json).text ?? (content[index] as Json).refusal, part.done);
        assert.deepEqual(part.partDone, content[index]);
      }
    });
    assert.ok(['completed', 'incomplete'].includes(String(item.status)));
  }
  if (item.type === 'reasoning') {
    // 97: streamed summary parts are the item's summary.
    const summary = item.summary as Json[];
    open.summaries.forEach((part, index) => {
      assert.ok(part.partDone, `summary part ${index} never got reasoning_summary_part.done`);
      if (!resumed) assert.deepEqual(summary[index], part.partDone);
    });
    if (!resumed)
      assert.equal(summary.length, open.summaries.length, 'summary parts differ from the streamed ones');
    // 96
    const content = (item.content ?? []) as Json[];
    open.parts.forEach((part, index) => {
      assert.equal(part.type, 'reasoning_text');
      assert.notEqual(part.done, undefined, 'reasoning part never done');
      if (!resumed) assert.equal((content[index] as Json).text, part.done);
    });
  }
  if (item.type === 'function_call') {
    // 94, 95
    assert.notEqual(
      open.argumentsDone,
      undefined,
      'function call finished without function_call_arguments.done',
    );
    assert.equal(item.arguments, open.argumentsDone);
    if (!resumed) assert.ok(open.argumentDeltas.length > 0 || item.arguments === '', 'no argument deltas');
  }
  if (item.type === 'custom_tool_call') {
    assert.notEqual(
      open.inputDone,
      undefined,
      'custom tool call finished without custom_tool_call_input.done',
    );
    assert.equal(item.input, open.inputDone);
  }
}
