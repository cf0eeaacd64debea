/**
 * The plugins' database on the embedded registry: its own better-sqlite3 connection to
 * registry.sqlite (so plugin transactions never mix with the core's), shared by every plugin.
 *
 * better-sqlite3 is synchronous, but a plugin's transaction callback is async: between its awaits
 * other requests run. Everything on this connection therefore goes through one queue: a
 * transaction holds it from BEGIN IMMEDIATE to COMMIT, and a single statement outside a
 * transaction waits its turn (run on the same connection while a transaction is open, it would
 * silently become part of it).
 *
 * Commits do not wait for the disk on the event loop: under WAL the connection runs
 * `synchronous = NORMAL`, and every result (of a write, or of a read that may have seen one) is
 * handed back only once wal-sync.ts has fdatasync'ed the -wal file past it, on libuv's threadpool,
 * one fdatasync for all the commits that landed meanwhile. Where WAL is unavailable, FULL as before.
 *
 * A server's connection also leaves checkpoints (copying the WAL back into the database, with its
 * fsyncs) to a worker thread (checkpointer.ts) instead of doing them inside a COMMIT.
 */
import Database from 'better-sqlite3';
import type { PluginDatabase, PluginMigration, RateLimit, RateLimitOptions, SqlValue, TransactionOptions } from './api.js';
import { refuseTrespass, transactionControlRefusal } from './migrations.js';
import { unlessAborted } from './revocable.js';
import { openCounters, sqliteRateLimit, sweepCounters } from './rate-limit.js';
import { sqliteObjects } from './sqlite-schema.js';
import type { LedgerRow, PluginStorage } from './storage.js';
import { WalSync } from './wal-sync.js';
import { Checkpointer } from './checkpointer.js';
import { BUSY_TIMEOUT_MS, whileBusy } from './sqlite-busy.js';

/**
 * A statement, and the names of the columns it returns when it returns rows. Such statements
 * read rows as arrays (raw mode) made into objects by rowObject: V8 builds same-shaped objects in
 * JavaScript faster than better-sqlite3 sets each property from C++ (a pull's page of 500 rows:
 * 2.8 -> 2.2 ms). Integers are read as bigints and narrowed to numbers where that is exact: beyond
 * 2^53 a number would silently round.
 */
interface Prepared {
  readonly s: Database.Statement;
  readonly columns: readonly string[] | null;
}

function rowObject(columns: readonly string[], row: readonly unknown[] | undefined): Record<string, unknown> | undefined {
  if (!row) return undefined;
  const o: Record<string, unknown> = {};
  for (let i = 0; i < columns.length; i++) {
    const name = columns[i]!;
    let v = row[i];
    if (typeof v === 'bigint' && v >= -9007199254740991n && v <= 9007199254740991n) v = Number(v);
    // A column named __proto__ is an own property like any other (assigning it would set the prototype).
    if (name === '__proto__') Object.defineProperty(o, name, { value: v, enumerable: true, writable: true, configurable: true });
    else o[name] = v;
  }
  return o;
}

