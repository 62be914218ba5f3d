import type { CustomTool, FunctionTool, Tool } from '../../api/create-response.js';
import { invalidRequest, unsupported } from '../../api/errors.js';
import type { BackendTool } from '../../backends/types.js';
import { compileJsonSchema, parseJsonText, SchemaError, type JsonValidator } from './json-schema.js';
import { ToolNameTable } from './naming.js';

/**
 * A request's tools as Ferry offers them to the backend and checks the model's calls against
 * them. Function tools keep their schema; custom tools (free text) become a function with one
 * string argument `input`; namespace tools are flattened (see `naming.ts`). Hosted tools that
 * Ferry cannot run are refused with a 400 naming `tools[i].type` — except `web_search`, which
 * Codex sends on every request: it is left out of what the backend sees and reported in
 * `dropped`, so the model is never offered a tool nobody would run.
 */

export interface ToolSpec {
  kind: 'function' | 'custom';
  /** The name the client declared and sees in calls. */
  name: string;
  namespace: string | undefined;
  /** The flat function name the backend sees. */
  backendName: string;
  /**
   * Whether calls are held back and checked before a client sees them: strict functions (the
   * Responses API default) and every custom tool (its input is unwrapped from `{"input": …}`).
   * Other calls stream as the model writes them and are only checked to be JSON.
   */
  checked: boolean;
  backendTool: BackendTool;
  /** Where the tool was declared, for error messages (`tools[2]`, `tools[5].tools[1]`). */
  param: string;
  /** Checks a complete call's arguments; returns the arguments to emit, or what is wrong. */
  check(args: string): { arguments: string } | { error: string };
}

/** Hosted tool types Ferry accepts and leaves out of the backend's tools (see the README). */
export const DROPPED_HOSTED_TOOLS: ReadonlySet<string> = new Set(['web_search', 'web_search_2025_08_26']);

const CUSTOM_INPUT = 'input';
const EMPTY_OBJECT_SCHEMA = { type: 'object', properties: {} };

export class ToolSet {
  readonly specs: ToolSpec[] = [];
  /** Hosted tools that were accepted but not offered to the backend, by type. */
  readonly dropped: string[] = [];
  private readonly table = new ToolNameTable<ToolSpec>();

  static from(tools: readonly Tool[] | null | undefined): ToolSet {
    const set = new ToolSet();
    for (const [index, tool] of (tools ?? []).entries()) set.add(tool, `tools[${index}]`);
    return set;
  }

  get isEmpty(): boolean {
    return this.specs.length === 0;
  }

  /** The tool a backend function name stands for. */
  byBackendName(name: string): ToolSpec | undefined {
    return this.table.get(name);
  }

  /** Tools with this client name (several when namespaces reuse a name). */
  named(name: string, namespace?: string): ToolSpec[] {
    return this.specs.filter(
      (spec) => spec.name === name && (namespace === undefined || spec.namespace === namespace),
    );
  }

  private add(tool: Tool, param: string): void {
    switch (tool.type) {
      case 'function':
        return this.register(functionSpec(tool, undefined, param));
      case 'custom':
        return this.register(customSpec(tool, undefined, param));
      case 'namespace':
        for (const [index, member] of tool.tools.entries()) {
          const memberParam = `${param}.tools[${index}]`;
          this.register(
            member.type === 'function'
              ? functionSpec(member, tool.name, memberParam)
              : customSpec(member, tool.name, memberParam),
          );
        }
        return;
      default:
        if (DROPPED_HOSTED_TOOLS.has(tool.type)) {
          this.dropped.push(tool.type);
          return;
        }
        throw unsupported(
          `${param}.type`,
          `the hosted tool '${tool.type}' is not available; declare a function tool and run it in your client instead`,
        );
    }
  }

  private register(spec: Omit<ToolSpec, 'backendName'>): void {
    const full = spec as ToolSpec;
    full.backendName = this.table.add(spec.name, spec.namespace, full, spec.param);
    full.backendTool.name = full.backendName;
    this.specs.push(full);
  }
}

