import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatParam } from '../api/validation.js';
import { FerryConfig, type FerryConfigInput } from './schema.js';

/** Settings given on the command line; each also has an environment variable (see `ENV`). */
export interface ConfigOverrides {
  config?: string;
  host?: string;
  port?: string;
  database?: string;
  databasePoolSize?: string;
  backend?: string[];
  logLevel?: string;
  defaultContextWindow?: string;
  otlpEndpoint?: string;
  keyRpm?: string;
  keyConcurrency?: string;
  tenantRpm?: string;
  tenantConcurrency?: string;
  connectTimeoutMs?: string;
  firstByteTimeoutMs?: string;
  idleTimeoutMs?: string;
  requestTimeoutMs?: string;
}

/** The environment variable behind each command-line setting. */
export const ENV = {
  config: 'FERRY_CONFIG',
  host: 'FERRY_HOST',
  port: 'FERRY_PORT',
  database: 'FERRY_DATABASE',
  databasePoolSize: 'FERRY_DATABASE_POOL_SIZE',
  backend: 'FERRY_BACKENDS',
  logLevel: 'FERRY_LOG_LEVEL',
  defaultContextWindow: 'FERRY_DEFAULT_CONTEXT_WINDOW',
  otlpEndpoint: 'FERRY_OTLP_ENDPOINT',
  keyRpm: 'FERRY_KEY_RPM',
  keyConcurrency: 'FERRY_KEY_CONCURRENCY',
  tenantRpm: 'FERRY_TENANT_RPM',
  tenantConcurrency: 'FERRY_TENANT_CONCURRENCY',
  connectTimeoutMs: 'FERRY_CONNECT_TIMEOUT_MS',
  firstByteTimeoutMs: 'FERRY_FIRST_BYTE_TIMEOUT_MS',
  idleTimeoutMs: 'FERRY_IDLE_TIMEOUT_MS',
  requestTimeoutMs: 'FERRY_REQUEST_TIMEOUT_MS',
} as const satisfies Record<keyof ConfigOverrides, string>;

/** Settings only taken from the environment (never flags: command lines are visible to other users). */
export const SECRET_ENV = { reasoningKey: 'FERRY_REASONING_KEY' } as const;

export const DEFAULT_BACKEND = 'ollama=ollama:http://127.0.0.1:11434';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses `NAME=KIND:URL` (e.g. `gpu=openai-chat:http://10.0.0.5:8000/v1`). */
export function parseBackendSpec(spec: string): { name: string; kind: string; url: string } {
  const match = /^([^=]+)=([a-z-]+):(.+)$/.exec(spec.trim());
  if (!match)
    throw new ConfigError(
      `Invalid backend '${spec}': expected NAME=KIND:URL, e.g. ollama=ollama:http://127.0.0.1:11434.`,
    );
  return { name: match[1]!, kind: match[2]!, url: match[3]! };
}

/**
 * Builds the configuration: defaults, then the config file, then environment variables, then
 * command-line flags, validated as a whole. Without any backend, one Ollama at its default port.
 */
