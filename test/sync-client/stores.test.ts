/** Every SyncStore adapter that runs under Node through the conformance suite, plus what only the file log has. */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore, FileStoreCorrupt, FileStoreLocked, SqliteStore } from '../../src/sync-client/node.js';
import { IndexedDbStore } from '../../src/sync-client/indexeddb-store.js';
import { MemoryStore, type SyncStore } from '../../src/sync-client/store.js';
import { fakeIndexedDb } from './fake-indexeddb.js';
import { storeConformance } from './store-conformance.js';

const root = mkdtempSync(join(tmpdir(), 'iqp-sync-stores-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (ext: string) => join(root, `s${++n}${ext}`);

const paths = new WeakMap<SyncStore, string>();

storeConformance('MemoryStore', { create: async () => new MemoryStore() });

storeConformance('FileStore', {
  async create() {
    const path = fresh('.log');
    const s = await FileStore.open(path);
    paths.set(s, path);
    return s;
  },
  async reopen(s) {
    await s.close?.();
    const path = paths.get(s)!;
    const again = await FileStore.open(path);
    paths.set(again, path);
    return again;
  },
});

storeConformance('FileStore (compacting every few writes)', {
  async create() {
    const path = fresh('.log');
    const s = await FileStore.open(path, { compactAtBytes: 512 });
    paths.set(s, path);
    return s;
  },
  async reopen(s) {
    await s.close?.();
    const path = paths.get(s)!;
    const again = await FileStore.open(path, { compactAtBytes: 512 });
    paths.set(again, path);
    return again;
  },
});

storeConformance('SqliteStore', {
  async create() {
    const path = fresh('.db');
    const s = new SqliteStore(path);
    paths.set(s, path);
    return s;
  },
  async reopen(s) {
    await s.close?.();
    const path = paths.get(s)!;
    const again = new SqliteStore(path);
    paths.set(again, path);
    return again;
  },
});

describe('FileStore as a log', () => {
  it('drops a torn last batch on open, truncates it, and appends cleanly after', async () => {
    const path = fresh('.log');
    const s = await FileStore.open(path);
    await s.write({ set: { a: '1' } });
    await s.write({ set: { b: '2' } });
    await s.close();
    const whole = statSync(path).size;
    // A crash mid-append: half a line with no newline.
    appendFileSync(path, 'deadbeef {"s":{"c":"3"');
    let again = await FileStore.open(path);
    expect(await again.scan('')).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    expect(statSync(path).size).toBe(whole);
    await again.write({ set: { d: '4' } });
    await again.close();
    again = await FileStore.open(path);
    expect(await again.get('d')).toBe('4');
    await again.close();
  });

  it('drops a complete last line whose checksum does not match (torn inside a sector)', async () => {
    const path = fresh('.log');
    const s = await FileStore.open(path);
    await s.write({ set: { a: '1' } });
    await s.close();
    appendFileSync(path, '00000000 {"s":{"c":"3"}}\n');
    const again = await FileStore.open(path);
    expect(await again.get('c')).toBeUndefined();
    expect(await again.get('a')).toBe('1');
    await again.close();
  });

  it('refuses a file damaged before its last batch instead of losing acknowledged writes', async () => {
    const path = fresh('.log');
    const s = await FileStore.open(path);
    await s.write({ set: { a: '1' } });
    await s.write({ set: { b: '2' } });
    await s.close();
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    lines[1] = lines[1]!.replace('"1"', '"X"');
    writeFileSync(path, lines.join('\n'));
    await expect(FileStore.open(path)).rejects.toBeInstanceOf(FileStoreCorrupt);
  });

  it('refuses a file that is not a store', async () => {
    const path = fresh('.log');
    writeFileSync(path, '{"hello":1}\n');
    await expect(FileStore.open(path)).rejects.toBeInstanceOf(FileStoreCorrupt);
  });

  it('compacts a grown log to its live data, atomically', async () => {
    const path = fresh('.log');
    const s = await FileStore.open(path, { compactAtBytes: 4096 });
    for (let i = 0; i < 500; i++) await s.write({ set: { counter: String(i), [`tmp/${i}`]: 'x'.repeat(50) }, del: [`tmp/${i - 1}`] });
    await s.close();
    expect(statSync(path).size).toBeLessThan(8192);
    const again = await FileStore.open(path);
    expect(await again.scan('')).toEqual([
      ['counter', '499'],
      ['tmp/499', 'x'.repeat(50)],
    ]);
    await again.close();
  });

  it('removes a compaction’s leftover temp file on open (a crash before its rename)', async () => {
    const path = fresh('.log');
    const s = await FileStore.open(path);
    await s.write({ set: { a: '1' } });
    await s.close();
    const leftover = join(root, `.${path.split('/').pop()}.tmp-99999`);
    writeFileSync(leftover, 'half a compaction');
    const again = await FileStore.open(path);
    expect(existsSync(leftover)).toBe(false);
    expect(await again.get('a')).toBe('1');
    await again.close();
  });

  it('a compaction that fails never fails the write whose batch is already saved; a later write compacts', async () => {
    const path = fresh('.log');
    const s = await FileStore.open(path, { compactAtBytes: 512 });
    // Where compaction writes its temp file there is a directory: opening it fails (EISDIR), as
    // ENOSPC or EMFILE would.
    const temp = join(root, `.${basename(path)}.tmp-${process.pid}`);
    mkdirSync(temp);
    for (let i = 0; i < 40; i++) await s.write({ set: { counter: String(i), [`tmp/${i}`]: 'x'.repeat(50) }, del: [`tmp/${i - 1}`] });
    expect(await s.get('counter')).toBe('39');
    const grown = statSync(path).size;
    expect(grown).toBeGreaterThan(2048);
    rmSync(temp, { recursive: true });
    for (let i = 40; i < 80; i++) await s.write({ set: { counter: String(i), [`tmp/${i}`]: 'x'.repeat(50) }, del: [`tmp/${i - 1}`] });
    expect(statSync(path).size).toBeLessThan(grown);
    await s.close();
    // A directory left at the temp path does not stop the store opening either.
    mkdirSync(temp);
    const again = await FileStore.open(path);
    expect(await again.scan('')).toEqual([
      ['counter', '79'],
      ['tmp/79', 'x'.repeat(50)],
    ]);
    await again.close();
    rmSync(temp, { recursive: true });
  });

  it('one opener at a time: a second open of the file is refused while the first has it, and works after close()', async () => {
    const path = fresh('.log');
    const first = await FileStore.open(path);
    await first.write({ set: { a: '1' } });
    await expect(FileStore.open(path)).rejects.toBeInstanceOf(FileStoreLocked);
    await expect(FileStore.open(join(root, '.', basename(path)))).rejects.toThrow(/open/);
    // The refused opener changed nothing: the first one's writes go on as before.
    await first.write({ set: { b: '2' } });
    await first.close();
    const second = await FileStore.open(path);
    expect(await second.scan('')).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    await second.close();
  });

  it('refuses a file another live process holds, and takes over from one that died without closing', async () => {
    const path = fresh('.log');
    const lock = `${path}.lock`;
    // Another process on this machine holds it: the parent of this test process is alive.
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: hostname() }));
    await expect(FileStore.open(path)).rejects.toThrow(new RegExp(`process ${process.ppid}`));
    // A process that has exited (SIGKILLed, say) left its lock behind.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(lock, JSON.stringify({ pid: gone, host: hostname() }));
    const s = await FileStore.open(path);
    await s.write({ set: { a: '1' } });
    await s.close();
    expect(existsSync(lock)).toBe(false);
  });

  it('is unusable after close', async () => {
    const s = await FileStore.open(fresh('.log'));
    await s.close();
    await expect(s.get('a')).rejects.toThrow(/closed/);
  });
});