function functionSpec(
  tool: FunctionTool,
  namespace: string | undefined,
  param: string,
): Omit<ToolSpec, 'backendName'> {
  const parameters = tool.parameters ?? EMPTY_OBJECT_SCHEMA;
  // Strict is the Responses API default (`null` too). An explicit `strict: true` needs a schema
  // Ferry can check; an implicit one falls back to best effort, as OpenAI's does.
  let validator: JsonValidator | undefined;
  if (tool.strict !== false) {
    try {
      validator = compileJsonSchema(parameters);
    } catch (error) {
      if (!(error instanceof SchemaError) || tool.strict === true) {
        throw invalidRequest(
          `Invalid schema for function '${tool.name}': ${(error as Error).message}.`,
          `${param}.parameters`,
          'invalid_function_parameters',
        );
      }
    }
  }
  return {
    kind: 'function',
    name: tool.name,
    namespace,
    checked: validator !== undefined,
    param,
    backendTool: {
      name: tool.name,
      ...(tool.description ? { description: tool.description } : {}),
      parameters,
      strict: validator !== undefined,
    },
    check(args) {
      const parsed = parseJsonText(args);
      if (!parsed.ok) return { error: parsed.error };
      if (!isObject(parsed.value)) return { error: 'the arguments must be a JSON object' };
      const problem = validator?.(parsed.value);
      return problem ? { error: problem } : { arguments: args };
    },
  };
}

function customSpec(
  tool: CustomTool,
  namespace: string | undefined,
  param: string,
): Omit<ToolSpec, 'backendName'> {
  const format = tool.format;
  const input: Record<string, unknown> = { type: 'string' };
  let description = tool.description ?? '';
  let pattern: RegExp | undefined;
  if (format?.type === 'grammar') {
    if (format.syntax === 'regex') {
      try {
        pattern = new RegExp(`^(?:${format.definition})$`, 'u');
      } catch (error) {
        throw invalidRequest(
          `Invalid regex grammar for custom tool '${tool.name}': ${(error as Error).message}.`,
          `${param}.format.definition`,
          'invalid_grammar',
        );
      }
      // Backends with JSON-schema grammars (llama.cpp, vLLM) constrain the input with it.
      input.pattern = pattern.source;
      input.description = `Text matching the regular expression: ${format.definition}`;
    } else {
      // No backend decodes Lark grammars: the model is told the grammar, and the input is not checked.
      input.description = `Text in the language of this Lark grammar:\n${format.definition}`;
    }
  } else {
    input.description = 'The tool input, as free text.';
  }
  if (!description) description = `Custom tool ${tool.name}.`;
  return {
    kind: 'custom',
    name: tool.name,
    namespace,
    checked: true,
    param,
    backendTool: {
      name: tool.name,
      description,
      parameters: {
        type: 'object',
        properties: { [CUSTOM_INPUT]: input },
        required: [CUSTOM_INPUT],
        additionalProperties: false,
      },
      strict: true,
    },
    check(args) {
      const text = customInput(args);
      if (text === undefined)
        return { error: `the arguments must be a JSON object with a string property '${CUSTOM_INPUT}'` };
      if (pattern && !pattern.test(text))
        return { error: `the input does not match the tool's regular expression grammar` };
      return { arguments: JSON.stringify({ [CUSTOM_INPUT]: text }) };
    },
  };
}

/**
 * The text of a custom tool call. Models asked for `{"input": "…"}` sometimes name the property
 * differently; one string property is taken whatever its name.
 */
function customInput(args: string): string | undefined {
  const parsed = parseJsonText(args);
  if (!parsed.ok || !isObject(parsed.value)) return undefined;
  const value = parsed.value;
  if (typeof value[CUSTOM_INPUT] === 'string') return value[CUSTOM_INPUT];
  const strings = Object.values(value).filter((entry): entry is string => typeof entry === 'string');
  return Object.keys(value).length === 1 && strings.length === 1 ? strings[0] : undefined;
}

/** The input of a custom tool call whose arguments were checked (`{"input": "…"}`). */
export function customCallInput(args: string): string {
  return customInput(args) ?? args;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
