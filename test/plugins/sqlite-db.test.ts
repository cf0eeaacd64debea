/** The embedded plugins' database passes the PluginDatabase conformance suite, and runs transactions one at a time. */
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';
import { pluginDatabaseConformance } from './database-conformance.js';

function open(path = join(tempDir('iqp-plugin-db-'), 'registry.sqlite')): SqlitePluginDatabase {
  const db = new SqlitePluginDatabase(path);
  db.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY) STRICT; CREATE TABLE kinds (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB) STRICT');
  return db;
}

pluginDatabaseConformance('SqlitePluginDatabase', {
  async open() {
    const db = open();
    return { db, close: async () => db.close() };
  },
  textWithNul: 'round-trips',
});

describe('SqlitePluginDatabase', () => {
  it('runs two concurrent transactions one after the other: the second begins once the first committed', async () => {
    const db = open();
    try {
      const events: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = db.transaction(async (tx) => {
        events.push('first begins');
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'first']);
        await held;
        events.push('first commits');
      });
      const second = db.transaction(async (tx) => {
        events.push('second begins');
        const seen = await tx.all('SELECT v FROM t');
        events.push(`second sees ${seen.length}`);
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'second']);
      });
      // Let the second try to run while the first is open; it must wait.
      for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
      expect(events).toEqual(['first begins']);
      release();
      await Promise.all([first, second]);
      expect(events).toEqual(['first begins', 'first commits', 'second begins', 'second sees 1']);
    } finally {
      db.close();
    }
  });

  it("waits for another connection's write lock (another worker's) on the event loop, which keeps turning, instead of sleeping in SQLite's busy handler", async () => {
    const path = join(tempDir('iqp-plugin-db-'), 'registry.sqlite');
    const a = open(path);
    const b = new SqlitePluginDatabase(path);
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = a.transaction(async (tx) => {
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'a']);
        await held;
      });
      // Another connection's transaction while a's holds the lock: it must wait without stopping the process.
      const second = b.transaction(async (tx) => {
        const seen = await tx.all<{ v: string }>('SELECT v FROM t ORDER BY id');
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'b']);
        return seen.map((r) => r.v);
      });
      let turns = 0;
      for (; turns < 20; turns++) await new Promise<void>((r) => setImmediate(r));
      expect(turns).toBe(20);
      release();
      await first;
      // b began only once a committed, and saw its row.
      expect(await second).toEqual(['a']);
      expect(await a.all('SELECT id, v FROM t ORDER BY id')).toEqual([
        { id: 1, v: 'a' },
        { id: 2, v: 'b' },
      ]);
    } finally {
      b.close();
      a.close();
    }
  });

  it('still gives up with SQLITE_BUSY when the other connection keeps the lock past the busy timeout', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout'] });
    const path = join(tempDir('iqp-plugin-db-'), 'registry.sqlite');
    const a = open(path);
    const b = new SqlitePluginDatabase(path);
    try {
      a.db.exec('BEGIN IMMEDIATE');
      const second = b.transaction(async () => 'never').then(
        () => null,
        (err: unknown) => err,
      );
      for (let i = 0; i < 50; i++) await vi.advanceTimersByTimeAsync(200);
      expect(await second).toMatchObject({ code: 'SQLITE_BUSY' });
      a.db.exec('ROLLBACK');
      // The connection is usable afterwards, its own busy timeout restored.
      await b.run('INSERT INTO t (id, v) VALUES (?, ?)', [3, 'b']);
      expect(b.db.pragma('busy_timeout', { simple: true })).toBe(5000);
    } finally {
      vi.useRealTimers();
      b.close();
      a.close();
    }
  });
});
