/**
 * What the plugin host needs from the plugins' database besides what plugins get as ctx.db: the
 * migrations ledger, applying one migration with its ownership check, a lock that keeps other
 * servers' migrations waiting, and the rate limiter. Both adapters (sqlite-db.ts, pg-db.ts)
 * implement it, so the host and migrations.ts never reach into one engine.
 */
import type { PluginDatabase, PluginMigration, RateLimit, RateLimitOptions, TransactionOptions } from './api.js';

/** One row of the core's plugin_migrations ledger. */
export interface LedgerRow {
  readonly migration_id: string;
  readonly checksum: string;
}

/** A schema object, as both engines' catalogs can describe it, to tell what a migration touched. */
export interface SchemaObject {
  /** 'table', 'index', 'trigger', 'view', 'sequence', 'function', … */
  readonly type: string;
  readonly name: string;
  /** The table it belongs to (its own name for a table, view, sequence or function). */
  readonly table: string;
  /** Whatever changes when the object does (SQLite: its CREATE statement; PostgreSQL: columns, constraints, definitions). */
  readonly definition: string | null;
}

export interface PluginStorage extends PluginDatabase {
  /**
   * ctx.db's transaction; when `signal` aborts (the host giving up on the plugin that runs it:
   * revocable.ts), it rejects with the signal's reason at once, rolled back, its connection free
   * for others, and its tx refuses every later call.
   */
  transaction<T>(fn: (tx: PluginDatabase) => Promise<T>, options?: TransactionOptions, signal?: AbortSignal): Promise<T>;
  /** Plugin `pluginId`'s rows of the ledger, by migration id. */
  appliedMigrations(pluginId: string): Promise<LedgerRow[]>;
  /**
   * Runs the migration's script for this dialect and records its ledger row (`checksum`, `at`) in
   * one transaction. If the script created, changed or dropped anything not named `<id>_…` (on a
   * table named so), everything is rolled back and IQP_E_PLUGIN_MIGRATION thrown (trespassed()).
   */
  applyMigration(pluginId: string, migration: PluginMigration, checksum: string, at: string): Promise<void>;
  /**
   * Holds plugin migrations of every other server on this database off until the returned
   * function is called (PostgreSQL: an advisory lock). SQLite needs none: the data directory's
   * lock, which the host takes around migrations, already covers every process on it.
   */
  lockMigrations(): Promise<() => Promise<void>>;
  /** The limiter behind ctx.rateLimit; `mode` 'command' starts no timers. */
  rateLimiter(plugin: string, options: RateLimitOptions, mode: 'server' | 'command'): RateLimit;
  /** Deletes rate-limit counters whose window ended before nowMs (the host, at start). */
  sweepRateLimits(nowMs: number): Promise<void>;
}
