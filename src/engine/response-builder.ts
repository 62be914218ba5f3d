import { newId } from '../api/ids.js';
import type {
  CustomToolCallItem,
  FunctionCallItem,
  ItemStatus,
  MessageItem,
  OutputItem,
  OutputTextPart,
  ReasoningItem,
  ReasoningTextPart,
  ResponseErrorInfo,
  ResponseObject,
  ResponseUsage,
  StreamEvent,
  SummaryTextPart,
} from '../api/wire.js';
import { isFinished } from '../api/wire.js';
import type { BackendPart, BackendUsage, FinishReason } from '../backends/types.js';
import { estimateTextTokens } from './tokens.js';

/** Receives each event at the moment it happens; it must serialise it before returning. */
export type EventSink = (event: StreamEvent) => void;

/**
 * How a backend tool call becomes an output item: a function call (possibly in a namespace) or
 * a custom tool call. Without a shaper, calls are plain function calls streamed as they come.
 */
export interface ToolCallShaper {
  /** Decides, when a call starts, its client-facing name and whether its deltas may stream. */
  start(backendName: string): { name: string; namespace?: string; stream: boolean };
  /** Shapes the complete call (a buffered call may become a custom tool call here). */
  finish(call: FunctionCallItem): FunctionCallItem | CustomToolCallItem;
}

export interface StreamErrorInfo {
  type: string;
  code: string;
  message: string;
  param: string | null;
}

interface CallState {
  key: string;
  item: FunctionCallItem;
  outputIndex: number;
  /** Argument fragments received while another call was being streamed. */
  buffered: string[];
  ended: boolean;
  announced: boolean;
  streamed: boolean;
}

const now = () => Math.floor(Date.now() / 1000);

/**
 * The one state machine between backend parts and everything a client sees.
 *
 * It assigns item ids, `output_index`, `content_index` and `sequence_number`, synthesises
 * every `.added`/`.done` event (and argument deltas for backends that send whole tool calls),
 * and keeps the Response object that blocking calls return, streams end with and the store
 * saves. Because every output shape is produced here, a streamed item is the very object
 * that appears in `response.completed` and in a later GET.
 *
 * Items are emitted one after another: text that arrives while tool calls are open waits for
 * them, and a tool call that starts while another one streams waits its turn.
 */
export class ResponseBuilder {
  readonly response: ResponseObject;
  private sink: EventSink | undefined;
  private readonly shaper: ToolCallShaper | undefined;
  private sequence = 0;
  private terminalSequence: number | undefined;
  private message: { item: MessageItem; part: OutputTextPart; index: number } | undefined;
  private reasoning: { item: ReasoningItem; part: ReasoningTextPart; index: number } | undefined;
  private readonly calls = new Map<string, CallState>();
  private readonly callQueue: CallState[] = [];
  private activeCall: CallState | undefined;
  /** Leading whitespace of a message not yet opened (dropped if a tool call comes instead). */
  private leadingWhitespace = '';
  /** Text that arrived while tool calls were still open. */
  private deferredText = '';
  private usage: BackendUsage | undefined;
  private finishReason: FinishReason | undefined;
  private outputText = '';
  private readonly estimatedInputTokens: number;

  /** Seals a finished reasoning item's text into its `encrypted_content`, when the client asked for it. */
  private readonly encryptReasoning: ((text: string) => string) | undefined;
  /** Whether reasoning items also carry their text as a summary (`reasoning.summary` was asked for). */
  private readonly summarizeReasoning: boolean;

  constructor(
    response: ResponseObject,
    options: {
      sink?: EventSink;
      shaper?: ToolCallShaper;
      estimatedInputTokens?: number;
      /** Where numbering starts: a background run continues the events logged when it was queued. */
      startSequence?: number;
      encryptReasoning?: (text: string) => string;
      summarizeReasoning?: boolean;
    } = {},
  ) {
    this.response = response;
    this.sink = options.sink;
    this.shaper = options.shaper;
    this.estimatedInputTokens = options.estimatedInputTokens ?? 0;
    this.sequence = options.startSequence ?? 0;
    this.encryptReasoning = options.encryptReasoning;
    this.summarizeReasoning = options.summarizeReasoning ?? false;
  }

