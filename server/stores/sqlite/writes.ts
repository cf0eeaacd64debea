/**
 * Write transactions and the change counter of one SQLite connection, kept together so the counter
 * can be read cheaply on the hot path without ever hiding this process's own writes.
 *
 * Every cached answer asks MetadataStore.generation() whether the registry changed; a statement per
 * request cost about a fifth of one process's cached-JSON throughput (docs/performance.md). The value
 * read is kept for at most `memoMs` (1 ms): another process's write is seen at most that much later
 * (the PostgreSQL store's feed is looser still), and every write through this connection forgets the
 * kept value as it commits, so a publish is visible to the next request of the process that made it.
 */
import type Database from 'better-sqlite3';

export const COUNTER_MEMO_MS = 1;

export class SqliteWrites {
  #read: Database.Statement<[], number> | null = null;
  #value = 0;
  #until = -Infinity;

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number = () => performance.now(),
    private readonly memoMs: number = COUNTER_MEMO_MS,
  ) {}

  /** Runs fn in an IMMEDIATE transaction; the kept counter value is dropped whether it commits or not. */
  run<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.#until = -Infinity;
    }
  }

  generation(): number {
    const t = this.now();
    if (t < this.#until) return this.#value;
    // Prepared on first use: the table exists only once the store is migrated.
    this.#read ??= this.db.prepare<[], number>('SELECT generation FROM registry_changes WHERE singleton = 1').pluck();
    this.#value = this.#read.get()!;
    this.#until = t + this.memoMs;
    return this.#value;
  }
}
