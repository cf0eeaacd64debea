/** Waiting for another process's SQLite lock without stopping the event loop. */

/** How long a statement waits for another connection's write lock before SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * Runs fn (a statement run with the connection's busy_timeout at 0) until it does not fail with
 * SQLITE_BUSY, waiting on the event loop while another process holds the lock it needs: a few
 * turns first (the other's transaction is usually a millisecond or two), then 1 ms timers, up to
 * BUSY_TIMEOUT_MS, after which SQLite's SQLITE_BUSY is thrown. SQLite's own busy handler would
 * sleep with the event loop stopped: the process would neither read requests nor answer them.
 */
export async function whileBusy<T>(fn: () => T): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() - started >= BUSY_TIMEOUT_MS) throw err;
    }
    await (attempt < 8 ? new Promise((resolve) => setImmediate(resolve)) : new Promise((resolve) => setTimeout(resolve, 1)));
  }
}

/**
 * SQLITE_BUSY, or one of its extended codes (better-sqlite3 reports those): SQLITE_BUSY_RECOVERY
 * while another connection rebuilds the WAL index (the first one to open a file, on a data
 * directory's first start with several workers), SQLITE_BUSY_TIMEOUT. Each means "try again":
 * fn is a statement of its own, or a BEGIN IMMEDIATE, so a retry starts from a fresh snapshot.
 */
function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_'));
}
