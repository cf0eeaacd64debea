/**
 * A server's plugin connection leaves WAL checkpoints to a worker thread: its own COMMITs never
 * copy the WAL back (automatic checkpoints off), the thread does after every few commits, and if
 * the thread cannot run, the connection's automatic checkpoints come back.
 */
import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpointer, type CheckpointResult, RESTART_FRAMES } from '../../server/plugins/checkpointer.js';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';

const open: SqlitePluginDatabase[] = [];
afterEach(async () => {
  for (const db of open.splice(0)) {
    await db.checkpoints?.close();
    db.close();
  }
});

function database(server: boolean, onFallBack: (why: string) => void = () => {}): SqlitePluginDatabase {
  const db = new SqlitePluginDatabase(join(tempDir('iqp-checkpoint-'), 'registry.sqlite'), server ? { checkpointThread: { onFallBack } } : {});
  open.push(db);
  return db;
}

/** The next checkpoint's outcome. */
function nextCheckpoint(c: Checkpointer): Promise<CheckpointResult> {
  return new Promise((resolve) => (c.onCheckpoint = resolve));
}

describe('checkpoints on a worker thread', () => {
  it('a server’s connection never checkpoints in COMMIT; the thread copies the WAL back after every 16 commits', async () => {
    const db = database(true);
    expect(db.checkpoints?.active).toBe(true);
    expect(db.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const done = nextCheckpoint(db.checkpoints!);
    // 15 more commits (16 with the CREATE) ask for the first checkpoint; each writes a few pages.
    for (let i = 0; i < 15; i++) await db.transaction(async (tx) => void (await tx.run('INSERT INTO t (v) VALUES (?)', ['x'.repeat(10_000)])));
    const r = await done;
    expect(r.ok).toBe(true);
    expect(r.log).toBeGreaterThan(15);
    expect(r.checkpointed).toBe(r.log);
    // Everything is in the database file: a fresh connection that ignores the WAL would see it too.
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(15);
  });

  it('under commits that never pause, the WAL starts over once it holds 1,000 frames instead of growing with every commit', async () => {
    const db = database(true);
    await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    let restarts = 0;
    db.checkpoints!.onCheckpoint = (r) => void (r.restarted && restarts++);
    // Four requests in flight, as on a busy server: the next transaction begins as soon as one commits.
    const wal = `${db.path}-wal`;
    let largest = 0;
    const writer = async () => {
      for (let i = 0; i < 200; i++) {
        await db.transaction(async (tx) => void (await tx.run('INSERT INTO t (v) VALUES (?)', ['x'.repeat(40_000)])));
        largest = Math.max(largest, statSync(wal).size);
      }
    };
    await Promise.all([writer(), writer(), writer(), writer()]);
    // 800 commits of about ten pages each: some 8,000 frames (33 MB) if the WAL never started over.
    const frame = 4096 + 24;
    expect(largest).toBeLessThan(3 * RESTART_FRAMES * frame);
    expect(restarts).toBeGreaterThan(0);
    expect((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(800);
  });

  it('a command’s connection keeps SQLite’s own checkpoints and starts no thread', () => {
    const db = database(false);
    expect(db.checkpoints).toBeNull();
    expect(db.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('a thread that cannot open the database hands checkpoints back to the connection, saying why', async () => {
    const why = await new Promise<string>((resolve) => {
      const c = new Checkpointer(join(tempDir('iqp-checkpoint-'), 'missing.sqlite'), resolve);
      c.request();
    });
    expect(why).toMatch(/checkpoint thread/);
  });

  it('a server’s connection whose thread cannot run checkpoints in COMMIT again', async () => {
    const path = join(tempDir('iqp-checkpoint-'), 'registry.sqlite');
    let db: SqlitePluginDatabase | undefined;
    const why = await new Promise<string>((resolve) => {
      db = new SqlitePluginDatabase(path, { checkpointThread: { onFallBack: resolve } });
      open.push(db);
      // The connection keeps its open file; the thread, started by the first checkpoint asked for, finds none to open.
      unlinkSync(path);
      db.checkpoints!.request();
    });
    expect(why).toMatch(/checkpoint thread/);
    expect(db!.checkpoints?.active).toBe(false);
    expect(db!.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });
});
