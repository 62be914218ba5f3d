import { ApiError } from '../../api/errors.js';
import type { BackendRequest, ReasoningEffort, ReasoningSetting } from '../../backends/types.js';
import type { ModelConfig } from '../../config/schema.js';

/**
 * `reasoning.effort` for a model. Without configuration every level is accepted and mapped to
 * the nearest backend setting by the driver (Ollama `think` levels, chat `reasoning_effort`).
 * A model's `reasoning.efforts` lists the levels it supports — as a list, or as a map from level
 * to what the backend is sent — and any other level is a 400 naming `reasoning.effort`.
 */
export function resolveReasoningEffort(
  effort: ReasoningEffort | null | undefined,
  config: ModelConfig['reasoning'],
  model: string,
): Pick<BackendRequest, 'reasoningEffort' | 'reasoningSetting'> {
  if (effort === null || effort === undefined) return {};
  const efforts = config?.efforts;
  if (efforts === undefined) return { reasoningEffort: effort };
  const supported = Array.isArray(efforts) ? efforts : (Object.keys(efforts) as ReasoningEffort[]);
  if (!supported.includes(effort)) {
    const values = supported.map((value) => `'${value}'`).join(', ');
    throw new ApiError(
      400,
      `Unsupported value: 'reasoning.effort' does not support '${effort}' with the model '${model}'. ` +
        (values ? `Supported values are: ${values}.` : 'The model takes no reasoning effort.'),
      { param: 'reasoning.effort', code: 'unsupported_value' },
    );
  }
  if (Array.isArray(efforts)) return { reasoningEffort: effort };
  const setting: ReasoningSetting = (efforts as Record<string, ReasoningSetting>)[effort] ?? null;
  return { reasoningEffort: effort, reasoningSetting: setting };
}
