/**
 * The plugins' database on a registry kept in PostgreSQL: a pool of its own (so plugin
 * transactions never mix with the core's), shared by every plugin, and by every server on the
 * database.
 *
 * Plugins are written against SQLite's guarantee that a transaction runs as if alone (BEGIN
 * IMMEDIATE: one writer at a time, across processes): read a row, decide, write. Here many run at
 * once, on several servers, so every plugin statement and transaction is SERIALIZABLE: PostgreSQL
 * either commits it as if it had run alone or fails it with a serialization failure (or a
 * deadlock), and then the adapter runs the whole callback again on a fresh snapshot, after a short
 * random pause, up to a limit before answering 503 IQP_E_BUSY. Under READ COMMITTED the same
 * plugin code would lose updates silently (two pushes taking one sequence number, two first
 * signing keys).
 *
 * A statement that fails inside a transaction ends it on PostgreSQL (SQLite only undoes the
 * statement), so the transaction rejects with that statement's error even if the callback caught
 * it and went on.
 */
import pg from 'pg';
import { IqpError } from '../../src/errors.js';
import { sessionConfig } from '../stores/postgres/session.js';
import type { PluginDatabase, PluginMigration, RateLimit, RateLimitOptions, SqlValue, TransactionOptions } from './api.js';
import { applyPgMigration, lockPgMigrations } from './pg-schema.js';
import { numberPlaceholders, PLUGIN_TYPES } from './pg-sql.js';
import { pgRateLimit, RATE_LIMIT_TABLE } from './rate-limit.js';
import { unlessAborted } from './revocable.js';
import { pluginError } from './routes.js';
import type { LedgerRow, PluginStorage } from './storage.js';

export interface PgPluginOptions {
  /** postgres:// URL of the registry's database. */
  readonly connectionString: string;
  /** The schema of the registry's tables (default: the server's search_path). */
  readonly schema?: string;
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
  /** application_name of the connections (default 'iqp-plugins'). */
  readonly applicationName?: string;
  /** How often, and after what pause, a transaction PostgreSQL could not serialize runs again (tests shorten it). */
  readonly retry?: SerializationRetry;
}

export interface SerializationRetry {
  /** Tries of one transaction, the first included, before IQP_E_BUSY. */
  readonly attempts: number;
  /** The pause before try `n + 1` after `n` failed. */
  delayMs(n: number): number;
}

/**
 * Up to 20 tries, each after a random pause of up to min(100, 2^n) ms ("full jitter"): requests
 * on one hot row (one user's pushes from several devices) then drain one after another instead of
 * colliding again at once, and give up only after about a second of trying.
 */
export const DEFAULT_RETRY: SerializationRetry = { attempts: 20, delayMs: (n) => Math.random() * Math.min(100, 2 ** n) };

const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** serialization_failure and deadlock_detected: nothing was committed, and the same work may well succeed now. */
export function retryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
}

/** An error the server sent (the connection is fine); anything else may have left the connection unusable. */
const fromServer = (err: unknown) => typeof (err as { severity?: unknown } | null)?.severity === 'string';

function busy(err: unknown, attempts: number): Error {
  const e = pluginError('IQP_E_BUSY', `The database could not fit this change in with concurrent ones after ${attempts} tries; try again.`, { headers: { 'Retry-After': '1' } });
  return Object.assign(e, { cause: err });
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The first key of plugin transactions' advisory locks ('iqpt' in ASCII), the second being a hash
 * of TransactionOptions.lockKey. Two-key locks are a space apart from the migrations' one-key ones.
 */
const TRANSACTION_LOCK_CLASS = 0x69717074;

const nested = () => Promise.reject(new Error('transaction() inside a transaction: use the tx you were given'));

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly retry: boolean; readonly error: unknown };

export class PgPluginDatabase implements PluginStorage {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly texts = new Map<string, string>();
  /** The last transaction queued on each lock key in this process (TransactionOptions.lockKey). */
  private readonly keyed = new Map<string, Promise<void>>();
  private readonly retry: SerializationRetry;
  #closed = false;