function allRows<T>(p: Prepared, params: readonly SqlValue[]): T[] {
  const rows = p.s.all(...params) as unknown[][];
  const out = new Array<T>(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = rowObject(p.columns!, rows[i]) as T;
  return out;
}

function oneRow<T>(p: Prepared, params: readonly SqlValue[]): T | undefined {
  return rowObject(p.columns!, p.s.get(...params) as unknown[] | undefined) as T | undefined;
}

export class SqlitePluginDatabase implements PluginStorage {
  readonly dialect = 'sqlite' as const;
  readonly db: Database.Database;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly statements = new Map<string, Prepared>();
  /** Null where the journal is not WAL: then each COMMIT syncs by itself (synchronous = FULL). */
  private readonly sync: WalSync | null;
  /** PRAGMA data_version when last looked at (sawOthers), and its statement (db.pragma() prepares anew each call). */
  private dataVersion: number | undefined;
  private dataVersionStatement: Database.Statement | undefined;
  /** Checkpoints on a worker thread (a server's connection under WAL), else null: SQLite's own, in COMMIT. */
  readonly checkpoints: Checkpointer | null;

  /**
   * `checkpointThread`: for a server, which commits all day; the fallback is told why the thread
   * stopped (its checkpoints are then SQLite's own again). Commands leave it off.
   */
  constructor(
    readonly path: string,
    options: { checkpointThread?: { onFallBack: (why: string) => void } } = {},
  ) {
    this.db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    const wal = this.db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
    this.db.pragma(wal ? 'synchronous = NORMAL' : 'synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.sync = wal ? new WalSync(`${path}-wal`) : null;
    const thread = wal ? options.checkpointThread : undefined;
    if (thread) {
      const auto = this.db.pragma('wal_autocheckpoint', { simple: true }) as number;
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpoints = new Checkpointer(path, (why) => {
        if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${auto}`);
        thread.onFallBack(why);
      });
    } else {
      this.checkpoints = null;
    }
  }

  /** After anything on this connection that may have committed. */
  private committed(): void {
    this.sync?.committed();
    this.checkpoints?.committed();
  }

  private prepared(sql: string): Prepared {
    let p = this.statements.get(sql);
    if (!p) {
      const s = this.db.prepare(sql);
      if (s.reader) s.safeIntegers(true).raw(true);
      p = { s, columns: s.reader ? s.columns().map((c) => c.name) : null };
      // Plugins build SQL from constants; the cap only guards against one that does not.
      if (this.statements.size >= 1000) this.statements.clear();
      this.statements.set(sql, p);
    }
    return p;
  }

  /**
   * Runs fn when everything queued before it has finished; its failure does not block what
   * follows. Its outcome, success or failure, is handed over once every commit made so far is on
   * disk (fn's own, and any another request made that fn may have read).
   */
  private queued<T>(fn: () => Promise<T> | T, durable = true): Promise<T> {
    const sync = this.sync;
    const run = this.tail.then(fn, fn).finally(() => sync && this.sawOthers() && sync.committed());
    this.tail = run.catch(() => undefined);
    if (!sync || !durable) return run;
    return run.then(
      (value) => sync.durable().then(() => value),
      (err: unknown) => sync.durable().then(() => Promise.reject(err), () => Promise.reject(err)),
    );
  }

  /**
   * Whether another connection (another server process on this data directory, the core's own
   * connection) committed since the last look: what fn read may be such a commit, which its
   * writer may not have synced yet, so it counts as one of ours to sync before answering.
   */
  private sawOthers(): boolean {
    this.dataVersionStatement ??= this.db.prepare('PRAGMA data_version').pluck();
    const version = this.dataVersionStatement.get() as number;
    const changed = this.dataVersion !== undefined && version !== this.dataVersion;
    this.dataVersion = version;
    return changed;
  }

  /** A statement outside a transaction: one that writes commits by itself. */
  private single<T>(sql: string, use: (p: Prepared) => T): Promise<T> {
    return this.queued(() => {
      const p = this.prepared(sql);
      try {
        return use(p);
      } finally {
        if (!p.s.readonly) this.committed();
      }
    });
  }

  /** The tx of the transaction open now (what direct() handed it), else null. */
  private openTx: PluginDatabase | null = null;

  /** Whether tx is the one of the transaction this connection has open now. */
  isOpenTransaction(tx: PluginDatabase): boolean {
    return tx === this.openTx && this.db.inTransaction;
  }

  /**
   * The tx of one transaction: statements straight on the connection while `scope.open`. A tx kept
   * past its transaction (a callback the host abandoned) would otherwise run outside any
   * transaction, or inside whichever one holds the connection next.
   */
  private direct(scope: { open: boolean }): PluginDatabase {
    const prepared = (sql: string) => {
      if (!scope.open) throw new Error('a transaction’s tx was used after the transaction ended');
      return this.prepared(sql);
    };
    return {
      dialect: 'sqlite',
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => allRows<T>(prepared(sql), params),
      get: async <T>(sql: string, params: readonly SqlValue[] = []) => oneRow<T>(prepared(sql), params),
      run: async (sql: string, params: readonly SqlValue[] = []) => ({ changes: prepared(sql).s.run(...params).changes }),
      transaction: () => Promise.reject(new Error('transaction() inside a transaction: use the tx you were given')),
    };
  }

  all<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.single(sql, (p) => allRows<T>(p, params));
  }

  get<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.single(sql, (p) => oneRow<T>(p, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<{ readonly changes: number }> {
    return this.single(sql, (p) => ({ changes: p.s.run(...params).changes }));
  }

  /**
   * `durable: false` commits without counting for WalSync: its answer does not wait for an
   * fdatasync, nor does the next read's on its account; the next synced commit carries it to disk
   * (the -wal file is written in order).
   */
  transaction<T>(fn: (tx: PluginDatabase) => Promise<T>, options: TransactionOptions = {}, signal?: AbortSignal): Promise<T> {
    const durable = options.durable ?? true;
    return this.queued(async () => {
      signal?.throwIfAborted();
      await this.begin();
      const scope = { open: true };
      const tx = (this.openTx = this.direct(scope));
      try {
        // Aborted (its plugin left out), it rolls back now: nothing is running on the connection
        // between two of the callback's awaits, and the tx refuses whatever the callback does next.
        const result = await unlessAborted(fn(tx), signal);
        this.db.exec('COMMIT');
        if (durable) this.sync?.committed();
        this.checkpoints?.committed();
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        for (const undo of this.undos) await undo().catch(() => undefined);
        throw err;
      } finally {
        scope.open = false;
        this.openTx = null;
        this.undos.length = 0;
      }
    }, durable);
  }

  /** What to undo outside the database if the open transaction rolls back (onRollback). */
  private readonly undos: Array<() => Promise<unknown>> = [];

  /**
   * Runs `undo` should the transaction tx belongs to roll back: for what it did outside this
   * database (a rate-limit count in the counters' file). A failing undo is ignored.
   */
  onRollback(tx: PluginDatabase, undo: () => Promise<unknown>): void {
    if (!this.isOpenTransaction(tx)) throw new TypeError('onRollback: tx must be the transaction ctx.db.transaction() is running now.');
    this.undos.push(undo);
  }

  /**
   * BEGIN IMMEDIATE without SQLite's busy handler, which sleeps (1, 2, 5, 10 ms…) with the event
   * loop stopped while another process on this file (a worker) holds the write lock: that process
   * would then neither read requests nor answer them. The wait is whileBusy's, on the event loop.
   */
  private begin(): Promise<void> {
    return whileBusy(() => {
      this.busyTimeout(0);
      try {
        this.db.exec('BEGIN IMMEDIATE');
      } finally {
        this.busyTimeout(BUSY_TIMEOUT_MS);
      }
    });
  }

  private readonly busyStatements = new Map<number, Database.Statement>();
  private busyTimeout(ms: number): void {
    let s = this.busyStatements.get(ms);
    if (!s) this.busyStatements.set(ms, (s = this.db.prepare(`PRAGMA busy_timeout = ${ms}`)));
    s.run();
  }

  /**
   * Runs a script of several statements (migrations) inside the current transaction. A script
   * that ended that transaction itself (applyMigration refuses the ones it can see doing so) is
   * reported as what happened: what ran before the end is committed, not rolled back.
   */
  execScript(sql: string): void {
    const inside = this.db.inTransaction;
    let failure: unknown = null;
    try {
      this.db.exec(sql);
    } catch (err) {
      failure = err;
    }
    if (inside && !this.db.inTransaction) {
      this.committed();
      const after = failure ? `, then failed: ${(failure as Error)?.message ?? failure}` : '';
      // `committed`: applyPluginMigrations must not call it rolled back.
      throw Object.assign(new Error(`its script ended the transaction it runs in itself (COMMIT, END, ROLLBACK or RELEASE), so what ran before that stayed committed${after}; check the plugin's tables by hand`, { cause: failure }), { committed: true });
    }
    if (failure) throw failure;
    if (!inside) this.committed();
  }

  appliedMigrations(pluginId: string): Promise<LedgerRow[]> {
    return this.all<LedgerRow>('SELECT migration_id, checksum FROM plugin_migrations WHERE plugin_id = ? ORDER BY migration_id', [pluginId]);
  }

  applyMigration(pluginId: string, migration: PluginMigration, checksum: string, at: string): Promise<void> {
    // Refused before any of it runs: a COMMIT would commit half the migration, beyond rolling back.
    const refusal = transactionControlRefusal(pluginId, migration.id, migration.sqlite, 'sqlite');
    if (refusal) return Promise.reject(refusal);
    return this.transaction(async () => {
      const before = sqliteObjects(this.db);
      this.execScript(migration.sqlite);
      refuseTrespass(pluginId, migration.id, before, sqliteObjects(this.db));
      this.db.prepare('INSERT INTO plugin_migrations (plugin_id, migration_id, checksum, applied_at) VALUES (?, ?, ?, ?)').run(pluginId, migration.id, checksum, at);
    });
  }

  /** Nothing to take: every process on this file migrates under the data directory's lock. */
  async lockMigrations(): Promise<() => Promise<void>> {
    return async () => undefined;
  }

  /** The rate-limit counters' connection (rate-limit.ts), opened on first use. */
  private counters: Database.Database | null = null;

  counterConnection(): Database.Database {
    this.counters ??= openCounters(this.path);
    return this.counters;
  }

  rateLimiter(plugin: string, options: RateLimitOptions, mode: 'server' | 'command'): RateLimit {
    return sqliteRateLimit(this, plugin, options, mode === 'server');
  }

  sweepRateLimits(nowMs: number): Promise<void> {
    return sweepCounters(this.counterConnection(), nowMs);
  }

  close(): void {
    this.sync?.close();
    void this.checkpoints?.close();
    this.counters?.close();
    this.counters = null;
    this.db.close();
  }
}
