import type { BackendPart, FinishReason } from '../backends/types.js';
import type { TextFormatPolicy } from './structured-output.js';
import { isAllowed, type ChoicePolicy } from './tools/choice.js';
import type { ToolSet, ToolSpec } from './tools/toolset.js';

/**
 * What a model's answer must respect, beyond what the backend was asked to enforce.
 */
export interface OutputPolicy {
  tools: ToolSet;
  choice: ChoicePolicy;
  /** Calls after this many are ignored (`parallel_tool_calls: false` → 1, `max_tool_calls`). */
  maxToolCalls: number;
  /** Set for structured outputs: the final text must pass it. */
  textFormat: TextFormatPolicy | undefined;
}

export type ViolationCode = 'tool_choice_violation' | 'invalid_tool_call' | 'invalid_json_output';

/** How an answer broke the request's rules. */
export interface Violation {
  code: ViolationCode;
  /** For the client (`response.error.message`). */
  message: string;
  /** For the model on the retry: what to do differently. */
  instruction: string;
  /** The answer the instruction refers to (the JSON to repair), replayed on the retry. */
  answer?: string;
}

interface CallTrack {
  key: string;
  backendName: string;
  spec: ToolSpec;
  /** Over the call limit: its parts are dropped. */
  ignored: boolean;
  /** Held until its arguments are checked: checked tools, and calls that arrive whole anyway. */
  held: boolean;
  arguments: string;
  /** For a checked call, the whole call once its arguments passed. */
  whole?: BackendPart;
}

type Queued = { part: BackendPart } | { slot: CallTrack };

/**
 * Sits between one backend attempt and the ResponseBuilder, and decides what the client may
 * see and when. Ferry's promise is that a client never sees output that breaks the request's
 * rules — a call `tool_choice` forbids, arguments that fail a strict schema, invalid structured
 * output — so whatever still needs checking is held back until it has been:
 *
 * - blocking requests hold the whole attempt (nobody is watching, and a retry stays possible);
 * - a checked call (strict function, custom tool), and any call that arrives whole, is held until
 *   its arguments pass, then passed on whole, with everything that arrived after it;
 * - text is held when it must be validated (structured outputs), or when `tool_choice` requires
 *   a call and none has been made yet (the text may be the model ignoring the requirement);
 * - reasoning, plain text and unchecked calls stream as they come.
 *
 * Usage passes at once (tokens spent on a discarded attempt count). Calls beyond the limit are
 * dropped, as OpenAI ignores calls beyond `max_tool_calls`. A broken rule sets `violation`;
 * the engine then retries, if nothing of the attempt's answer reached the client (`committed`),
 * or fails the response.
 */
export class OutputGuard {
  violation: Violation | undefined;
  private readonly holdReasons = new Set<string>();
  private readonly queue: Queued[] = [];
  private readonly calls = new Map<string, CallTrack>();
  private keptCalls = 0;
  private validCalls = 0;
  private text = '';
  private finishReason: FinishReason | undefined;
  /** The first call with bad arguments: a violation, unless the answer turns out cut off. */
  private invalidCall: Violation | undefined;
  private answerSent = false;

  constructor(
    private readonly policy: OutputPolicy,
    private readonly options: { holdAll: boolean; model: string },
  ) {}

  /** Whether the client has seen any of this attempt's answer (text or a tool call). */
  get committed(): boolean {
    return this.answerSent;
  }

