/**
 * ctx.rateLimit: rate-limiter-flexible, keys prefixed `<id>:<name>`, in a store every server
 * process on the registry shares.
 *
 * SQLite: RateLimiterSQLite on a file of its own beside the database (`registry.sqlite` ->
 * `registry-rate-limits.sqlite`, its own connection, WAL, synchronous = OFF). Counting there, and
 * not in registry.sqlite, keeps a request that only reads (a sync pull) from committing to the
 * registry's database: a commit there would make every other worker process drop its page cache
 * (SQLite keeps none across another connection's commit), take the registry's write lock, and
 * wait behind whatever transaction holds it. Each count is one UPSERT … RETURNING, atomic by
 * itself; a busy lock is waited out on the event loop (whileBusy). The registry.sqlite table of
 * the same name, which the core's schema 4 made, stays empty on SQLite.
 *
 * PostgreSQL: RateLimiterPostgres on the core's plugin_rate_limits table, whose every call is one
 * atomic statement, run through PgPluginDatabase.bookkeeping() (its own short transaction).
 *
 * Either way the counting is not durable (see TransactionOptions): a counter lost in a power cut
 * harms nobody, and a request must not wait for the disk only to be counted.
 *
 * consume(key, points, { tx }) counts as part of the caller's transaction: on PostgreSQL a
 * statement of it (on its client); on SQLite a count in the counters' file made at once and taken
 * back should the transaction roll back (SqlitePluginDatabase.onRollback). Either way the points
 * are kept when it commits and not when it rolls back.
 */
import { basename } from 'node:path';
import Database from 'better-sqlite3';
import { IqpError } from '../../src/errors.js';
import { type RateLimiterAbstract, RateLimiterPostgres, RateLimiterRes, RateLimiterSQLite } from 'rate-limiter-flexible';
import type { PluginDatabase, RateLimit, RateLimitOptions, SqlValue } from './api.js';
import type { PgPluginDatabase } from './pg-db.js';
import { BUSY_TIMEOUT_MS, whileBusy } from './sqlite-busy.js';
import type { SqlitePluginDatabase } from './sqlite-db.js';

export const RATE_LIMIT_TABLE = 'plugin_rate_limits';

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

function checkName(options: RateLimitOptions): void {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(options.name)) throw new TypeError(`rateLimit: name ${JSON.stringify(options.name)} must be 1-64 letters, digits, dots, dashes or underscores.`);
}

/** What both limiters take besides their store. */
function limiterOptions(plugin: string, options: RateLimitOptions) {
  return {
    tableName: RATE_LIMIT_TABLE,
    // The core's migrations (PostgreSQL) or openCounters (SQLite) make the table; the limiter never creates one.
    tableCreated: true,
    keyPrefix: `${plugin}:${options.name}`,
    points: options.points,
    duration: options.durationS,
    ...(options.blockDurationS ? { blockDuration: options.blockDurationS } : {}),
  };
}

/** How a consume given a tx counts: on `limiter`, then `counted` (to take the points back should tx roll back). */
interface InTx {
  readonly limiter: RateLimiterAbstract;
  readonly counted?: (undo: () => Promise<unknown>) => void;
}

/** The RateLimit over `limiter`; a consume given a tx counts as `inTx(tx)` says. */
function rateLimit(limiter: RateLimiterAbstract, options: RateLimitOptions, inTx: (tx: PluginDatabase) => InTx): RateLimit {
  const take = async (l: RateLimiterAbstract, key: string, points: number) => {
    try {
      await l.consume(key, points);
      return { allowed: true as const };
    } catch (err) {
      // Refused: counted all the same, so the points taken (and any block) are kept.
      if (err instanceof RateLimiterRes) return { allowed: false as const, retryAfterS: retryAfter(err) };
      throw err;
    }
  };
  return {
    consume: async (key, points = 1, o = {}) => {
      if (!o.tx) return take(limiter, key, points);
      const t = inTx(o.tx);
      const r = await take(t.limiter, key, points);
      t.counted?.(() => t.limiter.reward(key, points));
      return r;
    },
    peek: async (key) => {
      const res = await limiter.get(key);
      return res ? { consumed: res.consumedPoints, retryAfterS: res.consumedPoints >= options.points ? retryAfter(res) : 0 } : { consumed: 0, retryAfterS: 0 };
    },
    reset: async (key) => {
      await limiter.delete(key);
    },
  };
}

/** The counters' file of the SQLite database at `databasePath`. */
export function countersPath(databasePath: string): string {
  return `${databasePath.replace(/\.sqlite$/, '')}-rate-limits.sqlite`;
}

/**
 * Opens (creating it if need be) the counters' file of the database at `databasePath`: WAL, no
 * fsync (a lost count harms nobody), its table made here, then busy_timeout 0 (statements wait
 * out a busy lock with whileBusy). A file SQLite cannot read is refused with the fix: it holds
 * nothing but counters, so removing it (with every server process on the directory stopped)
 * loses nothing.
 */
