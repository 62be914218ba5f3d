import type { ContentPart, InputItem, ToolOutputPart } from '../api/create-response.js';
import { invalidRequest, notFound } from '../api/errors.js';
import { newId, type IdPrefix } from '../api/ids.js';
import type { BackendImage, BackendMessage, BackendToolCall } from '../backends/types.js';
import { deepFreeze } from '../deep-freeze.js';
import type { StoredItem } from '../store/types.js';
import { backendToolName } from './tools/naming.js';

/**
 * Turns Responses items into the two things Ferry needs from them: the items as stored (each
 * with an id, so `input_items`, `item_reference` and later chains can find them) and the
 * conversation in the canonical backend form.
 */

type Body = Record<string, unknown>;

const ID_PREFIX: Record<string, IdPrefix> = {
  message: 'msg',
  function_call: 'fc',
  function_call_output: 'fco',
  custom_tool_call: 'ctc',
  custom_tool_call_output: 'ctco',
  reasoning: 'rs',
};

/** Maps a client tool name (and namespace) to the function name the backend sees, and back. */
export interface ToolNaming {
  toBackend(name: string, namespace: string | undefined): string;
}

const flatNaming: ToolNaming = { toBackend: backendToolName };

/** The item ids a request's `input` names itself (Ferry makes the others). */
export function namedIds(input: string | InputItem[] | null | undefined): Set<string> {
  const named = new Set<string>();
  if (Array.isArray(input))
    for (const item of input) if (typeof item.id === 'string' && item.id) named.add(item.id);
  return named;
}

/** Normalises a request's `input` into stored items; `item_reference`s are resolved by the caller. */
export function normalizeInput(input: string | InputItem[] | null | undefined): StoredItem[] {
  if (input === null || input === undefined) return [];
  if (typeof input === 'string') {
    const id = newId('msg');
    return [
      {
        id,
        body: {
          id,
          type: 'message',
          role: 'user',
          content: [{ type: 'input_text', text: input }],
          status: 'completed',
        },
      },
    ];
  }
  return input.map((item) => normalizeItem(item));
}

function normalizeItem(item: InputItem): StoredItem {
  if (item.type === 'item_reference') return { id: item.id, body: { ...item } };
  const id = typeof item.id === 'string' && item.id ? item.id : newId(ID_PREFIX[item.type] ?? 'item');
  const body: Body = { ...item, id };
  if (item.type === 'message') {
    body.content = normalizeContent(item.role, item.content);
    if (body.status === undefined || body.status === null) body.status = 'completed';
  }
  return { id, body };
}

function normalizeContent(role: string, content: string | ContentPart[]): Body[] {
  if (typeof content === 'string') {
    return [
      role === 'assistant'
        ? { type: 'output_text', text: content, annotations: [] }
        : { type: 'input_text', text: content },
    ];
  }
  return content.map((part) =>
    part.type === 'input_image' && !part.detail ? { ...part, detail: 'auto' } : { ...part },
  );
}

/**
 * Checks the new items against the chain they continue: no item id may repeat one already in
 * it, and every tool output must answer a call in the context. The chain can be thousands of
 * items long and the input a few, so the chain is scanned once for just the ids and call ids
 * the input mentions, and not at all when it mentions none: ids Ferry just made (`named` lists
 * the ones the client chose; all of them when absent) cannot be in the chain.
 */
export function checkAgainstContext(
  chain: readonly StoredItem[],
  input: readonly StoredItem[],
  references: ReadonlySet<string>,
  named?: ReadonlySet<string>,
): void {
  const inputIds = new Set<string>();
  const answeredCalls = new Set<string>();
  for (const item of input) {
    if (!references.has(item.id) && (!named || named.has(item.id))) inputIds.add(item.id);
    if (isToolOutput(item.body.type)) answeredCalls.add(String(item.body.call_id));
  }
  const seen = new Set<string>();
  const calls = new Set<string>();
  const mentioned = inputIds.size > 0 || answeredCalls.size > 0;
  for (const { id, body } of mentioned ? chain : []) {
    if (inputIds.has(id)) seen.add(id);
    if (isToolCall(body.type) && typeof body.call_id === 'string' && answeredCalls.has(body.call_id))
      calls.add(body.call_id);
  }
  for (const [index, item] of input.entries()) {
    const type = item.body.type;
    if (!references.has(item.id)) {
      if (seen.has(item.id)) {
        throw invalidRequest(
          `Duplicate item found with id ${item.id}. Remove the duplicate item from your input and try again.`,
          'input',
        );
      }
      seen.add(item.id);
    }
    if (isToolCall(type)) calls.add(String(item.body.call_id));
    if (isToolOutput(type) && !calls.has(String(item.body.call_id))) {
      throw invalidRequest(
        `No tool call found for ${String(type)} with call_id ${String(item.body.call_id)} (input[${index}]).`,
        'input',
      );
    }
  }
}

const isToolCall = (type: unknown) => type === 'function_call' || type === 'custom_tool_call';
const isToolOutput = (type: unknown) => type === 'function_call_output' || type === 'custom_tool_call_output';

/**
 * Whether an input item only points at a stored item: an `item_reference`, or a reasoning item
 * sent back with nothing but its id (what clients do when the response was stored).
 */
export function isReference(item: StoredItem): boolean {
  const body = item.body;
  if (body.type === 'item_reference') return true;
  if (body.type !== 'reasoning') return false;
  const empty = (value: unknown) => !Array.isArray(value) || value.length === 0;
  return empty(body.summary) && empty(body.content) && !body.encrypted_content;
}