  /** Takes one backend part; returns the parts the builder may have now. */
  accept(part: BackendPart): BackendPart[] {
    if (this.violation) return [];
    switch (part.type) {
      case 'usage':
        return [part];
      case 'finish':
        this.finishReason = part.reason;
        return [];
      case 'reasoning-delta':
        return this.route(part);
      case 'text-delta':
        this.text += part.text;
        if (this.policy.textFormat) this.hold('structured-text');
        if (this.policy.choice.mode === 'required' && this.validCalls === 0) this.hold('awaiting-call');
        return this.route(part);
      case 'tool-call':
        // A call that arrives whole is checked before any of it is passed on.
        return [
          ...this.callStart(part.key, part.name, true),
          ...this.callDelta(part.key, part.arguments),
          ...this.callEnd(part.key),
        ];
      case 'tool-call-start':
        return this.callStart(part.key, part.name);
      case 'tool-call-delta':
        return this.callDelta(part.key, part.argumentsDelta);
      case 'tool-call-end':
        return this.callEnd(part.key);
    }
  }

  /**
   * Ends the attempt: checks what could only be checked at the end and returns everything
   * still held, with the finish reason last — or nothing, with `violation` set. An answer cut
   * off by the token limit is not checked: it ends `incomplete`, as it is.
   */
  end(): BackendPart[] {
    if (this.violation) return [];
    if (this.finishReason !== 'length') {
      if (this.invalidCall) return this.violate(this.invalidCall);
      if (this.policy.choice.mode === 'required' && this.validCalls === 0) {
        return this.violate(this.missingCall());
      }
      const format = this.policy.textFormat;
      if (format && (this.text.trim() || this.keptCalls === 0)) {
        const problem = format.check(this.text);
        if (problem) {
          return this.violate({
            code: 'invalid_json_output',
            message: `The model '${this.options.model}' answered with text that is not ${format.label}: ${problem}.`,
            instruction: `Your previous answer is not ${format.label}: ${problem}. Reply again with only the corrected JSON and nothing else.`,
            answer: this.text,
          });
        }
      }
    }
    this.holdReasons.clear();
    const parts = this.drain(true);
    parts.push({ type: 'finish', reason: this.finishReason ?? 'stop' });
    return parts;
  }

  // ── tool calls ───────────────────────────────────────────────────────────

  private callStart(key: string, backendName: string, whole = false): BackendPart[] {
    if (this.violation || this.calls.has(key)) return [];
    const { choice, tools } = this.policy;
    const spec = tools.byBackendName(backendName);
    if (choice.mode === 'none') {
      return this.violate({
        code: 'tool_choice_violation',
        message: `The model '${this.options.model}' called the tool '${spec?.name ?? backendName}' although tool_choice is 'none'.`,
        instruction: 'Do not call any tool now. Answer the last message directly, in text.',
      });
    }
    if (!spec) {
      return this.violate({
        code: 'invalid_tool_call',
        message: `The model '${this.options.model}' called '${backendName}', which is not one of the request's tools.`,
        instruction: `There is no tool named '${backendName}'. ${this.availableTools()}`,
      });
    }
    if (!isAllowed(choice, spec)) {
      return this.violate({
        code: 'tool_choice_violation',
        message: `The model '${this.options.model}' called '${spec.name}', which tool_choice (${choice.label}) does not allow.`,
        instruction: `The tool '${backendName}' may not be used now. ${this.availableTools()}`,
      });
    }
    const track: CallTrack = {
      key,
      backendName,
      spec,
      ignored: this.keptCalls >= this.policy.maxToolCalls,
      held: spec.checked || whole,
      arguments: '',
    };
    this.calls.set(key, track);
    if (track.ignored) return [];
    this.keptCalls++;
    if (track.held) {
      this.hold(`call:${key}`);
      this.queue.push({ slot: track });
      return [];
    }
    return this.route({ type: 'tool-call-start', key, name: backendName });
  }

  private callDelta(key: string, fragment: string): BackendPart[] {
    const track = this.calls.get(key);
    if (this.violation || !track || track.ignored || !fragment) return [];
    track.arguments += fragment;
    if (track.held) return [];
    return this.route({ type: 'tool-call-delta', key, argumentsDelta: fragment });
  }