describe('SqliteStore in an app database', () => {
  it('lives in its own table beside the app, and leaves a given connection open', async () => {
    const db = new Database(fresh('.db'));
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)');
    const s = new SqliteStore(db, { table: 'sync_state' });
    await s.write({ set: { a: '1' } });
    await s.close();
    expect(db.open).toBe(true);
    expect(db.prepare('SELECT value FROM sync_state WHERE key = ?').get('a')).toEqual({ value: '1' });
    db.close();
  });

  it('refuses a table name that is not an identifier', () => {
    const db = new Database(':memory:');
    expect(() => new SqliteStore(db, { table: 'x; DROP TABLE y' })).toThrow(/table name/);
    db.close();
  });

  it('rolls a batch back whole when one statement fails', async () => {
    const db = new Database(':memory:');
    const s = new SqliteStore(db);
    await s.write({ set: { keep: '1' } });
    // A trigger that fails the second insert stands in for a disk error mid-transaction.
    db.exec("CREATE TRIGGER boom BEFORE INSERT ON iqp_sync_kv WHEN NEW.key = 'b' BEGIN SELECT RAISE(ABORT, 'boom'); END");
    await expect(s.write({ set: { a: '1', b: '2' }, del: ['keep'] })).rejects.toThrow(/boom/);
    expect(await s.scan('')).toEqual([['keep', '1']]);
    db.close();
  });
});

// The same database name across create and reopen: a reopened store is a new connection to it.
const idb = fakeIndexedDb();
const idbNames = new WeakMap<SyncStore, string>();
storeConformance('IndexedDbStore (over an in-memory IndexedDB)', {
  async create() {
    const name = `db${++n}`;
    const s = new IndexedDbStore(name, idb);
    idbNames.set(s, name);
    return s;
  },
  async reopen(s) {
    await s.close?.();
    const name = idbNames.get(s)!;
    const again = new IndexedDbStore(name, idb);
    idbNames.set(again, name);
    return again;
  },
});

describe('IndexedDbStore', () => {
  it('says so when there is no IndexedDB and none is given', () => {
    expect(() => new IndexedDbStore('x')).toThrow(/IndexedDB is not available/);
  });
});
