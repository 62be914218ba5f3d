import type { CreateResponseRequest } from '../api/create-response.js';
import { invalidRequest } from '../api/errors.js';
import type { BackendResponseFormat } from '../backends/types.js';
import { compileJsonSchema, parseJsonText, type JsonValidator } from './tools/json-schema.js';

/**
 * Structured outputs (`text.format` `json_object` / `json_schema`). The backend is asked for
 * constrained decoding (Ollama `format`, chat `response_format`); Ferry checks the final text
 * anyway, because not every backend or model honours the constraint: always that it is JSON,
 * and against the schema when `strict` is true (with `strict` false the schema is a best-effort
 * hint, as in OpenAI's API).
 */
export interface TextFormatPolicy {
  /** `JSON` or `JSON matching the schema 'name'`, for messages. */
  label: string;
  backendFormat: BackendResponseFormat;
  /** What is wrong with the text, or undefined when it is acceptable. */
  check(text: string): string | undefined;
}

type TextFormat = NonNullable<NonNullable<CreateResponseRequest['text']>['format']>;

export function textFormatPolicy(format: TextFormat | null | undefined): TextFormatPolicy | undefined {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') {
    return {
      label: 'JSON',
      backendFormat: { type: 'json_object' },
      check: (text) => {
        const parsed = parseJsonText(text);
        return parsed.ok ? undefined : parsed.error;
      },
    };
  }
  const strict = format.strict === true;
  let validator: JsonValidator | undefined;
  if (strict) {
    try {
      validator = compileJsonSchema(format.schema);
    } catch (error) {
      throw invalidRequest(
        `Invalid schema for response format '${format.name}': ${(error as Error).message}.`,
        'text.format.schema',
        'invalid_json_schema',
      );
    }
  }
  return {
    label: `JSON matching the schema '${format.name}'`,
    backendFormat: { type: 'json_schema', name: format.name, schema: format.schema, strict },
    check: (text) => {
      const parsed = parseJsonText(text);
      if (!parsed.ok) return parsed.error;
      const problem = validator?.(parsed.value);
      return problem ? `it does not match the schema: ${problem}` : undefined;
    },
  };
}
