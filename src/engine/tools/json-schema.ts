import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/**
 * JSON Schema validation for tool arguments and structured outputs (ajv 8).
 *
 * Clients send schemas of several dialects: the Agents SDK and `zodTextFormat` say draft-07,
 * zod 4's own converter says 2020-12, most say nothing (draft-07 is assumed). `$schema` picks
 * the validator and is then left out, so an unknown meta-schema URL is no error. ajv runs
 * non-strict: keywords it does not know (`nullable` from OpenAPI is known; `title`, vendor
 * extensions…) are ignored rather than refused, as OpenAI's own best-effort handling does.
 *
 * Compiled validators are cached by the schema's text: clients resend the same tools on every
 * turn, and compiling a large schema costs milliseconds.
 */

export type JsonValidator = (value: unknown) => string | undefined;

export class SchemaError extends Error {
  override name = 'SchemaError';
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const OPTIONS = { strict: false, allErrors: false, logger: false as const, validateSchema: true };
const validators = {
  draft07: addFormats(new Ajv(OPTIONS)),
  draft2019: addFormats(new Ajv2019(OPTIONS) as unknown as Ajv),
  draft2020: addFormats(new Ajv2020(OPTIONS) as unknown as Ajv),
};

const CACHE_SIZE = 256;
const cache = new Map<string, JsonValidator>();

/** Compiles a schema into a validator that returns an error text, or undefined when the value fits. */
export function compileJsonSchema(schema: Record<string, unknown>): JsonValidator {
  const key = JSON.stringify(schema);
  const cached = cache.get(key);
  if (cached) {
    // Most recently used last: the oldest entry is the one evicted.
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const { $schema: dialect, ...rest } = schema;
  const ajv = pickValidator(typeof dialect === 'string' ? dialect : undefined);
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(rest);
  } catch (error) {
    throw new SchemaError((error as Error).message);
  } finally {
    // ajv keeps every compiled schema (by object and by $id); this cache is the one that counts.
    ajv.removeSchema(rest);
    if (typeof rest.$id === 'string') ajv.removeSchema(rest.$id);
  }
  const validator: JsonValidator = (value) =>
    validate(value) ? undefined : ajv.errorsText(validate.errors, { dataVar: '' }).replace(/^\//, '');
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, validator);
  return validator;
}

function pickValidator(dialect: string | undefined): Ajv {
  if (dialect?.includes('2020-12')) return validators.draft2020;
  if (dialect?.includes('2019-09')) return validators.draft2019;
  return validators.draft07;
}

/** Parses JSON text; the error says where it broke. */
export function parseJsonText(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, error: `not valid JSON (${(error as Error).message})` };
  }
}
