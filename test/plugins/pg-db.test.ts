/**
 * PgPluginDatabase passes the PluginDatabase conformance suite, and what only PostgreSQL makes a
 * question: placeholders beside literals, transactions side by side (SERIALIZABLE, a conflict
 * run again), errors plugins see, clients handed back clean or discarded, pg's parsers untouched.
 */
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PgPluginDatabase } from '../../server/plugins/pg-db.js';
import { PgDatabase } from '../../server/stores/postgres/db.js';
import { describePg, freshSchema, type TestSchema } from '../postgres/harness.js';
import { pluginDatabaseConformance } from './database-conformance.js';

const TABLES = 'CREATE TABLE t (id integer PRIMARY KEY, v text); CREATE TABLE kinds (id integer PRIMARY KEY, i bigint, f double precision, s text, b bytea)';

describePg('PgPluginDatabase', () => {
  pluginDatabaseConformance('PgPluginDatabase', {
    async open() {
      const schema = await freshSchema();
      await schema.sql(TABLES);
      const db = new PgPluginDatabase(schema.options());
      return {
        db,
        close: async () => {
          await db.close();
          await schema.drop();
        },
      };
    },
    textWithNul: 'refused',
  });
});

/** Resolves once `release` is called. */
function gate(): { wait: Promise<void>; release: () => void } {
  let release!: () => void;
  const wait = new Promise<void>((r) => (release = r));
  return { wait, release };
}