/** Replaces reference items by the stored items they name. */
export function resolveReferences(input: StoredItem[], found: ReadonlyMap<string, StoredItem>): StoredItem[] {
  return input.map((item, index) => {
    if (!isReference(item)) return item;
    const stored = found.get(item.id);
    if (!stored) {
      throw notFound(
        `Item with id '${item.id}' not found. Items are not persisted when \`store\` is set to false; send the item's content again instead.`,
        `input[${index}]`,
      );
    }
    return stored;
  });
}

/** Builds the backend conversation from items, in order, after the instructions. */
export function toBackendMessages(
  items: readonly StoredItem[],
  instructions: string | null | undefined,
  naming: ToolNaming = flatNaming,
): BackendMessage[] {
  const messages: BackendMessage[] = [];
  if (instructions) messages.push({ role: 'system', content: instructions });
  const callNames = new Map<string, string>();
  let pendingReasoning = '';
  let last: BackendMessage | undefined;

  const assistant = (): Extract<BackendMessage, { role: 'assistant' }> => {
    // Tool calls right after an assistant message belong to it (one chat turn).
    if (last?.role === 'assistant') {
      // A stored item's shared message is frozen: the turn gets its own copy to add to.
      if (Object.isFrozen(last)) messages[messages.length - 1] = last = { ...last };
      return last;
    }
    const message: BackendMessage = { role: 'assistant', content: '' };
    messages.push(message);
    last = message;
    return message;
  };
  const takeReasoning = (message: Extract<BackendMessage, { role: 'assistant' }>) => {
    if (pendingReasoning) {
      message.reasoning = (message.reasoning ? `${message.reasoning}\n` : '') + pendingReasoning;
      pendingReasoning = '';
    }
  };

  for (const { body } of items) {
    switch (body.type) {
      case 'message': {
        const message = messageOf(body, pendingReasoning);
        if (message.role === 'assistant') pendingReasoning = '';
        messages.push(message);
        last = message;
        break;
      }
      case 'reasoning':
        pendingReasoning += reasoningText(body);
        break;
      case 'function_call':
      case 'custom_tool_call': {
        const message = assistant();
        takeReasoning(message);
        const name = naming.toBackend(
          String(body.name),
          typeof body.namespace === 'string' ? body.namespace : undefined,
        );
        const call: BackendToolCall = {
          id: String(body.call_id),
          name,
          arguments:
            body.type === 'function_call' ? String(body.arguments) : JSON.stringify({ input: body.input }),
        };
        (message.toolCalls ??= []).push(call);
        callNames.set(call.id, name);
        break;
      }
      case 'function_call_output':
      case 'custom_tool_call_output': {
        last = toolOutputOf(body, callNames.get(String(body.call_id)) ?? '');
        messages.push(last);
        break;
      }
      default:
        break;
    }
  }
  return messages;
}

/**
 * The messages of stored items that are frozen (a cached chain's, the same objects on every
 * follow-up), made once and frozen too, so that drivers can also encode each only once. Each
 * is kept with what it was made from besides its item (the reasoning before an assistant
 * message, the name of the call a tool output answers) and made anew if that differs.
 */
const storedMessages = new WeakMap<Body, BackendMessage>();

function remembered<M extends BackendMessage>(body: Body, message: M): M {
  if (Object.isFrozen(body)) storedMessages.set(body, deepFreeze(message));
  return message;
}

/** A `message` item as a backend message; an assistant's carries the reasoning before it. */
function messageOf(body: Body, reasoning: string): BackendMessage {
  const stored = storedMessages.get(body);
  if (stored && (stored.role !== 'assistant' || (stored.reasoning ?? '') === reasoning)) return stored;
  const role = body.role as string;
  const { text, images } = flattenContent(body.content as Body[]);
  return remembered(
    body,
    role === 'assistant'
      ? { role: 'assistant', content: text, ...(reasoning ? { reasoning } : {}) }
      : role === 'user'
        ? { role: 'user', content: text, ...(images.length ? { images } : {}) }
        : { role: 'system', content: text },
  );
}

/** A tool output item as a backend message, named after the call it answers. */
function toolOutputOf(body: Body, name: string): BackendMessage {
  const stored = storedMessages.get(body);
  if (stored?.role === 'tool' && stored.name === name) return stored;
  const output = body.output as string | ToolOutputPart[];
  const { text, images } =
    typeof output === 'string' ? { text: output, images: [] } : flattenContent(output as Body[]);
  return remembered(body, {
    role: 'tool',
    toolCallId: String(body.call_id),
    name,
    content: text,
    ...(images.length ? { images } : {}),
  });
}

function reasoningText(body: Body): string {
  const parts = (Array.isArray(body.content) && body.content.length ? body.content : body.summary) as
    Body[] | undefined;
  return (parts ?? []).map((part) => String(part.text ?? '')).join('\n');
}

function flattenContent(parts: readonly Body[]): { text: string; images: BackendImage[] } {
  const texts: string[] = [];
  const images: BackendImage[] = [];
  for (const part of parts) {
    switch (part.type) {
      case 'input_text':
      case 'output_text':
        texts.push(String(part.text));
        break;
      case 'refusal':
        texts.push(String(part.refusal));
        break;
      case 'input_image':
        if (typeof part.image_url === 'string') images.push({ url: part.image_url });
        break;
    }
  }
  return { text: texts.join('\n'), images };
}
