/**
 * ctx.rateLimit: rate-limiter-flexible on the core's plugin_rate_limits table, keys prefixed
 * `<id>:<name>`, in the registry's database, so every server process on it shares each limit.
 *
 * SQLite: RateLimiterSQLite on the plugins' connection. Each call runs as a transaction of the
 * plugins' database: the limiter writes synchronously on that connection, and outside the queue
 * it could land inside another request's open transaction.
 *
 * PostgreSQL: RateLimiterPostgres, whose every call is one atomic statement, run through
 * PgPluginDatabase.bookkeeping() (its own short transaction).
 *
 * Either way the counting is not durable (see TransactionOptions): a counter lost in a power cut
 * harms nobody, and a request must not wait for the disk only to be counted.
 *
 * consume(key, points, { tx }) counts inside the caller's transaction instead (the same
 * statements, on its connection or client), which commits it: no transaction of its own.
 */
import type Database from 'better-sqlite3';
import { type RateLimiterAbstract, RateLimiterPostgres, RateLimiterRes, RateLimiterSQLite } from 'rate-limiter-flexible';
import type { PluginDatabase, RateLimit, RateLimitOptions, SqlValue } from './api.js';
import type { PgPluginDatabase } from './pg-db.js';
import type { SqlitePluginDatabase } from './sqlite-db.js';

export const RATE_LIMIT_TABLE = 'plugin_rate_limits';

const SOFT = { durable: false } as const;

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

function checkName(options: RateLimitOptions): void {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(options.name)) throw new TypeError(`rateLimit: name ${JSON.stringify(options.name)} must be 1-64 letters, digits, dots, dashes or underscores.`);
}

/** What both limiters take besides their store. */
function limiterOptions(plugin: string, options: RateLimitOptions) {
  return {
    tableName: RATE_LIMIT_TABLE,
    // The core's migrations make the table; the limiter never creates one.
    tableCreated: true,
    keyPrefix: `${plugin}:${options.name}`,
    points: options.points,
    duration: options.durationS,
    ...(options.blockDurationS ? { blockDuration: options.blockDurationS } : {}),
  };
}

/**
 * The RateLimit over `limiter`, each call run inside `around`; a consume given a tx runs on
 * `inTx(tx)`'s limiter instead, as a statement of that transaction.
 */
function rateLimit(limiter: RateLimiterAbstract, options: RateLimitOptions, around: <T>(fn: () => Promise<T>) => Promise<T>, inTx: (tx: PluginDatabase) => RateLimiterAbstract): RateLimit {
  const take = async (l: RateLimiterAbstract, key: string, points: number) => {
    try {
      await l.consume(key, points);
      return { allowed: true as const };
    } catch (err) {
      // Refused: committed all the same, so the points taken (and any block) are kept.
      if (err instanceof RateLimiterRes) return { allowed: false as const, retryAfterS: retryAfter(err) };
      throw err;
    }
  };
  return {
    consume: async (key, points = 1, o = {}) => (o.tx ? take(inTx(o.tx), key, points) : around(() => take(limiter, key, points))),
    peek: (key) =>
      around(async () => {
        const res = await limiter.get(key);
        return res ? { consumed: res.consumedPoints, retryAfterS: res.consumedPoints >= options.points ? retryAfter(res) : 0 } : { consumed: 0, retryAfterS: 0 };
      }),
    reset: async (key) => {
      await around(() => limiter.delete(key));
    },
  };
}

/**
 * RateLimiterSQLite whose UPSERT is prepared once rather than on every call, and runs without the
 * library's own transaction wrapper (a savepoint, built anew each call): one UPSERT … RETURNING is
 * atomic by itself, and every call here already runs inside a transaction of ours. Together they
 * cost a push a fifth of a millisecond. Should a release of the library rename the method, the
 * override stops applying and the library's own path runs: slower, the same counts.
 */
class PreparedRateLimiterSQLite extends RateLimiterSQLite {
  private readonly upserts = new Map<string, Database.Statement>();

  async _upsertTransactionBetterSQLite3(conn: Database.Database, query: string, params: unknown[]): Promise<unknown> {
    let s = this.upserts.get(query);
    if (!s) this.upserts.set(query, (s = conn.prepare(query)));
    return s.get(...params);
  }
}

export function sqliteRateLimit(db: SqlitePluginDatabase, plugin: string, options: RateLimitOptions): RateLimit {
  checkName(options);
  const limiter = new PreparedRateLimiterSQLite({ storeClient: db.db, storeType: 'better-sqlite3', ...limiterOptions(plugin, options) });
  // The limiter writes on the connection synchronously: inside the open transaction tx is part of.
  return rateLimit(limiter, options, (fn) => db.transaction(fn, SOFT), (tx) => {
    if (!db.isOpenTransaction(tx)) throw new TypeError('rateLimit.consume: { tx } must be the transaction ctx.db.transaction() is running now.');
    return limiter;
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
  return rateLimit(limiter, options, (fn) => fn(), inTx);
}
