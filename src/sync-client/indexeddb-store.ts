/**
 * SyncStore over IndexedDB: one database, one object store of string keys to string values, and
 * each write() one readwrite transaction (durability 'strict', so it has reached the disk when it
 * resolves). The few IndexedDB types used are declared here: the project compiles without the DOM
 * library, and a `/// <reference lib="dom" />` would leak into every file of the program.
 */
import { type SyncStore, type WriteBatch, batchEntries, prefixEnd } from './store.js';

interface Req<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
interface OpenReq extends Req<Db> {
  onupgradeneeded: ((ev: unknown) => void) | null;
  onblocked: ((ev: unknown) => void) | null;
}
interface Db {
  readonly objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(names: string, mode: 'readonly' | 'readwrite', options?: { durability?: 'default' | 'strict' | 'relaxed' }): Tx;
  close(): void;
  onversionchange: ((ev: unknown) => void) | null;
}
interface Tx {
  objectStore(name: string): ObjStore;
  readonly error: unknown;
  oncomplete: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onabort: ((ev: unknown) => void) | null;
  abort(): void;
}
interface ObjStore {
  get(key: string): Req<unknown>;
  getAll(range?: unknown): Req<unknown[]>;
  getAllKeys(range?: unknown): Req<unknown[]>;
  put(value: string, key: string): Req<unknown>;
  delete(key: string): Req<unknown>;
}
/** The parts of window.indexedDB and window.IDBKeyRange this file uses. */
export interface IndexedDbApi {
  indexedDB: { open(name: string, version?: number): OpenReq };
  IDBKeyRange: { bound(lower: string, upper: string, lowerOpen?: boolean, upperOpen?: boolean): unknown; lowerBound(lower: string, open?: boolean): unknown };
}

const OBJECT_STORE = 'kv';

function request<T>(req: Req<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: Tx): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

export class IndexedDbStore implements SyncStore {
  /** Every tab of the origin that opens this database shares it: one of them at a time syncs. */
  readonly lockName: string;
  readonly #name: string;
  readonly #api: IndexedDbApi;
  #db: Promise<Db> | undefined;

  /** `api` defaults to the page's globals; pass one (fake-indexeddb, a worker's) to use another. */
  constructor(name = 'iqp-sync', api?: IndexedDbApi) {
    this.#name = name;
    this.lockName = `iqp-sync-client:indexeddb:${name}`;
    const g = globalThis as unknown as Partial<IndexedDbApi>;
    const chosen = api ?? (g.indexedDB && g.IDBKeyRange ? { indexedDB: g.indexedDB, IDBKeyRange: g.IDBKeyRange } : undefined);
    if (!chosen) throw new Error('IndexedDB is not available here; pass an implementation or use another SyncStore');
    this.#api = chosen;
  }

  #open(): Promise<Db> {
    this.#db ??= new Promise<Db>((resolve, reject) => {
      const req = this.#api.indexedDB.open(this.#name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(OBJECT_STORE)) req.result.createObjectStore(OBJECT_STORE);
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading the database: let it, and reopen on our next call.
        db.onversionchange = () => {
          db.close();
          this.#db = undefined;
        };
        resolve(db);
      };
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error(`IndexedDB ${this.#name} is blocked by another connection`));
    });
    return this.#db;
  }

  async get(key: string): Promise<string | undefined> {
    const db = await this.#open();
    const value = await request(db.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE).get(key));
    return typeof value === 'string' ? value : undefined;
  }

  async scan(prefix: string): Promise<Array<[string, string]>> {
    const db = await this.#open();
    const end = prefixEnd(prefix);
    const range = end === undefined ? (prefix === '' ? undefined : this.#api.IDBKeyRange.lowerBound(prefix)) : this.#api.IDBKeyRange.bound(prefix, end, false, true);
    const os = db.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE);
    // Both in one transaction, both in key order: they pair up index by index.
    const [keys, values] = await Promise.all([request(os.getAllKeys(range)), request(os.getAll(range))]);
    const out: Array<[string, string]> = [];
    keys.forEach((k, i) => {
      const v = values[i];
      if (typeof k === 'string' && typeof v === 'string' && k.startsWith(prefix)) out.push([k, v]);
    });
    return out;
  }

  async write(batch: WriteBatch): Promise<void> {
    const { set, del } = batchEntries(batch);
    if (set.length === 0 && del.length === 0) return;
    const db = await this.#open();
    const tx = db.transaction(OBJECT_STORE, 'readwrite', { durability: 'strict' });
    const finished = done(tx);
    const os = tx.objectStore(OBJECT_STORE);
    for (const k of del) os.delete(k);
    for (const [k, v] of set) os.put(v, k);
    await finished;
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (db !== undefined) (await db).close();
  }
}
