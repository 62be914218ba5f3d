import pino, { type Logger } from 'pino';

/**
 * Where secrets could appear in a logged object. Ferry never logs them on purpose; this is the
 * safety net for when someone logs a request's headers or the configuration. Paths are
 * explicit: a leading `*.` wildcard tripled the cost of every log line (BENCHMARKS.md).
 */
const SECRET_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'apiKey',
  'apiKeys',
  'key',
  'backend.apiKey',
  'backends[*].apiKey',
  'config.apiKeys',
  'config.backends[*].apiKey',
];

/**
 * Structured JSON logs. API keys never reach a log line: auth headers and configured keys are
 * redacted wherever they might appear; prompts and answers are only logged at debug level.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'ferry' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}

export type { Logger };
