/**
 * Whether an error means the database cannot be reached or is overloaded right now (as opposed
 * to a bug): such errors become a 503 the client may retry, never a hang or a bare 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    // Node socket errors, PostgreSQL connection (08…), shutdown (57P0…) and too-many-connections (53300)
    // classes, SQLite lock contention.
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code))
      return true;
    if (/^(08|57P0|53300)/.test(code)) return true;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return true;
  }
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout|Connection ended unexpectedly/i.test(
      message,
    )
  );
}
