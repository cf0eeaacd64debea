/**
 * The PluginDatabase contract (server/plugins/api.ts), as one suite every adapter passes
 * (SqlitePluginDatabase, PgPluginDatabase). `open` gives a fresh database with the tables
 * `t (id INTEGER PRIMARY KEY, v <text>)` and `kinds (id INTEGER PRIMARY KEY, i <64-bit integer>,
 * f <double>, s <text>, b <blob>)` in its dialect, and `close` ends it.
 *
 * How concurrent transactions are isolated is the contract's outcome, not its mechanism: SQLite
 * runs them one after another, PostgreSQL side by side as SERIALIZABLE (a conflict runs the loser
 * again), so the suite checks what both promise (no update lost, nothing uncommitted seen) and
 * each adapter's own test checks its mechanism.
 */
import { describe, expect, it } from 'vitest';
import type { PluginDatabase, SqlValue } from '../../server/plugins/api.js';

export interface ConformanceTarget {
  open(): Promise<{ db: PluginDatabase; close(): Promise<void> }>;
  /** Text holding U+0000: SQLite stores it; PostgreSQL's text cannot, and refuses it with an error. */
  readonly textWithNul: 'round-trips' | 'refused';
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

    it('two concurrent read-modify-write transactions lose no update, and neither sees the other uncommitted', () =>
      withDb(target, async (db) => {
        await db.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, '0']);
        const held = gate();
        const seen: string[] = [];
        const bump = (wait?: Promise<void>) =>
          db.transaction(async (tx) => {
            const row = await tx.get<{ v: string }>('SELECT v FROM t WHERE id = ?', [1]);
            seen.push(row!.v);
            await wait;
            await tx.run('UPDATE t SET v = ? WHERE id = ?', [String(Number(row!.v) + 1), 1]);
          });
        const first = bump(held.wait);
        const second = bump();
        for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
        held.release();
        await Promise.all([first, second]);
        expect(await db.get('SELECT v FROM t WHERE id = ?', [1])).toEqual({ v: '2' });
        // Every value read was committed: 0 before either, 1 after one (a run PostgreSQL repeated reads again).
        expect(seen.every((v) => v === '0' || v === '1')).toBe(true);
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

    it('values round-trip: null, integers, bigint, float, Buffer, text with emoji', () =>
      withDb(target, async (db) => {
        const rows: [number, SqlValue, SqlValue, SqlValue, SqlValue][] = [
          [1, null, null, null, null],
          [2, 0, 1.5, 'emoji 🙂 and عربى', Buffer.from([0, 1, 2, 255])],
          [3, -42, -0.25, '', Buffer.alloc(0)],
          [4, Number.MAX_SAFE_INTEGER, 1e300, "it's \"quoted\" ?", Buffer.from('text')],
          [5, 9007199254740993n, 0, 'x', null],
          [6, -9007199254740993n, 0, 'y', null],
        ];
        for (const r of rows) await db.run('INSERT INTO kinds (id, i, f, s, b) VALUES (?, ?, ?, ?, ?)', r);
        const got = await db.all<{ id: number; i: unknown; f: unknown; s: unknown; b: unknown }>('SELECT id, i, f, s, b FROM kinds ORDER BY id');
        expect(got.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
        const [one, two, three, four, five, six] = got;
        expect(one).toEqual({ id: 1, i: null, f: null, s: null, b: null });
        expect([two!.i, three!.i, four!.i]).toEqual([0, -42, Number.MAX_SAFE_INTEGER]);
        expect(typeof four!.i).toBe('number');
        // Beyond 2^53 an integer comes back as an exact bigint, never a rounded number.
        expect([five!.i, six!.i]).toEqual([9007199254740993n, -9007199254740993n]);
        expect([two!.f, three!.f, four!.f]).toEqual([1.5, -0.25, 1e300]);
        expect([two!.s, three!.s, four!.s]).toEqual(['emoji 🙂 and عربى', '', 'it\'s "quoted" ?']);
        expect(Buffer.from(two!.b as Uint8Array).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
        expect(Buffer.from(three!.b as Uint8Array).length).toBe(0);
        // Aggregates too: a count is a number, as in SQLite.
        expect(await db.get('SELECT count(*) AS n, max(i) AS top FROM kinds WHERE i < ?', [100])).toEqual({ n: 3, top: 0 });
      }));

    it(`text holding U+0000 ${target.textWithNul === 'round-trips' ? 'round-trips' : 'is refused as a bad request (a client sent it), never cut short'}`, () =>
      withDb(target, async (db) => {
        const write = db.run('INSERT INTO kinds (id, s) VALUES (?, ?)', [1, 'nul\u0000inside']);
        if (target.textWithNul === 'refused') {
          await expect(write).rejects.toMatchObject({ code: 'IQP_E_INVALID_REQUEST', httpStatus: 400 });
          await expect(db.transaction((tx) => tx.run('INSERT INTO kinds (id, s) VALUES (?, ?)', [2, '\u0000']))).rejects.toMatchObject({ code: 'IQP_E_INVALID_REQUEST' });
          expect(await db.all('SELECT id FROM kinds')).toEqual([]);
        } else {
          await write;
          expect(await db.get('SELECT s FROM kinds WHERE id = ?', [1])).toEqual({ s: 'nul\u0000inside' });
        }
      }));

    it('answers rows as plain objects keyed by column, in and out of a transaction, whatever the columns are named', () =>
      withDb(target, async (db) => {
        await db.run('INSERT INTO kinds (id, i, f, s) VALUES (?, ?, ?, ?), (?, ?, ?, ?)', [1, 7, 1.5, 'a', 2, 9007199254740993n, 0, 'b']);
        // A column named like an Object.prototype member is an own property, never the prototype.
        const sql = 'SELECT id, i, s AS "__proto__", f AS "constructor" FROM kinds ORDER BY id';
        const rows = await db.all<Record<string, unknown>>(sql);
        const inTx = await db.transaction((tx) => tx.all<Record<string, unknown>>(sql));
        const one = await db.get<Record<string, unknown>>(`${sql} LIMIT 1`);
        for (const r of [rows, inTx, [one!]]) {
          expect(r.map((x) => Object.getPrototypeOf(x))).toEqual(r.map(() => Object.prototype));
          expect(r.map((x) => Object.keys(x))).toEqual(r.map(() => ['id', 'i', '__proto__', 'constructor']));
        }
        for (const r of [rows, inTx]) {
          expect(r.map((x) => [x['id'], x['i'], Object.getOwnPropertyDescriptor(x, '__proto__')?.value, x['constructor']])).toEqual([
            [1, 7, 'a', 1.5],
            [2, 9007199254740993n, 'b', 0],
          ]);
        }
        expect(await db.get('SELECT id FROM kinds WHERE id = ?', [3])).toBeUndefined();
        expect(await db.get('SELECT id, i FROM kinds WHERE id = ?', [1])).toEqual({ id: 1, i: 7 });
      }));

    it('transaction() inside a transaction is refused rather than silently nested', () =>
      withDb(target, async (db) => {
        await expect(db.transaction(async (tx) => tx.transaction(async () => 1))).rejects.toThrow();
        expect(await db.all('SELECT * FROM t')).toEqual([]);
      }));

    it('a tx kept past its transaction is refused, not run outside it (or inside the next one)', () =>
      withDb(target, async (db) => {
        let kept: PluginDatabase | null = null;
        await db.transaction(async (tx) => {
          kept = tx;
          await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'inside']);
        });
        await expect(kept!.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'late'])).rejects.toThrow(/after the transaction ended/);
        await expect(kept!.get('SELECT v FROM t WHERE id = ?', [1])).rejects.toThrow(/after the transaction ended/);
        expect(await db.all('SELECT id FROM t')).toEqual([{ id: 1 }]);
      }));
  });
}