describePg('PgPluginDatabase on PostgreSQL', () => {
  let schema: TestSchema;
  let db: PgPluginDatabase;

  beforeEach(async () => {
    schema = await freshSchema();
    await schema.sql(TABLES);
    db = new PgPluginDatabase(schema.options({ applicationName: `iqp-${schema.name}` }));
  });
  afterEach(async () => {
    await db.close();
    await schema.drop();
  });

  const rows = async () => (await schema.sql('SELECT id, v FROM t ORDER BY id')).rows;

  it('numbers ? placeholders, but not inside string literals, quoted identifiers, dollar quotes or comments', async () => {
    const sql = `SELECT ? AS first, '?' AS plain, 'it''s ?' AS doubled, E'\\'?' AS escaped, "?"."q?" AS quoted, $$?$$ AS dollar, $x$ ? $x$ AS tagged,
      ? /* ? /* ? */ ? */ AS second -- ? ?
      FROM (SELECT 'v' AS "q?") AS "?" WHERE ? = 3`;
    expect(await db.get(sql, ['one', 'two', 3])).toEqual({ first: 'one', plain: '?', doubled: "it's ?", escaped: "'?", quoted: 'v', dollar: '?', tagged: ' ? ', second: 'two' });
    await db.run("INSERT INTO t (id, v) VALUES (?, 'a ? in text')", [1]);
    expect(await rows()).toEqual([{ id: 1, v: 'a ? in text' }]);
  });

  it('a database_url with options of its own adds them to iqp’s session settings, which it never replaces', async () => {
    const u = new URL(schema.url());
    u.searchParams.set('options', `-c search_path=${schema.name} -c statement_timeout=4321 -c idle_in_transaction_session_timeout=5s`);
    const plugins = new PgPluginDatabase({ connectionString: u.href, poolSize: 1 });
    const stores = new PgDatabase({ connectionString: u.href, poolSize: 1 });
    try {
      const show = 'SELECT current_setting(?) AS iso, current_setting(?) AS idle, current_setting(?) AS st, current_setting(?) AS sp';
      const names = ['transaction_isolation', 'idle_in_transaction_session_timeout', 'statement_timeout', 'search_path'];
      // Plugins' transactions run SERIALIZABLE whatever the URL says; the operator's own settings apply too.
      expect(await plugins.transaction((tx) => tx.get(show, names))).toEqual({ iso: 'serializable', idle: '1min', st: '4321ms', sp: schema.name });
      const [row] = await stores.query('SELECT current_setting($1) AS idle, current_setting($2) AS st, current_setting($3) AS sp', names.slice(1));
      expect(row).toEqual({ idle: '1min', st: '4321ms', sp: schema.name });
    } finally {
      await plugins.close();
      await stores.close();
    }
  });

  it('reads booleans as 1 and 0 and numerics as numbers, as SQLite gives them', async () => {
    expect(await db.get('SELECT 1 = 1 AS yes, 1 = 2 AS no, sum(x) AS total, avg(x) AS mean FROM (VALUES (1::bigint), (2::bigint)) AS v(x)')).toEqual({ yes: 1, no: 0, total: 3, mean: 1.5 });
  });

  it('leaves pg’s own parsers alone: another client still reads bigint as text', async () => {
    await db.get('SELECT 1::bigint AS n');
    expect(pg.types.getTypeParser(20, 'text')('5')).toBe('5');
    expect((await schema.sql('SELECT 5::bigint AS n')).rows[0].n).toBe('5');
  });

  it('a transaction that rolls back leaves nothing, and its connection goes back to the pool clean', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'gone']);
        await tx.run('UPDATE t SET v = ? WHERE id = ?', ['changed', 1]);
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(await rows()).toEqual([]);
    expect((await schema.sql("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'", [`iqp-${schema.name}`])).rows[0].n).toBe(0);
    expect(db.pool.totalCount).toBe(db.pool.idleCount);
  });

  it('two transactions on different rows run side by side, and both commit', async () => {
    await db.run('INSERT INTO t (id, v) VALUES (1, ?), (2, ?)', ['a', 'b']);
    const one = gate();
    const two = gate();
    const write = (id: number, mine: ReturnType<typeof gate>, theirs: ReturnType<typeof gate>) =>
      db.transaction(async (tx) => {
        await tx.run('UPDATE t SET v = ? WHERE id = ?', [`by ${id}`, id]);
        mine.release();
        // Serialized transactions would wait here for ever: each waits for the other to have written.
        await theirs.wait;
      });
    await Promise.all([write(1, one, two), write(2, two, one)]);
    expect(await rows()).toEqual([
      { id: 1, v: 'by 1' },
      { id: 2, v: 'by 2' },
    ]);
  });

  it('a conflict between concurrent transactions runs the loser again on what the winner committed', async () => {
    await db.run('INSERT INTO t (id, v) VALUES (1, ?)', ['0']);
    const read = [gate(), gate()] as const;
    let runs = 0;
    const bump = (mine: number) =>
      db.transaction(async (tx) => {
        runs++;
        const row = await tx.get<{ v: string }>('SELECT v FROM t WHERE id = ?', [1]);
        read[mine]!.release();
        await read[1 - mine]!.wait;
        await tx.run('UPDATE t SET v = ? WHERE id = ?', [String(Number(row!.v) + 1), 1]);
      });
    await Promise.all([bump(0), bump(1)]);
    expect(await rows()).toEqual([{ id: 1, v: '2' }]);
    expect(runs).toBe(3);
  });

  it('transactions given the same lockKey take turns, on one server and across two, and none runs again; other keys run meanwhile', async () => {
    await db.run('INSERT INTO t (id, v) VALUES (1, ?)', ['0']);
    const pauses: number[] = [];
    const retry = {
      attempts: 20,
      delayMs: (n: number) => {
        pauses.push(n);
        return 0;
      },
    };
    const a = new PgPluginDatabase({ ...schema.options(), retry });
    const b = new PgPluginDatabase({ ...schema.options(), retry });
    const events: string[] = [];
    const held = gate();
    const begun = gate();
    const started: Promise<unknown>[] = [];
    try {
      const bump = (on: PgPluginDatabase, name: string, hold = false) =>
        on.transaction(
          async (tx) => {
            events.push(`${name} begins`);
            const row = await tx.get<{ v: string }>('SELECT v FROM t WHERE id = ?', [1]);
            if (hold) {
              begun.release();
              await held.wait;
            }
            await tx.run('UPDATE t SET v = ? WHERE id = ?', [String(Number(row!.v) + 1), 1]);
          },
          { lockKey: 'account 7' },
        );
      const first = bump(a, 'first', true);
      started.push(first);
      await begun.wait;
      // Another server's and this server's next transaction on the key queue behind the first...
      const queued = [bump(b, 'second'), bump(a, 'third')];
      started.push(...queued);
      // ...while one on another key commits at once, on either server.
      for (const on of [a, b]) await on.transaction((tx) => tx.run('INSERT INTO t (id, v) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v', [2, 'other key']), { lockKey: 'account 8' });
      expect(events).toEqual(['first begins']);
      held.release();
      await Promise.all([first, ...queued]);
      expect(await rows()).toEqual([
        { id: 1, v: '3' },
        { id: 2, v: 'other key' },
      ]);
      expect(events.slice(0, 1)).toEqual(['first begins']);
      expect(events.toSorted()).toEqual(['first begins', 'second begins', 'third begins']);
      // Each ran once: no serialization failure, no pause before a second try.
      expect(pauses).toEqual([]);
      // Every lock went back with its transaction.
      expect((await schema.sql("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'")).rows[0].n).toBe(0);
    } finally {
      held.release();
      await Promise.allSettled(started);
      await a.close();
      await b.close();
    }
  });

  it('a serialization failure that keeps coming is answered IQP_E_BUSY (503, Retry-After) after the tries it is given', async () => {
    const pauses: number[] = [];
    const delayMs = (n: number) => {
      pauses.push(n);
      return 0;
    };
    const db = new PgPluginDatabase({ ...schema.options(), retry: { attempts: 4, delayMs } });
    const always = "DO $$ BEGIN RAISE EXCEPTION 'always' USING ERRCODE = 'serialization_failure'; END $$";
    let runs = 0;
    const err = await db
      .transaction(async (tx) => {
        runs++;
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [runs, 'never']);
        await tx.run(always);
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IQP_E_BUSY', httpStatus: 503, cause: { code: '40001' } });
    expect(runs).toBe(4);
    expect(await db.run(always).catch((e: unknown) => e)).toMatchObject({ code: 'IQP_E_BUSY' });
    expect(pauses).toEqual([1, 2, 3, 1, 2, 3]);
    expect(await rows()).toEqual([]);
    await db.close();
  });

  it('a unique violation reaches the plugin with its SQLSTATE, is not run again, and commits nothing even when caught', async () => {
    await db.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'first']);
    let runs = 0;
    const err = await db
      .transaction(async (tx) => {
        runs++;
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'second']);
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'duplicate']);
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '23505', constraint: 't_pkey' });
    expect(runs).toBe(1);
    // SQLite would keep going after a caught failure; PostgreSQL has aborted the transaction.
    const caught = await db
      .transaction(async (tx) => {
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [3, 'third']);
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'duplicate']).catch(() => undefined);
        return 'swallowed';
      })
      .catch((e: unknown) => e);
    expect(caught).toMatchObject({ code: '23505' });
    expect(await rows()).toEqual([{ id: 1, v: 'first' }]);
  });

  it('inside a callback, ctx.db is not the transaction, and a tx kept past its transaction is refused', async () => {
    let kept: { run(sql: string, params: unknown[]): Promise<unknown> } | null = null;
    await expect(
      db.transaction(async (tx) => {
        kept = tx as never;
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'inside']);
        await db.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'outside']);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await rows()).toEqual([{ id: 2, v: 'outside' }]);
    await expect(kept!.run('INSERT INTO t (id, v) VALUES (?, ?)', [3, 'late'])).rejects.toThrow(/after the transaction ended/);
    expect(await rows()).toHaveLength(1);
  });

  it('{ durable: false }, and rate-limit counting, turn synchronous_commit off for their own transaction only', async () => {
    const one = new PgPluginDatabase(schema.options({ poolSize: 1 }));
    try {
      // The test cluster runs with it off; on for this session (its one connection), as a real server has it.
      await one.run('SET synchronous_commit = on');
      const setting = (tx: { get<T>(sql: string): Promise<T | undefined> }) => tx.get<{ s: string }>("SELECT current_setting('synchronous_commit') AS s");
      expect(await one.transaction(setting, { durable: false })).toEqual({ s: 'off' });
      expect(await one.transaction(setting)).toEqual({ s: 'on' });
      expect(await one.get("SELECT current_setting('synchronous_commit') AS s, current_setting('transaction_isolation') AS i")).toEqual({ s: 'on', i: 'serializable' });
      // Rate-limit counting: one atomic statement, not durable, never failing on serialization.
      const counted = await one.bookkeeping({ text: "SELECT current_setting('synchronous_commit') AS s, current_setting('transaction_isolation') AS i" });
      expect(counted.rows).toEqual([{ s: 'off', i: 'read committed' }]);
    } finally {
      await one.close();
    }
  });

  it('a connection that dies inside a transaction is discarded, and the next transaction gets a good one', async () => {
    const one = new PgPluginDatabase(schema.options({ poolSize: 1 }));
    try {
      await expect(one.transaction((tx) => tx.get('SELECT pg_terminate_backend(pg_backend_pid())'))).rejects.toThrow();
      expect(await one.transaction((tx) => tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'after']))).toEqual({ changes: 1 });
      expect(await rows()).toEqual([{ id: 1, v: 'after' }]);
    } finally {
      await one.close();
    }
  });
});
