/**
 * SyncStore over SQLite (better-sqlite3): one table of key → value, each write() one transaction,
 * synchronous = FULL so a commit has reached the disk when write() resolves.
 */
import Database from 'better-sqlite3';
import { type SyncStore, type WriteBatch, batchEntries, compareKeys, prefixEnd } from './store.js';

export interface SqliteStoreOptions {
  /** The table's name (default iqp_sync_kv), so the store can share an app's database. */
  table?: string;
}

export class SqliteStore implements SyncStore {
  readonly #db: Database.Database;
  readonly #owned: boolean;
  readonly #get: Database.Statement<[string], { value: string }>;
  readonly #range: Database.Statement<[string, string], { key: string; value: string }>;
  readonly #from: Database.Statement<[string], { key: string; value: string }>;
  readonly #apply: (set: Array<[string, string]>, del: string[]) => void;

  /** A path opens (and later closes) its own connection; a Database given in stays the caller's. */
  constructor(database: string | Database.Database, options: SqliteStoreOptions = {}) {
    const table = options.table ?? 'iqp_sync_kv';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(table)) throw new TypeError(`bad table name ${JSON.stringify(table)}`);
    this.#owned = typeof database === 'string';
    const db = typeof database === 'string' ? new Database(database) : database;
    this.#db = db;
    if (this.#owned) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`);
    this.#get = db.prepare(`SELECT value FROM ${table} WHERE key = ?`);
    this.#range = db.prepare(`SELECT key, value FROM ${table} WHERE key >= ? AND key < ?`);
    this.#from = db.prepare(`SELECT key, value FROM ${table} WHERE key >= ?`);
    const put = db.prepare(`INSERT INTO ${table} (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
    const remove = db.prepare(`DELETE FROM ${table} WHERE key = ?`);
    this.#apply = db.transaction((set: Array<[string, string]>, del: string[]) => {
      for (const k of del) remove.run(k);
      for (const [k, v] of set) put.run(k, v);
    });
  }

  async get(key: string): Promise<string | undefined> {
    return this.#get.get(key)?.value;
  }

  async scan(prefix: string): Promise<Array<[string, string]>> {
    const end = prefixEnd(prefix);
    const rows = end === undefined ? this.#from.all(prefix) : this.#range.all(prefix, end);
    // SQLite orders TEXT by UTF-8 bytes (code points); the interface promises JS order, and the
    // range may differ from the prefix at the edges of the surrogate block, so both are redone here.
    return rows
      .filter((r) => r.key.startsWith(prefix))
      .map((r): [string, string] => [r.key, r.value])
      .sort((a, b) => compareKeys(a[0], b[0]));
  }

  async write(batch: WriteBatch): Promise<void> {
    const { set, del } = batchEntries(batch);
    if (set.length === 0 && del.length === 0) return;
    this.#apply(set, del);
  }

  async close(): Promise<void> {
    if (this.#owned && this.#db.open) this.#db.close();
  }
}
