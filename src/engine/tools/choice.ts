import type { ToolChoice } from '../../api/create-response.js';
import { invalidRequest, unsupported } from '../../api/errors.js';
import type { BackendTool, BackendToolChoice } from '../../backends/types.js';
import type { ToolSet, ToolSpec } from './toolset.js';

/**
 * `tool_choice`, resolved against the request's tools into what Ferry enforces: whether the
 * model must call a tool, may, or must not, and which tools it may call. The backend is told as
 * much as it understands (chat servers take `tool_choice`; Ollama, which has none, is offered
 * only the allowed tools, or none), and the answer is checked all the same (`output-guard.ts`).
 */
export interface ChoicePolicy {
  mode: 'auto' | 'none' | 'required';
  /** The tools the model may call; undefined when every declared tool is allowed. */
  allowed: ToolSpec[] | undefined;
  /** How the choice reads in messages: `'required'`, `a call to 'get_weather'`… */
  label: string;
}

export function resolveToolChoice(choice: ToolChoice | null | undefined, tools: ToolSet): ChoicePolicy {
  if (choice === undefined || choice === null || choice === 'auto')
    return { mode: 'auto', allowed: undefined, label: "'auto'" };
  if (choice === 'none') return { mode: 'none', allowed: undefined, label: "'none'" };
  if (choice === 'required') {
    requireTools(tools, "tool_choice 'required'");
    return { mode: 'required', allowed: undefined, label: "'required'" };
  }
  switch (choice.type) {
    case 'function':
    case 'custom': {
      const forced = findTool(tools, choice.type, String(choice.name), namespaceOf(choice), 'tool_choice');
      return { mode: 'required', allowed: [forced], label: `a call to '${forced.name}'` };
    }
    case 'allowed_tools': {
      const allowed = choice.tools.map((entry, index) => {
        const param = `tool_choice.tools[${index}]`;
        if (entry.type !== 'function' && entry.type !== 'custom') {
          throw unsupported(param, `'${entry.type}' tools are not available through this gateway`);
        }
        if (!entry.name) {
          throw invalidRequest(`Missing required parameter: '${param}.name'.`, `${param}.name`);
        }
        return findTool(tools, entry.type, entry.name, namespaceOf(entry), param);
      });
      const names = allowed.map((spec) => `'${spec.name}'`).join(', ');
      if (choice.mode === 'required' && allowed.length === 0)
        throw invalidRequest(
          "tool_choice 'allowed_tools' in 'required' mode needs at least one tool.",
          'tool_choice.tools',
        );
      return {
        mode: choice.mode,
        allowed,
        label: `allowed_tools ${choice.mode} (${names || 'none'})`,
      };
    }
    default:
      throw unsupported(
        'tool_choice',
        `the hosted tool '${choice.type}' is not available, so it cannot be forced`,
      );
  }
}

/** Whether a tool may be called under this choice. */
export function isAllowed(policy: ChoicePolicy, spec: ToolSpec): boolean {
  if (policy.mode === 'none') return false;
  return policy.allowed === undefined || policy.allowed.includes(spec);
}

/** The tools the backend is offered: the allowed ones (all, unless the choice narrows them). */
export function backendTools(policy: ChoicePolicy, tools: ToolSet): BackendTool[] {
  return (policy.allowed ?? tools.specs).map((spec) => spec.backendTool);
}

/** The `tool_choice` for backends that take one. */
export function backendToolChoice(policy: ChoicePolicy): BackendToolChoice {
  if (policy.mode === 'required' && policy.allowed?.length === 1)
    return { name: policy.allowed[0]!.backendName };
  return policy.mode;
}

function findTool(
  tools: ToolSet,
  type: 'function' | 'custom',
  name: string,
  namespace: string | undefined,
  param: string,
): ToolSpec {
  const matches = tools.named(name, namespace).filter((spec) => spec.kind === type);
  // A top-level tool wins over namespaced ones of the same name.
  const chosen = matches.length > 1 ? matches.filter((spec) => spec.namespace === undefined) : matches;
  if (chosen.length !== 1) {
    throw invalidRequest(
      chosen.length === 0
        ? `Tool choice '${type}' names '${name}', which is not among the ${type} tools in 'tools'.`
        : `Tool choice '${type}' names '${name}', which several namespaces declare; add its 'namespace'.`,
      param,
      'invalid_tool_choice',
    );
  }
  return chosen[0]!;
}

function requireTools(tools: ToolSet, what: string): void {
  if (tools.isEmpty)
    throw invalidRequest(`${what} needs at least one function or custom tool in 'tools'.`, 'tool_choice');
}

function namespaceOf(value: Record<string, unknown>): string | undefined {
  return typeof value.namespace === 'string' ? value.namespace : undefined;
}
