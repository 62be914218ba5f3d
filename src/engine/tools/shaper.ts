import { newId } from '../../api/ids.js';
import type { CustomToolCallItem, FunctionCallItem } from '../../api/wire.js';
import type { ToolCallShaper } from '../response-builder.js';
import { backendToolName } from './naming.js';
import { customCallInput, type ToolSet } from './toolset.js';

/**
 * Gives each call the shape its tool was declared with: the client's name and namespace back
 * from the flat backend name, and a `custom_tool_call` with the bare input for custom tools.
 * Checked calls reach the builder whole (the output guard holds them until they are valid), so
 * only unchecked function calls stream their argument deltas.
 */
export class ToolSetShaper implements ToolCallShaper {
  constructor(private readonly tools: ToolSet) {}

  start(backendName: string): { name: string; namespace?: string; stream: boolean } {
    const spec = this.tools.byBackendName(backendName);
    // The guard never lets a call to an undeclared tool through; this is only a safe default.
    if (!spec) return { name: backendName, stream: true };
    return {
      name: spec.name,
      ...(spec.namespace !== undefined ? { namespace: spec.namespace } : {}),
      stream: !spec.checked,
    };
  }

  finish(call: FunctionCallItem): FunctionCallItem | CustomToolCallItem {
    const spec = this.tools.byBackendName(backendToolName(call.name, call.namespace));
    if (spec?.kind !== 'custom') return call;
    const custom: CustomToolCallItem = {
      id: newId('ctc'),
      type: 'custom_tool_call',
      status: call.status,
      call_id: call.call_id,
      input: customCallInput(call.arguments),
      name: call.name,
    };
    if (call.namespace !== undefined) custom.namespace = call.namespace;
    return custom;
  }
}