  private callEnd(key: string): BackendPart[] {
    const track = this.calls.get(key);
    if (this.violation || !track || track.ignored) return [];
    const { spec } = track;
    const out: BackendPart[] = [];
    // A call without arguments: some servers send nothing at all, clients expect an object.
    if (!track.arguments.trim()) {
      track.arguments = '{}';
      if (!track.held) out.push(...this.route({ type: 'tool-call-delta', key, argumentsDelta: '{}' }));
    }
    const checked = spec.check(track.arguments);
    if ('error' in checked) {
      this.invalidCall ??= {
        code: 'invalid_tool_call',
        message: `The model '${this.options.model}' called '${spec.name}' with invalid arguments: ${checked.error}.`,
        instruction: `Your call to the tool '${track.backendName}' had invalid arguments: ${checked.error}. Call it again with arguments that match its parameters schema.`,
      };
      // Everything after waits for the verdict at the end (a cut-off answer keeps the call as is).
      this.hold(`invalid:${key}`);
      return track.held ? out : [...out, ...this.route({ type: 'tool-call-end', key })];
    }
    this.validCalls++;
    if (track.held) {
      track.whole = { type: 'tool-call', key, name: track.backendName, arguments: checked.arguments };
      out.push(...this.release(`call:${key}`));
    } else {
      out.push(...this.route({ type: 'tool-call-end', key }));
    }
    out.push(...this.release('awaiting-call'));
    return out;
  }

  private missingCall(): Violation {
    const { choice } = this.policy;
    const forced = choice.allowed?.length === 1 ? choice.allowed[0] : undefined;
    return {
      code: 'tool_choice_violation',
      message: `The model '${this.options.model}' answered without calling a tool although tool_choice requires ${choice.label}.`,
      instruction: forced
        ? `You must call the tool '${forced.backendName}' now. Do not answer in text.`
        : `You must call a tool now instead of answering in text. ${this.availableTools()}`,
    };
  }

  private availableTools(): string {
    const { choice, tools } = this.policy;
    const names = (choice.allowed ?? tools.specs).map((spec) => `'${spec.backendName}'`);
    return names.length ? `Use only these tools: ${names.join(', ')}.` : 'No tools are available.';
  }

  // ── holding back ─────────────────────────────────────────────────────────

  /**
   * The generation stopped early (a cancel): hands over what is held, unchecked, so the
   * cancelled response keeps its partial answer. Calls still being written are left out.
   */
  interrupted(): BackendPart[] {
    if (this.violation) return [];
    this.holdReasons.clear();
    return this.drain(false);
  }

  private hold(reason: string): void {
    this.holdReasons.add(reason);
  }

  /** Passes a part on, or queues it while something before it is held. */
  private route(part: BackendPart): BackendPart[] {
    if (this.options.holdAll || this.holdReasons.size > 0) {
      this.queue.push({ part });
      return [];
    }
    this.noteSent(part);
    return [part];
  }

  private release(reason: string): BackendPart[] {
    if (!this.holdReasons.delete(reason)) return [];
    if (this.options.holdAll || this.holdReasons.size > 0) return [];
    return this.drain(false);
  }

  /** Empties the queue in order; a checked call takes its slot (as it came, if it never passed). */
  private drain(final: boolean): BackendPart[] {
    const parts: BackendPart[] = [];
    for (const entry of this.queue.splice(0)) {
      if ('part' in entry) parts.push(entry.part);
      else if (entry.slot.whole) parts.push(entry.slot.whole);
      else if (final) {
        const { key, backendName, arguments: args } = entry.slot;
        parts.push({ type: 'tool-call', key, name: backendName, arguments: args });
      }
    }
    for (const part of parts) this.noteSent(part);
    return parts;
  }

  private noteSent(part: BackendPart): void {
    if (part.type === 'text-delta' ? part.text.trim() !== '' : part.type.startsWith('tool-call'))
      this.answerSent = true;
  }

  private violate(violation: Violation): BackendPart[] {
    this.violation = violation;
    this.queue.length = 0;
    return [];
  }
}
