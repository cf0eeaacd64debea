/**
 * The registry being moved, as its data directory's registry.sqlite holds it: opened read-only,
 * inside one read transaction for the whole move, so every count, row, ledger entry and blob
 * reference comes from the same snapshot (a token made meanwhile by `iqp token create` beside it
 * would not be half in it). Nothing here writes to the directory.
 */
import Database from 'better-sqlite3';
import { IqpError } from '../../src/errors.js';
import { databasePath, requireRegistry } from '../config.js';
import type { LedgerRow } from '../plugins/storage.js';
import { appliedVersions, LATEST_SCHEMA } from '../stores/sqlite/schema.js';

/** A value as better-sqlite3 reads it with safe integers: integers never round. */
export type SqliteValue = null | bigint | number | string | Buffer;

export interface SourceTable {
  readonly name: string;
  readonly columns: readonly string[];
  readonly rows: number;
}

export interface BlobRef {
  readonly sha256: string;
  readonly size: number;
  /** One pack stored under it (id@version), for messages. */
  readonly pack: string;
}

/** Each engine keeps its own ledger of the core's migrations (their versions differ): never copied. */
export const CORE_LEDGER = 'schema_migrations';

export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

export class SourceRegistry {
  private constructor(
    private readonly db: Database.Database,
    readonly dataDir: string,
  ) {}

  /** registry.sqlite of `dataDir`, or IQP_E_FILE_NOT_FOUND: checked before anything else, so a wrong path creates nothing. */
  static exists(dataDir: string): void {
    requireRegistry(dataDir, { kind: 'sqlite' });
  }

  static open(dataDir: string): SourceRegistry {
    SourceRegistry.exists(dataDir);
    const db = new Database(databasePath(dataDir), { readonly: true, fileMustExist: true });
    try {
      db.exec('BEGIN');
      // The snapshot starts at the first read.
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return new SourceRegistry(db, dataDir);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Refuses a directory whose core schema is not exactly this iqp's: the copy maps its tables onto this iqp's PostgreSQL schema. */
  checkSchema(): number {
    const version = appliedVersions(this.db).at(-1) ?? 0;
    if (version < LATEST_SCHEMA) {
      throw new IqpError('IQP_E_CONFIG', `${this.dataDir} has schema version ${version}, older than this iqp's ${LATEST_SCHEMA}.`, { data_dir: this.dataDir, schema_version: version, expected: LATEST_SCHEMA }, {
        hint: 'Bring it up to date first, with the settings it runs with now (no database_url): run `iqp server migrate`, or start this iqp on it once and stop it; then run migrate-store.',
      });
    }
    if (version > LATEST_SCHEMA) {
      throw new IqpError('IQP_E_CONFIG', `${this.dataDir} has schema version ${version}, newer than this iqp's ${LATEST_SCHEMA}.`, { data_dir: this.dataDir, schema_version: version, expected: LATEST_SCHEMA }, {
        hint: 'Run migrate-store with the iqp version that last ran this registry, or a newer one.',
      });
    }
    return version;
  }

  /** Every table of the registry (the core's and the plugins'), with its columns and rows, by name; SQLite's own and the core's ledger left out. */
  tables(): SourceTable[] {
    const names = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
    return names
      .filter((name) => name !== CORE_LEDGER)
      .map((name) => ({
        name,
        columns: (this.db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).pluck().all(name) as string[]),
        rows: this.count(name),
      }));
  }

  count(table: string): number {
    return this.db.prepare(`SELECT count(*) FROM ${quoteIdent(table)}`).pluck().get() as number;
  }

  /**
   * The rows of `table`, `columns` in that order, in batches of at most `size`. Nothing else may
   * run on this connection until the iteration ends (better-sqlite3 keeps the statement open).
   */
  *batches(table: string, columns: readonly string[], size: number): Generator<SqliteValue[][]> {
    const stmt = this.db.prepare(`SELECT ${columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table)}`).raw(true).safeIntegers(true);
    let batch: SqliteValue[][] = [];
    for (const row of stmt.iterate() as IterableIterator<SqliteValue[]>) {
      batch.push(row);
      if (batch.length === size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /** The highest id an AUTOINCREMENT table ever handed out (rows since deleted included); 0 when none. */
  highestId(table: string): bigint {
    const known = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'").get();
    if (!known) return 0n;
    return (this.db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck().safeIntegers(true).get(table) as bigint | undefined) ?? 0n;
  }

  registryId(): string {
    return this.db.prepare('SELECT registry_id FROM registry_identity WHERE singleton = 1').pluck().get() as string;
  }

  generation(): bigint {
    return this.db.prepare('SELECT generation FROM registry_changes WHERE singleton = 1').pluck().safeIntegers(true).get() as bigint;
  }

  /** The plugin_migrations ledger, by plugin id. */
  ledger(): Map<string, LedgerRow[]> {
    const rows = this.db.prepare('SELECT plugin_id, migration_id, checksum FROM plugin_migrations ORDER BY plugin_id, migration_id').all() as (LedgerRow & { plugin_id: string })[];
    const out = new Map<string, LedgerRow[]>();
    for (const { plugin_id, ...row } of rows) out.set(plugin_id, [...(out.get(plugin_id) ?? []), row]);
    return out;
  }

  /** Every blob a pack refers to, by sha256. */
  blobRefs(): BlobRef[] {
    return this.db.prepare("SELECT sha256, max(size_bytes) AS size, min(package_id || '@' || version) AS pack FROM packs GROUP BY sha256 ORDER BY sha256").all() as BlobRef[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