  /** Whether events go to a client as they happen (a stream), rather than only into the final object. */
  get streaming(): boolean {
    return this.sink !== undefined;
  }

  /** The sequence number the next event will carry (a resumed stream continues from here). */
  get nextSequenceNumber(): number {
    return this.sequence;
  }

  get isTerminal(): boolean {
    return isFinished(this.response.status);
  }

  // ── lifecycle ────────────────────────────────────────────────────────────

  created(): void {
    this.lifecycle('response.created');
  }

  queued(): void {
    this.response.status = 'queued';
    this.lifecycle('response.queued');
  }

  inProgress(): void {
    this.response.status = 'in_progress';
    this.lifecycle('response.in_progress');
  }

  /** Feeds one backend part. */
  accept(part: BackendPart): void {
    switch (part.type) {
      case 'text-delta':
        this.text(part.text);
        break;
      case 'reasoning-delta':
        this.reasoningText(part.text);
        break;
      case 'tool-call':
        this.callStart(part.key, part.name);
        this.callDelta(part.key, part.arguments);
        this.callEnd(part.key);
        break;
      case 'tool-call-start':
        this.callStart(part.key, part.name);
        break;
      case 'tool-call-delta':
        this.callDelta(part.key, part.argumentsDelta);
        break;
      case 'tool-call-end':
        this.callEnd(part.key);
        break;
      case 'usage':
        // A retried generation reports its own usage: the response used both.
        this.usage = this.usage ? addUsage(this.usage, part.usage) : part.usage;
        break;
      case 'finish':
        this.finishReason = part.reason;
        break;
    }
  }

  /**
   * Ends the response normally: `completed`, or `incomplete` when the backend hit a limit. The
   * terminal event waits for `end()`, so the response can be saved before clients hear of it.
   */
  finish(): ResponseObject {
    const incomplete =
      this.finishReason === 'length'
        ? ('max_output_tokens' as const)
        : this.finishReason === 'content_filter'
          ? ('content_filter' as const)
          : undefined;
    this.closeAll(incomplete ? 'incomplete' : 'completed');
    const response = this.response;
    response.usage = this.computeUsage();
    if (incomplete) {
      response.status = 'incomplete';
      response.incomplete_details = { reason: incomplete };
    } else {
      response.status = 'completed';
      response.completed_at = now();
    }
    return response;
  }

  /** Ends the response as `failed` (partial output kept) and emits the `error` event. */
  fail(error: StreamErrorInfo): ResponseObject {
    this.closeAll('incomplete');
    const response = this.response;
    response.status = 'failed';
    response.completed_at = null;
    response.error = { code: error.code, message: error.message } satisfies ResponseErrorInfo;
    response.usage = this.usage ? this.computeUsage() : null;
    this.emit({ type: 'error', sequence_number: 0, error });
    return response;
  }

  /**
   * Ends the response as `cancelled`, keeping what was produced so far. Open items are closed
   * (`incomplete`) silently, unless `announce` (someone follows the stream: a background one).
   */
  cancel(options: { announce?: boolean } = {}): ResponseObject {
    if (!options.announce) this.sink = undefined;
    this.closeAll('incomplete');
    const response = this.response;
    response.status = 'cancelled';
    response.completed_at = null;
    response.incomplete_details = null;
    response.usage = this.usage || this.outputText ? this.computeUsage() : null;
    return response;
  }

  /**
   * The terminal lifecycle event for the response's final status, built once its status is
   * settled; asking again (after a retry, or a late cancel) keeps its sequence number. The
   * Responses API has no `response.cancelled` event: a cancelled stream ends with
   * `response.failed` whose response has `status: "cancelled"`.
   */
  terminalEvent(): StreamEvent {
    const type =
      this.response.status === 'completed'
        ? 'response.completed'
        : this.response.status === 'incomplete'
          ? 'response.incomplete'
          : 'response.failed';
    this.terminalSequence ??= this.sequence++;
    return { type, sequence_number: this.terminalSequence, response: this.response };
  }

