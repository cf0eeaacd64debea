/**
 * A small in-memory IndexedDB for running IndexedDbStore through the conformance suite under Node
 * (the browser test runs the real one): string keys in JS order, requests answered asynchronously
 * in order, and readwrite transactions that run one at a time, each on a copy swapped in when it
 * completes, so its writes land together or not at all. Only what IndexedDbStore calls is here.
 */
import type { IndexedDbApi } from '../../src/sync-client/indexeddb-store.js';

interface Range {
  lower: string;
  upper?: string;
  lowerOpen: boolean;
  upperOpen: boolean;
}

function inRange(key: string, r: Range | undefined): boolean {
  if (!r) return true;
  if (key < r.lower || (r.lowerOpen && key === r.lower)) return false;
  if (r.upper !== undefined && (key > r.upper || (r.upperOpen && key === r.upper))) return false;
  return true;
}

class Request<T> {
  result!: T;
  error: unknown = null;
  onsuccess: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
}

class Transaction {
  error: unknown = null;
  oncomplete: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onabort: ((ev: unknown) => void) | null = null;
  #data = new Map<string, string>();
  #pending = 0;
  #done = false;
  /** Resolves when this transaction may run: readwrite ones wait for the one before. */
  readonly #ready: Promise<void>;
  #release: () => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly mode: 'readonly' | 'readwrite',
  ) {
    const before = mode === 'readwrite' ? db.writeLock : Promise.resolve();
    if (mode === 'readwrite') db.writeLock = new Promise<void>((resolve) => (this.#release = resolve));
    this.#ready = before.then(() => {
      this.#data = new Map(db.data);
    });
    // Auto-commit once a turn passes with no request left, as IndexedDB does.
    void this.#ready.then(() => setImmediate(() => this.#maybeFinish()));
  }

  abort(): void {
    this.#done = true;
    this.#release();
    this.onabort?.({});
  }

  objectStore(_name: string) {
    const op = <T>(fn: (data: Map<string, string>) => T): Request<T> => {
      if (this.#done) throw new Error('TransactionInactiveError');
      const req = new Request<T>();
      this.#pending++;
      void this.#ready.then(() =>
        setImmediate(() => {
          req.result = fn(this.#data);
          req.onsuccess?.({});
          this.#pending--;
          setImmediate(() => this.#maybeFinish());
        }),
      );
      return req;
    };
    const entries = (data: Map<string, string>, range?: unknown) => [...data].filter(([k]) => inRange(k, range as Range | undefined)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      get: (key: string) => op((d) => d.get(key)),
      getAll: (range?: unknown) => op((d) => entries(d, range).map(([, v]) => v as unknown)),
      getAllKeys: (range?: unknown) => op((d) => entries(d, range).map(([k]) => k as unknown)),
      put: (value: string, key: string) => op((d) => void d.set(key, value)),
      delete: (key: string) => op((d) => void d.delete(key)),
    };
  }

  #maybeFinish(): void {
    if (this.#done || this.#pending > 0) return;
    this.#done = true;
    if (this.mode === 'readwrite') this.db.data = this.#data;
    this.#release();
    this.oncomplete?.({});
  }
}

class Db {
  data = new Map<string, string>();
  writeLock: Promise<void> = Promise.resolve();
  readonly stores = new Set<string>();
  onversionchange: ((ev: unknown) => void) | null = null;
  readonly objectStoreNames = { contains: (name: string) => this.stores.has(name) };
  createObjectStore(name: string): unknown {
    this.stores.add(name);
    return {};
  }
  transaction(name: string, mode: 'readonly' | 'readwrite') {
    if (!this.stores.has(name)) throw new Error('NotFoundError');
    return new Transaction(this, mode);
  }
  close(): void {}
}

export function fakeIndexedDb(): IndexedDbApi {
  const dbs = new Map<string, Db>();
  return {
    indexedDB: {
      open(name: string) {
        const req = Object.assign(new Request<Db>(), { onupgradeneeded: null as ((ev: unknown) => void) | null, onblocked: null as ((ev: unknown) => void) | null });
        setImmediate(() => {
          let db = dbs.get(name);
          if (!db) {
            db = new Db();
            dbs.set(name, db);
            req.result = db;
            req.onupgradeneeded?.({});
          }
          req.result = db;
          req.onsuccess?.({});
        });
        return req as never;
      },
    },
    IDBKeyRange: {
      bound: (lower: string, upper: string, lowerOpen = false, upperOpen = false) => ({ lower, upper, lowerOpen, upperOpen }),
      lowerBound: (lower: string, open = false) => ({ lower, lowerOpen: open, upperOpen: false }),
    },
  };
}
