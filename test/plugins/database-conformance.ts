/**
 * The PluginDatabase contract (server/plugins/api.ts), as one suite every adapter passes: the
 * embedded SQLite one now, PostgreSQL later. `open` gives a fresh database with a table
 * `t (id INTEGER PRIMARY KEY, v <any type>)` (BLOB-capable `v`), and `close` ends it.
 */
import { describe, expect, it } from 'vitest';
import type { PluginDatabase, SqlValue } from '../../server/plugins/api.js';

export interface ConformanceTarget {
  open(): Promise<{ db: PluginDatabase; close(): Promise<void> }>;
}

async function withDb(target: ConformanceTarget, fn: (db: PluginDatabase) => Promise<void>): Promise<void> {
  const { db, close } = await target.open();
  try {
    await fn(db);
  } finally {
    await close();
  }
}

/** Resolves once the returned `release` is called: a transaction held open on purpose. */
function gate(): { wait: Promise<void>; release: () => void } {
  let release!: () => void;
  const wait = new Promise<void>((r) => (release = r));
  return { wait, release };
}

export function pluginDatabaseConformance(name: string, target: ConformanceTarget): void {
  describe(`PluginDatabase conformance: ${name}`, () => {
    it('all, get and run read and change rows', () =>
      withDb(target, async (db) => {
        expect(await db.run('INSERT INTO t (id, v) VALUES (?, ?), (?, ?)', [1, 'a', 2, 'b'])).toEqual({ changes: 2 });
        expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual([{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
        expect(await db.get('SELECT v FROM t WHERE id = ?', [2])).toEqual({ v: 'b' });
        expect(await db.get('SELECT v FROM t WHERE id = ?', [3])).toBeUndefined();
        expect(await db.run('UPDATE t SET v = ? WHERE id > ?', ['z', 0])).toEqual({ changes: 2 });
        expect(await db.run('DELETE FROM t WHERE id = ?', [9])).toEqual({ changes: 0 });
      }));

    it('a transaction commits when its callback resolves, and returns its value', () =>
      withDb(target, async (db) => {
        const result = await db.transaction(async (tx) => {
          await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'kept']);
          return (await tx.get<{ n: number }>('SELECT count(*) AS n FROM t'))!.n;
        });
        expect(result).toBe(1);
        expect(await db.all('SELECT v FROM t')).toEqual([{ v: 'kept' }]);
      }));

    it('a callback that rejects rolls everything back and rejects with its error', () =>
      withDb(target, async (db) => {
        const boom = new Error('boom');
        await expect(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'gone']);
            await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'gone']);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await db.all('SELECT * FROM t')).toEqual([]);
      }));

    it('a transaction with { durable: false } is atomic like any other: commits, or rolls back whole', () =>
      withDb(target, async (db) => {
        expect(await db.transaction((tx) => tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'counted']), { durable: false })).toEqual({ changes: 1 });
        await expect(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'gone']);
            await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'duplicate id']);
          }, { durable: false }),
        ).rejects.toThrow();
        expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual([{ id: 1, v: 'counted' }]);
      }));

    it('a failing statement inside a transaction rolls back what came before it', () =>
      withDb(target, async (db) => {
        await expect(
          db.transaction(async (tx) => {
            await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'first']);
            await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'duplicate key']);
          }),
        ).rejects.toThrow();
        expect(await db.all('SELECT * FROM t')).toEqual([]);
      }));

    it('two concurrent transactions serialize: neither sees nor interleaves with the other', () =>
      withDb(target, async (db) => {
        const events: string[] = [];
        const held = gate();
        const first = db.transaction(async (tx) => {
          events.push('first begins');
          await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'first']);
          await held.wait;
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
        held.release();
        await Promise.all([first, second]);
        expect(events).toEqual(['first begins', 'first commits', 'second begins', 'second sees 1']);
      }));

    it('a query outside a transaction never joins an open one (it is not rolled back with it)', () =>
      withDb(target, async (db) => {
        const held = gate();
        const tx = db.transaction(async (t) => {
          await t.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'inside']);
          await held.wait;
          throw new Error('roll back');
        });
        const outside = db.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'outside']);
        for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
        held.release();
        await expect(tx).rejects.toThrow('roll back');
        await outside;
        expect(await db.all('SELECT id, v FROM t ORDER BY id')).toEqual([{ id: 2, v: 'outside' }]);
      }));

    it('a failed transaction does not stop the ones queued after it', () =>
      withDb(target, async (db) => {
        const failed = db.transaction(async () => {
          throw new Error('first fails');
        });
        const next = db.transaction(async (tx) => tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'after']));
        await expect(failed).rejects.toThrow('first fails');
        await expect(next).resolves.toEqual({ changes: 1 });
      }));

    it('values round-trip: null, integers, bigint, Buffer, text with NUL and emoji', () =>
      withDb(target, async (db) => {
        const values: [number, SqlValue][] = [
          [1, null],
          [2, 0],
          [3, -42],
          [4, Number.MAX_SAFE_INTEGER],
          [5, 9007199254740993n],
          [6, Buffer.from([0, 1, 2, 255])],
          [7, 'nul\u0000inside'],
          [8, 'emoji 🙂 and عربى'],
          [9, 1.5],
        ];
        for (const [id, v] of values) await db.run('INSERT INTO t (id, v) VALUES (?, ?)', [id, v]);
        const rows = await db.all<{ id: number; v: unknown }>('SELECT id, v FROM t ORDER BY id');
        const got = new Map(rows.map((r) => [r.id, r.v]));
        expect(got.get(1)).toBeNull();
        expect(got.get(2)).toBe(0);
        expect(got.get(3)).toBe(-42);
        expect(got.get(4)).toBe(Number.MAX_SAFE_INTEGER);
        expect(typeof got.get(4)).toBe('number');
        // Beyond 2^53 an integer comes back as an exact bigint, never a rounded number.
        expect(got.get(5)).toBe(9007199254740993n);
        expect(Buffer.from(got.get(6) as Uint8Array).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
        expect(got.get(7)).toBe('nul\u0000inside');
        expect(got.get(8)).toBe('emoji 🙂 and عربى');
        expect(got.get(9)).toBe(1.5);
      }));

    it('transaction() inside a transaction is refused rather than silently nested', () =>
      withDb(target, async (db) => {
        await expect(db.transaction(async (tx) => tx.transaction(async () => 1))).rejects.toThrow();
        expect(await db.all('SELECT * FROM t')).toEqual([]);
      }));
  });
}