  /** Emits the terminal lifecycle event, once the response is settled. */
  end(): void {
    if (this.sink && this.isTerminal) this.sink(this.terminalEvent());
  }

  /** Closes the reasoning item in progress: a retried generation reasons in an item of its own. */
  endReasoning(): void {
    this.closeReasoning('completed');
  }

  // ── text and reasoning ───────────────────────────────────────────────────

  private text(delta: string): void {
    if (!delta) return;
    if (this.activeCall || this.callQueue.length) {
      this.deferredText += delta;
      return;
    }
    this.closeReasoning('completed');
    if (!this.message) {
      // A message opens on its first visible character, so blank lines before a tool call
      // (common after thinking) do not become an empty message item.
      const visible = (this.leadingWhitespace + delta).trimStart();
      if (!visible) {
        this.leadingWhitespace += delta;
        return;
      }
      this.leadingWhitespace = '';
      this.openMessage();
      delta = visible;
    }
    const message = this.message!;
    message.part.text += delta;
    this.outputText += delta;
    if (this.sink) {
      this.emit({
        type: 'response.output_text.delta',
        sequence_number: 0,
        item_id: message.item.id,
        output_index: message.index,
        content_index: 0,
        delta,
        logprobs: [],
      });
    }
  }

  private openMessage(): void {
    const item: MessageItem = {
      id: newId('msg'),
      type: 'message',
      status: 'in_progress',
      content: [],
      role: 'assistant',
    };
    const index = this.addItem(item);
    const part: OutputTextPart = { type: 'output_text', text: '', annotations: [], logprobs: [] };
    this.message = { item, part, index };
    if (this.sink) {
      this.emit({
        type: 'response.content_part.added',
        sequence_number: 0,
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      });
    }
    item.content.push(part);
  }

  private closeMessage(status: ItemStatus): void {
    const message = this.message;
    if (!message) return;
    this.message = undefined;
    const { item, part, index } = message;
    item.status = status;
    if (this.sink) {
      this.emit({
        type: 'response.output_text.done',
        sequence_number: 0,
        item_id: item.id,
        output_index: index,
        content_index: 0,
        text: part.text,
        logprobs: [],
      });
      this.emit({
        type: 'response.content_part.done',
        sequence_number: 0,
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part,
      });
    }
    this.itemDone(item, index);
  }

  private reasoningText(delta: string): void {
    if (!delta) return;
    if (!this.reasoning) {
      this.closeMessage('completed');
      const item: ReasoningItem = { id: newId('rs'), type: 'reasoning', summary: [], content: [] };
      const index = this.addItem(item);
      const part: ReasoningTextPart = { type: 'reasoning_text', text: '' };
      this.reasoning = { item, part, index };
      if (this.sink) {
        this.emit({
          type: 'response.content_part.added',
          sequence_number: 0,
          item_id: item.id,
          output_index: index,
          content_index: 0,
          part: { type: 'reasoning_text', text: '' },
        });
      }
      item.content!.push(part);
    }
    const reasoning = this.reasoning;
    reasoning.part.text += delta;
    this.outputText += delta;
    if (this.sink) {
      this.emit({
        type: 'response.reasoning_text.delta',
        sequence_number: 0,
        item_id: reasoning.item.id,
        output_index: reasoning.index,
        content_index: 0,
        delta,
      });
    }
  }

  private closeReasoning(status: ItemStatus): void {
    const reasoning = this.reasoning;
    if (!reasoning) return;
    this.reasoning = undefined;
    const { item, part, index } = reasoning;
    if (status !== 'completed') item.status = status;
    if (this.sink) {
      this.emit({
        type: 'response.reasoning_text.done',
        sequence_number: 0,
        item_id: item.id,
        output_index: index,
        content_index: 0,
        text: part.text,
      });
      this.emit({
        type: 'response.content_part.done',
        sequence_number: 0,
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part,
      });
    }
    if (this.summarizeReasoning && part.text) this.addSummary(item, index, part.text);
    if (this.encryptReasoning) item.encrypted_content = this.encryptReasoning(part.text);
    this.itemDone(item, index);
  }

