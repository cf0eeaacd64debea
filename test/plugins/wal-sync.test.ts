/**
 * Commits on the plugins' connection are answered only once they are on disk: COMMIT itself does
 * not wait for the disk (synchronous = NORMAL under WAL), so every result waits for an fdatasync
 * of the -wal file that started after it. These tests take the -wal file's name away from under a
 * live connection: then that fdatasync cannot happen, and a result that waits for it must fail,
 * while one that needs nothing synced must not.
 */
import { existsSync, readdirSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { sqliteRateLimit } from '../../server/plugins/rate-limit.js';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { WalSync } from '../../server/plugins/wal-sync.js';
import { tempDir } from '../e2e/helpers.js';

const open: SqlitePluginDatabase[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
});

function database(): { db: SqlitePluginDatabase; path: string } {
  const path = join(tempDir('iqp-wal-sync-'), 'registry.sqlite');
  const db = new SqlitePluginDatabase(path);
  open.push(db);
  db.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT) STRICT');
  return { db, path };
}

/** Moves the -wal file's name aside (the connection keeps writing to it); returns how to put it back. */
function hideWal(path: string): () => void {
  renameSync(`${path}-wal`, `${path}-wal.aside`);
  return () => renameSync(`${path}-wal.aside`, `${path}-wal`);
}

describe('the plugins’ connection', () => {
  it('runs WAL with synchronous = NORMAL, so COMMIT does not wait for the disk on the event loop', () => {
    const { db } = database();
    expect(db.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
  });

  it('answers a transaction, a single write and a read after a write only once the WAL is synced', async () => {
    const { db, path } = database();
    const restore = hideWal(path);
    await expect(db.transaction((tx) => tx.run('INSERT INTO t (v) VALUES (?)', ['a']))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(db.run('INSERT INTO t (v) VALUES (?)', ['b'])).rejects.toMatchObject({ code: 'ENOENT' });
    // A read may have seen those commits: it waits for them too.
    await expect(db.get('SELECT count(*) AS n FROM t')).rejects.toMatchObject({ code: 'ENOENT' });
    restore();
    // With the file back, the next result syncs everything before it and is answered.
    expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 2 });
  });

  it('syncs before answering a read that may have seen another connection’s commit', async () => {
    const { db, path } = database();
    await db.get('SELECT count(*) AS n FROM t');
    // Another server process on the same data directory, which has not synced its commit yet.
    const other = new Database(path);
    other.pragma('synchronous = OFF');
    other.prepare('INSERT INTO t (v) VALUES (?)').run('from another process');
    const restore = hideWal(path);
    await expect(db.get('SELECT v FROM t')).rejects.toMatchObject({ code: 'ENOENT' });
    restore();
    expect(await db.get('SELECT v FROM t')).toEqual({ v: 'from another process' });
    other.close();
  });

  it('answers a transaction marked durable: false without waiting for the disk; the next synced commit carries it', async () => {
    const { db, path } = database();
    await db.get('SELECT count(*) AS n FROM t');
    const restore = hideWal(path);
    await expect(db.transaction((tx) => tx.run('INSERT INTO t (v) VALUES (?)', ['counter']), { durable: false })).resolves.toEqual({ changes: 1 });
    // Nor does a read after it wait on its account.
    expect(await db.get('SELECT count(*) AS n FROM t')).toEqual({ n: 1 });
    // A durable commit after it still waits, and its sync covers both.
    await expect(db.run('INSERT INTO t (v) VALUES (?)', ['kept'])).rejects.toMatchObject({ code: 'ENOENT' });
    restore();
    expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'counter' }, { v: 'kept' }]);
  });

  it('counts rate limits without waiting for the disk', async () => {
    const { db, path } = database();
    const limit = sqliteRateLimit(db, 'p', { name: 'n', points: 2, durationS: 60 }, false);
    const restore = hideWal(path);
    expect(await limit.consume('k')).toEqual({ allowed: true });
    expect(await limit.consume('k')).toEqual({ allowed: true });
    expect(await limit.consume('k')).toMatchObject({ allowed: false });
    restore();
  });

  it('answers a read with nothing unsynced before it without touching the disk', async () => {
    const { db, path } = database();
    await db.run('INSERT INTO t (v) VALUES (?)', ['a']);
    const restore = hideWal(path);
    expect(await db.get('SELECT v FROM t')).toEqual({ v: 'a' });
    restore();
  });
});

describe('WalSync', () => {
  it('syncs nothing when nothing was committed, fails while the file cannot be synced, and syncs on the next call', async () => {
    const dir = tempDir('iqp-wal-sync-unit-');
    const wal = join(dir, 'x-wal');
    const sync = new WalSync(wal);
    await sync.durable(); // nothing committed: nothing to sync, even with no file
    sync.committed();
    await expect(sync.durable()).rejects.toMatchObject({ code: 'ENOENT' });
    writeFileSync(wal, 'frames');
    sync.committed();
    sync.committed();
    await Promise.all([sync.durable(), sync.durable(), sync.durable()]);
    expect(existsSync(wal)).toBe(true);
  });

  it('keeps one descriptor of the -wal file between syncs, follows the name to a new file, and closes it with the connection', async () => {
    const dir = tempDir('iqp-wal-sync-fd-');
    const wal = join(dir, 'x-wal');
    writeFileSync(wal, 'frames');
    const sync = new WalSync(wal);
    for (let i = 0; i < 20; i++) {
      sync.committed();
      await sync.durable();
    }
    expect(openedInodes(wal)).toEqual([statSync(wal).ino]);
    // SQLite made a new file under the name: the next sync is of that one, and the old descriptor is let go.
    renameSync(wal, `${wal}.old`);
    writeFileSync(wal, 'new frames');
    sync.committed();
    await sync.durable();
    expect(openedInodes(wal)).toEqual([statSync(wal).ino]);
    sync.close();
    expect(openedInodes(wal)).toEqual([]);
  });
});

/** Inodes of this process's open descriptors of files in path's folder, from /proc/self/fd. */
function openedInodes(path: string): number[] {
  const folder = dirname(path);
  const out: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used
    }
    if (dirname(target) === folder) out.push(statSync(`/proc/self/fd/${fd}`).ino);
  }
  return out;
}