export function loadConfig(
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): FerryConfig {
  const pick = (key: keyof typeof ENV): string | undefined => {
    const flag = overrides[key];
    if (typeof flag === 'string') return flag;
    return env[ENV[key]] || undefined;
  };

  const file = pick('config');
  const input: Record<string, unknown> = file ? readConfigFile(file) : {};

  const host = pick('host');
  if (host) input.host = host;
  const port = pick('port');
  if (port) input.port = toInteger(port, '--port');
  const database = pick('database');
  if (database) input.database = database;
  const poolSize = pick('databasePoolSize');
  if (poolSize) input.databasePoolSize = toInteger(poolSize, '--database-pool-size');
  const logLevel = pick('logLevel');
  if (logLevel) input.logLevel = logLevel;
  const contextWindow = pick('defaultContextWindow');
  if (contextWindow) input.defaultContextWindow = toInteger(contextWindow, '--default-context-window');

  const reasoningKey = env[SECRET_ENV.reasoningKey];
  if (reasoningKey) input.reasoningKey = reasoningKey;
  const otlpEndpoint = pick('otlpEndpoint');
  if (otlpEndpoint) input.tracing = { ...section(input, 'tracing'), enabled: true, endpoint: otlpEndpoint };

  // Nested numeric settings: [setting, section path, field, flag name].
  const nested = [
    ['keyRpm', ['rateLimits', 'perKey'], 'requestsPerMinute', '--key-rpm'],
    ['keyConcurrency', ['rateLimits', 'perKey'], 'concurrentRequests', '--key-concurrency'],
    ['tenantRpm', ['rateLimits', 'perTenant'], 'requestsPerMinute', '--tenant-rpm'],
    ['tenantConcurrency', ['rateLimits', 'perTenant'], 'concurrentRequests', '--tenant-concurrency'],
    ['connectTimeoutMs', ['timeouts'], 'connectMs', '--connect-timeout-ms'],
    ['firstByteTimeoutMs', ['timeouts'], 'firstByteMs', '--first-byte-timeout-ms'],
    ['idleTimeoutMs', ['timeouts'], 'idleMs', '--idle-timeout-ms'],
    ['requestTimeoutMs', ['timeouts'], 'requestMs', '--request-timeout-ms'],
  ] as const;
  for (const [setting, path, field, flag] of nested) {
    const text = pick(setting);
    if (!text) continue;
    let target = input;
    for (const key of path) target = target[key] = section(target, key);
    target[field] = toInteger(text, flag);
  }

  const specs = overrides.backend?.length
    ? overrides.backend
    : env[ENV.backend]
      ? env[ENV.backend]!.split(',').filter((spec) => spec.trim())
      : undefined;
  if (specs) {
    // Flags and the environment replace the file's backends of the same name, and add the rest.
    const fromFile = Array.isArray(input.backends) ? (input.backends as { name?: string }[]) : [];
    const given = specs.map(parseBackendSpec);
    const names = new Set(given.map((backend) => backend.name));
    input.backends = [...fromFile.filter((backend) => !names.has(backend.name ?? '')), ...given];
  }
  if (!Array.isArray(input.backends) || input.backends.length === 0)
    input.backends = [parseBackendSpec(DEFAULT_BACKEND)];

  return validate(input as FerryConfigInput);
}

export function validate(input: FerryConfigInput): FerryConfig {
  const result = FerryConfig.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(
      `Invalid configuration at '${formatParam(issue.path) || '(root)'}': ${issue.message}.`,
    );
  }
  const config = result.data;
  const names = new Set<string>();
  for (const backend of config.backends) {
    if (names.has(backend.name)) throw new ConfigError(`Backend '${backend.name}' is configured twice.`);
    names.add(backend.name);
  }
  const keyNames = new Set<string>();
  for (const entry of Object.values(config.apiKeys)) {
    if (typeof entry === 'string' || entry.name === undefined) continue;
    if (keyNames.has(entry.name)) throw new ConfigError(`Two API keys are named '${entry.name}'.`);
    keyNames.add(entry.name);
  }
  for (const [model, settings] of Object.entries(config.models)) {
    for (const backend of settings.backends ?? []) {
      if (!names.has(backend))
        throw new ConfigError(`Model '${model}' names an unknown backend '${backend}'.`);
    }
  }
  return config;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read config file '${path}': ${(error as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new Error('expected a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`Config file '${path}' is not valid JSON: ${(error as Error).message}`);
  }
}

/** A copy of an object-valued setting of the config file, so overrides can be layered onto it. */
function section(input: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = input[key];
  return value && typeof value === 'object' && !Array.isArray(value) ? { ...(value as object) } : {};
}

function toInteger(text: string, what: string): number {
  const value = z.coerce.number().int().safeParse(text);
  if (!value.success) throw new ConfigError(`${what} must be an integer, got '${text}'.`);
  return value.data;
}
