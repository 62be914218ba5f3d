import { invalidRequest } from '../../api/errors.js';

/**
 * Backends know only flat function names, so a tool `spawn_agent` in namespace `multi_agent_v1`
 * is offered to the model as `multi_agent_v1__spawn_agent`. The encoding is a pure function, so
 * earlier calls in the conversation get the same names whatever tools a follow-up declares; the
 * table maps the names the model answers with back to (namespace, name).
 */
export const NAMESPACE_SEPARATOR = '__';

export function backendToolName(name: string, namespace: string | undefined): string {
  return namespace ? `${namespace}${NAMESPACE_SEPARATOR}${name}` : name;
}

/** Backend names of one request's tools. Two tools that would share a name are a 400, never a mix-up. */
export class ToolNameTable<T> {
  private readonly entries = new Map<string, { value: T; param: string }>();

  /** Registers a tool; `param` names it in the error (`tools[3]`, `tools[4].tools[0]`). */
  add(name: string, namespace: string | undefined, value: T, param: string): string {
    const backendName = backendToolName(name, namespace);
    const existing = this.entries.get(backendName);
    if (existing) {
      const what = namespace ? `'${name}' in namespace '${namespace}'` : `'${name}'`;
      throw invalidRequest(
        `The tool ${what} (${param}) has the same name as ${existing.param} once namespaces are flattened ` +
          `for the backend ('${backendName}'). Tool names must be unique.`,
        param,
        'duplicate_tool_name',
      );
    }
    this.entries.set(backendName, { value, param });
    return backendName;
  }

  get(backendName: string): T | undefined {
    return this.entries.get(backendName)?.value;
  }

  get size(): number {
    return this.entries.size;
  }
}
