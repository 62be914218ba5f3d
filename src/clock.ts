/**
 * A string made from the current time, computed again only when the millisecond changes: under
 * load ids and log lines ask for the time many times per millisecond, and formatting it
 * (`toString(16)`, `toISOString()`) costs more than reading it.
 */
export function perMillisecond(format: (millis: number) => string): () => string {
  let last = -1;
  let value = '';
  return () => {
    const now = Date.now();
    if (now !== last) {
      last = now;
      value = format(now);
    }
    return value;
  };
}
