import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logger.js';

export interface CapturedLogs {
  logger: Logger;
  /** Everything written so far, as the raw JSON lines. */
  text(): string;
  /** Every line, parsed. */
  lines(): Record<string, unknown>[];
}

/** A real Ferry logger (same redaction and format) writing into memory instead of stdout. */
export function captureLogs(level: string): CapturedLogs {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const logger = createLogger(level, sink);
  return {
    logger,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