  /**
   * Local models write no reasoning summaries; when one is asked for, the reasoning itself is
   * the summary (clients such as Codex show only summaries). One part, sent whole at the end.
   */
  private addSummary(item: ReasoningItem, index: number, text: string): void {
    const summary: SummaryTextPart = { type: 'summary_text', text };
    const scope = { item_id: item.id, output_index: index, summary_index: item.summary.length };
    if (this.sink) {
      this.emit({
        type: 'response.reasoning_summary_part.added',
        sequence_number: 0,
        ...scope,
        part: { type: 'summary_text', text: '' },
      });
      this.emit({ type: 'response.reasoning_summary_text.delta', sequence_number: 0, ...scope, delta: text });
      this.emit({ type: 'response.reasoning_summary_text.done', sequence_number: 0, ...scope, text });
      this.emit({
        type: 'response.reasoning_summary_part.done',
        sequence_number: 0,
        ...scope,
        part: summary,
      });
    }
    item.summary.push(summary);
  }

  // ── tool calls ───────────────────────────────────────────────────────────

  private callStart(key: string, name: string): void {
    if (this.calls.has(key)) return;
    this.closeReasoning('completed');
    this.closeMessage('completed');
    this.leadingWhitespace = '';
    const spec = this.shaper?.start(name) ?? { name, stream: true };
    const item: FunctionCallItem = {
      id: newId('fc'),
      type: 'function_call',
      status: 'in_progress',
      arguments: '',
      call_id: newId('call'),
      name: spec.name,
    };
    if (spec.namespace !== undefined) item.namespace = spec.namespace;
    const call: CallState = {
      key,
      item,
      outputIndex: -1,
      buffered: [],
      ended: false,
      announced: false,
      streamed: spec.stream,
    };
    this.calls.set(key, call);
    if (this.activeCall) this.callQueue.push(call);
    else this.activate(call);
  }

  private callDelta(key: string, fragment: string): void {
    const call = this.calls.get(key);
    if (!call || !fragment) return;
    if (call !== this.activeCall || !call.streamed) {
      call.buffered.push(fragment);
      return;
    }
    this.emitArguments(call, fragment);
  }

  private callEnd(key: string): void {
    const call = this.calls.get(key);
    if (!call) return;
    call.ended = true;
    if (call === this.activeCall) this.completeActiveCall();
  }

  private activate(call: CallState): void {
    this.activeCall = call;
    if (!call.streamed) {
      if (call.ended) this.completeActiveCall();
      return;
    }
    call.announced = true;
    call.outputIndex = this.addItem(call.item);
    if (call.buffered.length) this.emitArguments(call, call.buffered.splice(0).join(''));
    if (call.ended) this.completeActiveCall();
  }

  private emitArguments(call: CallState, fragment: string): void {
    call.item.arguments += fragment;
    this.outputText += fragment;
    if (this.sink) {
      this.emit({
        type: 'response.function_call_arguments.delta',
        sequence_number: 0,
        item_id: call.item.id,
        output_index: call.outputIndex,
        delta: fragment,
      });
    }
  }

  /** Finishes the active call and moves on to the next queued one (or to deferred text). */
  private completeActiveCall(): void {
    const call = this.activeCall!;
    this.activeCall = undefined;
    this.calls.delete(call.key);
    this.doneCall(call, 'completed');
    const next = this.callQueue.shift();
    if (next) {
      this.activate(next);
      return;
    }
    if (this.deferredText) {
      const text = this.deferredText;
      this.deferredText = '';
      this.text(text);
    }
  }

