/**
 * The client's storage: a tiny key-value interface every adapter implements (MemoryStore here,
 * IndexedDbStore for browsers, FileStore and SqliteStore in ./node.js), held by one conformance
 * suite. The client needs only ordered prefix scans and all-or-nothing batches; keeping the
 * interface this small is what lets an app bring its own (React Native MMKV, OPFS, ...).
 */

export interface WriteBatch {
  set?: Record<string, string>;
  del?: string[];
}

export interface SyncStore {
  get(key: string): Promise<string | undefined>;
  /** Entries whose key starts with prefix, sorted by key (UTF-16 code units, as JS compares strings). */
  scan(prefix: string): Promise<Array<[string, string]>>;
  /**
   * All sets and deletes land together or not at all (a crash never leaves half). Deletes apply
   * before sets, so a key in both ends up set.
   */
  write(batch: WriteBatch): Promise<void>;
  close?(): Promise<void>;
  /**
   * For stores that other tabs or workers of the app can open too (IndexedDbStore): the same
   * string wherever the same data is opened. Clients on stores with one lockName run one sync loop
   * between them (through the Web Locks API) and the others' mutations wake it. Clients on one
   * store object take turns without it; leave it out for data no other JS realm can open.
   */
  readonly lockName?: string;
}

/** JS string order (by UTF-16 code unit), the one order every adapter returns. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The smallest string greater than every string starting with prefix (undefined: no bound), for
 * stores that scan by range: the last code unit below U+FFFF is incremented.
 */
export function prefixEnd(prefix: string): string | undefined {
  let p = prefix;
  while (p.length > 0) {
    const last = p.charCodeAt(p.length - 1);
    if (last < 0xffff) return p.slice(0, -1) + String.fromCharCode(last + 1);
    p = p.slice(0, -1);
  }
  return undefined;
}

/** Entries of a batch in the order they apply, for adapters that replay it. */
export function batchEntries(batch: WriteBatch): { set: Array<[string, string]>; del: string[] } {
  const set = Object.entries(batch.set ?? {});
  for (const [k, v] of set) if (typeof k !== 'string' || typeof v !== 'string') throw new TypeError(`store values must be strings (key ${k})`);
  return { set, del: [...(batch.del ?? [])] };
}

/** In memory, for tests and for apps that sync nothing durable; a write is atomic because it is synchronous. */
export class MemoryStore implements SyncStore {
  readonly #data = new Map<string, string>();

  async get(key: string): Promise<string | undefined> {
    return this.#data.get(key);
  }

  async scan(prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const [k, v] of this.#data) if (k.startsWith(prefix)) out.push([k, v]);
    return out.sort((a, b) => compareKeys(a[0], b[0]));
  }

  async write(batch: WriteBatch): Promise<void> {
    const { set, del } = batchEntries(batch);
    for (const k of del) this.#data.delete(k);
    for (const [k, v] of set) this.#data.set(k, v);
  }

  async close(): Promise<void> {}
}