  constructor(options: PgPluginOptions) {
    if (options.schema !== undefined && !SCHEMA.test(options.schema)) {
      throw new IqpError('IQP_E_CONFIG', `Invalid PostgreSQL schema name ${JSON.stringify(options.schema)}: use letters, digits and underscores.`);
    }
    // A server that stalls inside a transaction must not hold other servers' rows for ever.
    const settings = ['-c default_transaction_isolation=serializable', '-c idle_in_transaction_session_timeout=60s'];
    if (options.schema !== undefined) settings.push(`-c search_path=${options.schema}`);
    this.pool = new pg.Pool({
      ...sessionConfig(options.connectionString, settings),
      types: PLUGIN_TYPES,
      keepAlive: true,
      application_name: options.applicationName ?? 'iqp-plugins',
      max: options.poolSize ?? 10,
    });
    // An idle connection the server drops is an 'error' event; the pool replaces it. Unhandled, it would end the process.
    this.pool.on('error', () => undefined);
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /** After try `n` failed on serialization: pauses before the next, or throws IQP_E_BUSY when that was the last. */
  private async again(n: number, err: unknown): Promise<void> {
    if (n >= this.retry.attempts) throw busy(err, n);
    await pause(this.retry.delayMs(n));
  }

  /** The statement as PostgreSQL takes it (numbered placeholders), remembered per text. */
  private text(sql: string): string {
    let t = this.texts.get(sql);
    if (t === undefined) {
      t = numberPlaceholders(sql);
      // Plugins build SQL from constants; the cap only guards against one that does not.
      if (this.texts.size >= 1000) this.texts.clear();
      this.texts.set(sql, t);
    }
    return t;
  }

  /**
   * PostgreSQL text cannot hold U+0000: such a value (a device name, an id a client chose) is the
   * client's mistake, refused as a bad request before the database would fail on it with a 500.
   */
  private statement(sql: string, params: readonly SqlValue[]): pg.QueryConfig {
    for (const p of params) {
      if (typeof p === 'string' && p.includes('\u0000')) throw new IqpError('IQP_E_INVALID_REQUEST', 'A text value holds the character U+0000 (NUL), which the registry cannot store.');
    }
    return { text: this.text(sql), values: params as unknown[] };
  }

  /** One statement in a transaction of its own, run again when PostgreSQL could not serialize it. */
  private async single(sql: string, params: readonly SqlValue[]): Promise<pg.QueryResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query(this.statement(sql, params));
      } catch (err) {
        if (!retryable(err)) throw err;
        await this.again(attempt, err);
      }
    }
  }

  async all<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.single(sql, params)).rows as T[];
  }

  async get<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.single(sql, params)).rows[0] as T | undefined;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<{ readonly changes: number }> {
    return { changes: (await this.single(sql, params)).rowCount ?? 0 };
  }

  /**
   * On a client of its own, BEGIN … COMMIT (SERIALIZABLE); `durable: false` adds SET LOCAL
   * synchronous_commit = off, so the commit does not wait for the WAL flush. Run again, whole,
   * when PostgreSQL could not serialize it. `signal`: PluginStorage's.
   */
  async transaction<T>(fn: (tx: PluginDatabase) => Promise<T>, options: TransactionOptions = {}, signal?: AbortSignal): Promise<T> {
    // SERIALIZABLE named here too, not only as the sessions' default.
    const begin = options.durable === false ? 'BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit = off' : 'BEGIN ISOLATION LEVEL SERIALIZABLE';
    const key = options.lockKey;
    if (key === undefined) return this.tries(begin, fn, null, signal);
    // One transaction per key at a time in this process: the others wait here, not each holding a pooled connection.
    const before = this.keyed.get(key) ?? Promise.resolve();
    const mine = before.then(() => this.tries(begin, fn, key, signal));
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.keyed.set(key, tail);
    void tail.then(() => {
      if (this.keyed.get(key) === tail) this.keyed.delete(key);
    });
    return mine;
  }

  /** Runs the transaction, again while PostgreSQL could not serialize it; with a key, each try holds the key's advisory lock. */
  private async tries<T>(begin: string, fn: (tx: PluginDatabase) => Promise<T>, key: string | null, signal: AbortSignal | undefined): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const outcome = await this.withClient((c, discard) => {
        const once = () => this.attempt(c, begin, fn, discard, signal);
        return key === null ? once() : this.locked(c, key, discard, once);
      });
      if (outcome.ok) return outcome.value;
      if (!outcome.retry) throw outcome.error;
      await this.again(attempt, outcome.error);
    }
  }

  /**
   * fn while this connection holds the key's session advisory lock. Taken before BEGIN, so the
   * transaction's snapshot is taken after the previous holder committed. A connection that could
   * not give the lock back is discarded: ending its session releases it.
   */
  private async locked<T>(c: pg.PoolClient, key: string, discard: (err: Error) => void, fn: () => Promise<T>): Promise<T> {
    await c.query('SELECT pg_advisory_lock($1, hashtext($2))', [TRANSACTION_LOCK_CLASS, key]);
    try {
      return await fn();
    } finally {
      await c.query('SELECT pg_advisory_unlock($1, hashtext($2))', [TRANSACTION_LOCK_CLASS, key]).catch((err: unknown) => discard(err as Error));
    }
  }

  private async attempt<T>(c: pg.PoolClient, begin: string, fn: (tx: PluginDatabase) => Promise<T>, discard: (err: Error) => void, signal: AbortSignal | undefined): Promise<Outcome<T>> {
    await c.query(begin);
    const scope = { open: true, failure: undefined as unknown };
    const query = async (sql: string, params: readonly SqlValue[] = []) => {
      // A tx kept past its transaction would otherwise run on whichever request has the client next.
      if (!scope.open) throw new Error('a transaction’s tx was used after the transaction ended');
      try {
        return await c.query(this.statement(sql, params));
      } catch (err) {
        scope.failure ??= err;
        throw err;
      }
    };
    const tx: PluginDatabase = {
      dialect: 'postgres',
      all: async <R>(sql: string, params?: readonly SqlValue[]) => (await query(sql, params)).rows as R[],
      get: async <R>(sql: string, params?: readonly SqlValue[]) => (await query(sql, params)).rows[0] as R | undefined,
      run: async (sql: string, params?: readonly SqlValue[]) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
      transaction: nested,
    };
    try {
      let value: T;
      try {
        value = await unlessAborted(fn(tx), signal);
      } catch (err) {
        if (signal?.aborted && err === signal.reason) {
          // The callback may be waiting on a statement of its own, which a ROLLBACK would queue
          // behind: the connection is ended instead (PostgreSQL rolls back), and not reused.
          discard(err as Error);
          void c.end();
          return { ok: false, retry: false, error: err };
        }
        await c.query('ROLLBACK');
        return { ok: false, retry: retryable(scope.failure) || retryable(err), error: err };
      }
      if (scope.failure !== undefined) {
        // PostgreSQL aborted the transaction at that statement: nothing after it counted.
        await c.query('ROLLBACK');
        return { ok: false, retry: retryable(scope.failure), error: scope.failure };
      }
      try {
        const done = await c.query('COMMIT');
        if (done.command === 'ROLLBACK') return { ok: false, retry: false, error: new Error('PostgreSQL rolled the transaction back at COMMIT') };
      } catch (err) {
        // A serialization failure at COMMIT ends the transaction like any other.
        if (!fromServer(err)) throw err;
        return { ok: false, retry: retryable(err), error: err };
      }
      return { ok: true, value };
    } finally {
      scope.open = false;
    }
  }

  /**
   * fn with a client of the pool to itself, inside whatever transaction fn begins (rolled back if
   * fn fails). A client whose connection failed is discarded rather than handed to the next caller.
   */
  async withClient<T>(fn: (c: pg.PoolClient, discard: (err: Error) => void) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error) => (broken ??= err);
    c.on('error', onError);
    try {
      return await fn(c, onError);
    } catch (err) {
      // Whatever fn left open goes; a client that cannot even roll back is not reused.
      if (!broken) await c.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
      throw err;
    } finally {
      c.off('error', onError);
      c.release(broken);
    }
  }

  /**
   * One statement of bookkeeping (rate-limit counters): READ COMMITTED, as the statement is
   * atomic by itself and a hot counter must not fail on serialization, and with synchronous_commit
   * off, as ctx.rateLimit counts on SQLite (TransactionOptions.durable).
   */
  async bookkeeping(q: pg.QueryConfig): Promise<pg.QueryResult> {
    return this.withClient(async (c) => {
      await c.query('BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off');
      const result = await c.query(q);
      await c.query('COMMIT');
      return result;
    });
  }

  appliedMigrations(pluginId: string): Promise<LedgerRow[]> {
    return this.all<LedgerRow>('SELECT migration_id, checksum FROM plugin_migrations WHERE plugin_id = ? ORDER BY migration_id', [pluginId]);
  }

  applyMigration(pluginId: string, migration: PluginMigration, checksum: string, at: string): Promise<void> {
    return applyPgMigration(this, pluginId, migration, checksum, at);
  }

  lockMigrations(): Promise<() => Promise<void>> {
    return lockPgMigrations(this.pool);
  }

  rateLimiter(plugin: string, options: RateLimitOptions, mode: 'server' | 'command'): RateLimit {
    return pgRateLimit(this, plugin, options, mode === 'server');
  }

  async sweepRateLimits(nowMs: number): Promise<void> {
    await this.run(`DELETE FROM ${RATE_LIMIT_TABLE} WHERE expire < ?`, [nowMs]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pool.end();
  }
}
