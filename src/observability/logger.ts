import pino, { type Logger } from 'pino';
import { perMillisecond } from '../clock.js';

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
      // pino's isoTime, formatted once per millisecond.
      timestamp: perMillisecond((millis) => `,"time":"${new Date(millis).toISOString()}"`),
      redact: { paths: SECRET_PATHS, censor: '[redacted]' },
    },
    destination ?? stdoutInBatches(),
  );
}

/**
 * Stdout, written synchronously a few kilobytes at a time. pino's default hands every line to
 * a libuv thread, and on a busy core the thread switch cost the event loop about 36 µs per
 * request line (BENCHMARKS.md); one `write` per 4 KB costs about a microsecond. Lines wait at
 * most `periodicFlush` ms, and what is left is written when the process exits. One stream for
 * the process, however many loggers write to it.
 */
let stdout: ReturnType<typeof pino.destination> | undefined;

function stdoutInBatches(): pino.DestinationStream {
  if (!stdout) {
    const stream = pino.destination({ dest: 1, sync: true, minLength: 4096, periodicFlush: 200 });
    process.once('exit', () => {
      try {
        stream.flushSync();
      } catch {
        // Stdout is gone (a closed pipe): nothing left to write to.
      }
    });
    stdout = stream;
  }
  return stdout;
}

export type { Logger };