  /**
   * Emits the end of a call. A streamed call was announced at its start; a buffered one is
   * shaped first and then announced, given its whole input as one delta, and closed, so its
   * `.added` and `.done` always agree on type and id.
   */
  private doneCall(call: CallState, status: ItemStatus): void {
    if (!call.streamed) {
      call.item.arguments = call.buffered.splice(0).join('');
      this.outputText += call.item.arguments;
    }
    call.item.status = status;
    const final = this.shaper && status === 'completed' ? this.shaper.finish(call.item) : call.item;
    if (!call.announced) {
      call.announced = true;
      const payload = final.type === 'function_call' ? final.arguments : final.input;
      if (final.type === 'function_call') final.arguments = '';
      else final.input = '';
      final.status = 'in_progress';
      call.outputIndex = this.addItem(final);
      if (final.type === 'function_call') final.arguments = payload;
      else final.input = payload;
      final.status = status;
      if (payload && this.sink) {
        this.emit({
          type:
            final.type === 'function_call'
              ? 'response.function_call_arguments.delta'
              : 'response.custom_tool_call_input.delta',
          sequence_number: 0,
          item_id: final.id,
          output_index: call.outputIndex,
          delta: payload,
        });
      }
    } else {
      this.response.output[call.outputIndex] = final;
    }
    if (this.sink) {
      this.emit(
        final.type === 'function_call'
          ? {
              type: 'response.function_call_arguments.done',
              sequence_number: 0,
              item_id: final.id,
              output_index: call.outputIndex,
              arguments: final.arguments,
              name: final.name,
            }
          : {
              type: 'response.custom_tool_call_input.done',
              sequence_number: 0,
              item_id: final.id,
              output_index: call.outputIndex,
              input: final.input,
            },
      );
    }
    this.itemDone(final, call.outputIndex);
  }

  // ── shared helpers ───────────────────────────────────────────────────────

  private addItem(item: OutputItem): number {
    const index = this.response.output.length;
    this.response.output.push(item);
    // Sinks serialise at once, so the event shows the item as it is now (empty content).
    if (this.sink) {
      this.emit({
        type: 'response.output_item.added',
        sequence_number: 0,
        output_index: index,
        item,
      });
    }
    return index;
  }

  private itemDone(item: OutputItem, index: number): void {
    if (this.sink)
      this.emit({ type: 'response.output_item.done', sequence_number: 0, output_index: index, item });
  }

  /** Closes every open item with `status`. */
  private closeAll(status: ItemStatus): void {
    this.closeReasoning(status);
    this.closeMessage(status);
    if (this.activeCall || this.callQueue.length) {
      // Calls still open at the end were cut off: emit what arrived, marked incomplete.
      const open = [this.activeCall, ...this.callQueue].filter(
        (call): call is CallState => call !== undefined,
      );
      this.activeCall = undefined;
      this.callQueue.length = 0;
      for (const call of open) {
        if (call.streamed && !call.announced) {
          call.announced = true;
          call.outputIndex = this.addItem(call.item);
        }
        if (call.streamed && call.buffered.length) this.emitArguments(call, call.buffered.splice(0).join(''));
        this.doneCall(call, call.ended || status === 'completed' ? 'completed' : 'incomplete');
      }
      this.calls.clear();
    }
    if (this.deferredText) {
      const text = this.deferredText;
      this.deferredText = '';
      this.text(text);
      this.closeMessage(status);
    }
  }

  private computeUsage(): ResponseUsage {
    const usage = this.usage;
    const input = usage?.inputTokens ?? this.estimatedInputTokens;
    const output = usage?.outputTokens ?? estimateTextTokens(this.outputText);
    const reasoning = Math.min(usage?.reasoningTokens ?? 0, output);
    return {
      input_tokens: input,
      input_tokens_details: {
        cached_tokens: Math.min(usage?.cachedTokens ?? 0, input),
        cache_write_tokens: 0,
      },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: input + output,
    };
  }

  private lifecycle(type: string): void {
    if (this.sink) this.emit({ type, sequence_number: 0, response: this.response });
  }

  private emit(event: StreamEvent): void {
    if (!this.sink) return;
    event.sequence_number = this.sequence++;
    this.sink(event);
  }
}

function addUsage(a: BackendUsage, b: BackendUsage): BackendUsage {
  const sum = (x: number | undefined, y: number | undefined) =>
    x === undefined && y === undefined ? undefined : (x ?? 0) + (y ?? 0);
  const reasoningTokens = sum(a.reasoningTokens, b.reasoningTokens);
  const cachedTokens = sum(a.cachedTokens, b.cachedTokens);
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    ...(reasoningTokens !== undefined ? { reasoningTokens } : {}),
    ...(cachedTokens !== undefined ? { cachedTokens } : {}),
  };
}