export function openCounters(databasePath: string): Database.Database {
  const path = countersPath(databasePath);
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    db.exec(`CREATE TABLE IF NOT EXISTS ${RATE_LIMIT_TABLE} (key TEXT PRIMARY KEY, points INTEGER NOT NULL DEFAULT 0, expire INTEGER)`);
    db.pragma('busy_timeout = 0');
    return db;
  } catch (err) {
    db?.close();
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY') {
      throw new IqpError('IQP_E_CONFIG', `The plugins' rate-limit counters file ${path} cannot be used (${(err as Error).message}).`, { file: path, sqlite: code }, {
        cause: err,
        hint: `It holds only rate-limit counters: stop every server on this data directory, remove ${basename(path)} and its -wal and -shm files (or make them writable by the server's user), and start again; the counters start afresh.`,
      });
    }
    throw err;
  }
}

/** Deletes counters whose window ended before nowMs. */
export async function sweepCounters(db: Database.Database, nowMs: number): Promise<void> {
  const s = db.prepare(`DELETE FROM ${RATE_LIMIT_TABLE} WHERE expire < ?`);
  await whileBusy(() => s.run(nowMs));
}

/**
 * RateLimiterSQLite on the counters' connection, its statements prepared once rather than on
 * every call, each run by itself (the library wraps its UPSERT in a transaction, built anew each
 * call: one UPSERT … RETURNING is atomic as it is) and waiting out a busy lock with whileBusy.
 * Should a release of the library rename these methods, the overrides stop applying and the
 * library's own path runs: slower, the same counts, and a busy lock answered with SQLITE_BUSY.
 */
class CountersLimiter extends RateLimiterSQLite {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(
    private readonly conn: Database.Database,
    opts: ReturnType<typeof limiterOptions> & { clearExpiredByTimeout: boolean },
  ) {
    super({ storeClient: conn, storeType: 'better-sqlite3', ...opts });
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.conn.prepare(sql)));
    return s;
  }

  async _upsertTransactionBetterSQLite3(_conn: Database.Database, query: string, params: unknown[]): Promise<unknown> {
    const s = this.statement(query);
    return whileBusy(() => s.get(...params));
  }

  async _get(rlKey: string): Promise<unknown> {
    const s = this.statement(`SELECT points, expire FROM ${RATE_LIMIT_TABLE} WHERE key = ? AND (expire > ? OR expire IS NULL)`);
    return (await whileBusy(() => s.get(rlKey, Date.now()))) ?? null;
  }

  async _delete(rlKey: string): Promise<boolean> {
    const s = this.statement(`DELETE FROM ${RATE_LIMIT_TABLE} WHERE key = ?`);
    return (await whileBusy(() => s.run(rlKey))).changes > 0;
  }

  /** The library's timer calls this every five minutes and does not catch: a sweep that fails (the connection closed, a lock held for 5 s) waits for the next. */
  async clearExpired(nowMs: number): Promise<void> {
    await sweepCounters(this.conn, nowMs).catch(() => undefined);
  }
}

/** `sweep`: the limiter deletes counters expired an hour ago every five minutes (an unref'd timer); off in command mode. */
export function sqliteRateLimit(db: SqlitePluginDatabase, plugin: string, options: RateLimitOptions, sweep: boolean): RateLimit {
  checkName(options);
  const limiter = new CountersLimiter(db.counterConnection(), { ...limiterOptions(plugin, options), clearExpiredByTimeout: sweep });
  return rateLimit(limiter, options, (tx) => {
    // Checked before counting: a count outside any transaction could never be taken back.
    if (!db.isOpenTransaction(tx)) throw new TypeError('rateLimit.consume: { tx } must be the transaction ctx.db.transaction() is running now.');
    return { limiter, counted: (undo) => db.onRollback(tx, undo) };
  });
}

/**
 * `sweep`: the limiter deletes rows expired an hour ago every five minutes (an unref'd timer, as
 * the SQLite one does); off in command mode, which starts no timers. The host also sweeps at start.
 */
export function pgRateLimit(db: PgPluginDatabase, plugin: string, options: RateLimitOptions, sweep: boolean): RateLimit {
  checkName(options);
  const limiter = new RateLimiterPostgres({
    // 'pool': the limiter calls query() for each statement and has nothing to release.
    storeClient: { query: (q: { text: string; values?: unknown[]; name?: string }) => db.bookkeeping(q) },
    storeType: 'pool',
    clearExpiredByTimeout: sweep,
    ...limiterOptions(plugin, options),
  });
  // In a transaction, the same statements on its client: a limiter per call, as its client is fixed.
  const inTx = (tx: PluginDatabase) =>
    new RateLimiterPostgres({
      storeClient: { query: async (q: { text: string; values?: unknown[] }) => ({ rows: await tx.all(q.text, (q.values ?? []) as SqlValue[]) }) },
      storeType: 'pool',
      clearExpiredByTimeout: false,
      ...limiterOptions(plugin, options),
    });
  return rateLimit(limiter, options, (tx) => ({ limiter: inTx(tx) }));
}
