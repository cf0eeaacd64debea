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
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() - started >= BUSY_TIMEOUT_MS) throw err;
    }
    await (attempt < 8 ? new Promise((resolve) => setImmediate(resolve)) : new Promise((resolve) => setTimeout(resolve, 1)));
  }
}
