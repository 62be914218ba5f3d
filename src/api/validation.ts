import { z as zod, type z } from 'zod';
import { ApiError } from './errors.js';

/**
 * Parses with a zod schema and turns the first problem into an OpenAI-style 400 that names
 * the parameter (`input[0].content[1].text`), with OpenAI's codes: `invalid_type`,
 * `integer_below_min_value`, `unknown_parameter`, `invalid_value`, …
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  prefix: readonly PropertyKey[] = [],
): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw toApiError(result.error.issues[0]!, prefix);
}

export function formatParam(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out ? `.${String(segment)}` : String(segment);
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a decimal';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  record: 'an object',
};

type Issue = z.core.$ZodIssue;

/** zod reports integers as numbers; schemas built with `integer()` mark their issues with this. */
const INTEGER = 'integer';

/** An integer schema whose errors say "integer" (OpenAI's wording), optionally bounded. */
export function integer(bounds: { min?: number; max?: number } = {}) {
  let schema = zod.int({ error: () => INTEGER });
  if (bounds.min !== undefined) schema = schema.min(bounds.min, { error: () => INTEGER });
  if (bounds.max !== undefined) schema = schema.max(bounds.max, { error: () => INTEGER });
  return schema;
}

function toApiError(issue: Issue, prefix: readonly PropertyKey[]): ApiError {
  const path = [...prefix, ...issue.path];
  if (path.length === 0 && issue.code === 'invalid_type') {
    const expected = EXPECTED[issue.expected] ?? issue.expected;
    return new ApiError(
      400,
      `Invalid type for the request body: expected ${expected}, but got ${describe(issue.input)} instead.`,
      {
        code: 'invalid_type',
      },
    );
  }
  const param = formatParam(path);
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) {
        return new ApiError(400, `Missing required parameter: '${param}'.`, {
          param,
          code: 'missing_required_parameter',
        });
      }
      const expected =
        issue.message === INTEGER ? 'an integer' : (EXPECTED[issue.expected] ?? issue.expected);
      return new ApiError(
        400,
        `Invalid type for '${param}': expected ${expected}, but got ${describe(issue.input)} instead.`,
        { param, code: 'invalid_type' },
      );
    }
    case 'too_small':
    case 'too_big': {
      const below = issue.code === 'too_small';
      const limit = below
        ? (issue as { minimum: number | bigint }).minimum
        : (issue as { maximum: number | bigint }).maximum;
      const inclusive = issue.inclusive !== false;
      const comparison = below ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
      if (issue.origin === 'number' || issue.origin === 'int') {
        const kind = issue.message === INTEGER ? 'integer' : 'decimal';
        return new ApiError(
          400,
          `Invalid '${param}': ${kind} ${below ? 'below minimum' : 'above maximum'} value. Expected a value ${comparison} ${limit}, but got ${String(issue.input)} instead.`,
          { param, code: `${kind}_${below ? 'below_min' : 'above_max'}_value` },
        );
      }
      const what = issue.origin === 'array' ? 'array' : issue.origin === 'string' ? 'string' : 'object';
      const size = Array.isArray(issue.input)
        ? issue.input.length
        : typeof issue.input === 'string'
          ? issue.input.length
          : issue.input && typeof issue.input === 'object'
            ? Object.keys(issue.input).length
            : undefined;
      const unit = what === 'string' ? 'length' : what === 'array' ? 'length' : 'properties';
      return new ApiError(
        400,
        `Invalid '${param}': ${what} too ${below ? 'short' : 'long'}. Expected ${what === 'object' ? 'an object' : `a${what === 'array' ? 'n' : ''} ${what}`} with ${below ? 'minimum' : 'maximum'} ${unit} ${limit}${size !== undefined ? `, but got ${what === 'object' ? 'an object' : `a${what === 'array' ? 'n' : ''} ${what}`} with ${unit} ${size} instead` : ''}.`,
        { param, code: `${what}_${below ? 'below_min' : 'above_max'}_length` },
      );
    }
    case 'invalid_value': {
      const values = issue.values.map((value) => `'${String(value)}'`);
      const supported =
        values.length > 1 ? `${values.slice(0, -1).join(', ')} and ${values.at(-1)}` : values[0];
      return new ApiError(
        400,
        `Invalid value for '${param}': '${String(issue.input)}'. Supported values are: ${supported}.`,
        { param, code: 'invalid_value' },
      );
    }
    case 'unrecognized_keys': {
      const key = issue.keys[0]!;
      const keyParam = formatParam([...path, key]);
      return new ApiError(400, `Unknown parameter: '${keyParam}'.`, {
        param: keyParam,
        code: 'unknown_parameter',
      });
    }
    case 'invalid_union': {
      // A discriminated union names the discriminator in `note`; report the type itself.
      const discriminator = (issue as { discriminator?: string }).discriminator;
      if (discriminator) {
        const typeParam = path.at(-1) === discriminator ? param : formatParam([...path, discriminator]);
        const input = issue.input as Record<string, unknown> | undefined;
        const given = input && typeof input === 'object' ? input[discriminator] : undefined;
        return new ApiError(
          400,
          given === undefined
            ? `Missing required parameter: '${typeParam}'.`
            : `Invalid value for '${typeParam}': '${String(given)}' is not a supported type here.`,
          { param: typeParam, code: given === undefined ? 'missing_required_parameter' : 'invalid_value' },
        );
      }
      // Every branch wanted another type: say which types would do.
      const firsts = issue.errors.map((branch) => branch[0]);
      if (firsts.every((first) => first?.code === 'invalid_type' && first.path.length === 0)) {
        const expected = firsts.map(
          (first) => EXPECTED[(first as { expected: string }).expected] ?? 'a value',
        );
        return new ApiError(
          400,
          `Invalid type for '${param}': expected ${[...new Set(expected)].join(' or ')}, but got ${describe(issue.input)} instead.`,
          { param, code: 'invalid_type' },
        );
      }
      // Otherwise report the branch that got furthest (the deepest path).
      const deepest = issue.errors
        .map((branch) => branch[0])
        .filter((candidate): candidate is Issue => candidate !== undefined)
        .sort((a, b) => b.path.length - a.path.length)[0];
      if (deepest && deepest.path.length > 0) return toApiError(deepest, path);
      return new ApiError(400, `Invalid value for '${param}'.`, { param, code: 'invalid_value' });
    }
    case 'invalid_key': {
      // The path ends with the offending key; name the record, and say what keys must be.
      const recordParam = formatParam(path.slice(0, -1));
      const inner = issue.issues[0];
      const limit = inner?.code === 'too_big' ? ` at most ${String(inner.maximum)} characters` : ' valid';
      return new ApiError(
        400,
        `Invalid '${recordParam}': the key '${String(path.at(-1))}' is not allowed; keys must be${limit}.`,
        {
          param: recordParam,
          code: 'invalid_value',
        },
      );
    }
    default:
      return new ApiError(400, `Invalid '${param}': ${issue.message}.`, { param, code: 'invalid_value' });
  }
}
