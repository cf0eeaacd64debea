/**
 * generation() across servers: a write through one store moves every other store's value within
 * a second (NOTIFY), never for another registry's schema, and a listening connection that dies is
 * replaced, with the value moved so that caches built while notifications were lost are dropped.
 * The observing store's backstop poll is off, so only notifications can move it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { samplePack } from '../../../test/server/store-conformance.js';
import { describePg, freshSchema, type TestSchema } from '../../../test/postgres/harness.js';
import { until as pollUntil } from '../../../test/server/helpers.js';
import { ChangeFeed } from './changes.js';
import { PostgresMetadataStore } from './metadata.js';

const NO_POLL = 3_600_000;

/** Waits until `condition` holds (the shared bounded poll: a notification from another connection has no event here to wait on). */
async function until(what: string, condition: () => boolean | Promise<boolean>, withinMs = 1000): Promise<void> {
  if (!(await pollUntil(condition, withinMs, 10))) throw new Error(`not within ${withinMs} ms: ${what}`);
}

describePg('PostgreSQL: generation() across servers', () => {
  let schema: TestSchema;
  let a: PostgresMetadataStore;
  let b: PostgresMetadataStore;
  let listenerName: string;
  let n = 0;

  const publish = async (store: PostgresMetadataStore) => {
    const p = samplePack({ id: `gen.pack${(n += 1)}`, version: '1.0.0' });
    expect(await store.insertPack(p, { at: p.published_at, actor: 'test', action: 'pack.publish', target: p.package_id, details: null })).toBe('created');
  };

  beforeEach(async () => {
    schema = await freshSchema();
    const name = `iqp-b-${randomBytes(4).toString('hex')}`;
    listenerName = `${name}-listen`;
    a = new PostgresMetadataStore(schema.options());
    b = new PostgresMetadataStore(schema.options({ applicationName: name, pollMs: NO_POLL }));
    await a.migrate();
    await b.migrate();
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await schema.drop();
  });

  it('a write through one server moves its own value at once and the other’s within a second', async () => {
    const [beforeA, beforeB] = [a.generation(), b.generation()];
    await publish(a);
    expect(a.generation(), 'the writer sees its own write before any notification').toBeGreaterThan(beforeA);
    await until('B sees A’s write', () => b.generation() > beforeB);
    expect(b.generation()).toBe(a.generation());
  });

  it('ignores the notifications of a registry in another schema of the same database', async () => {
    const other = await freshSchema();
    const c = new PostgresMetadataStore(other.options());
    try {
      await c.migrate();
      for (let i = 0; i < 5; i += 1) await publish(c);
      await publish(a);
      // Notifications arrive in commit order: once A's has, C's five came before it.
      await until('B sees A’s write', () => b.generation() === a.generation());
      expect(b.generation(), 'C’s higher counter was not taken for B’s').toBe(1);
    } finally {
      await c.close();
      await other.drop();
    }
  });

  it('reconnects after its listening connection is killed, drops its caches, and follows again', async () => {
    const listener = async () =>
      (await schema.sql('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [listenerName])).rows.map((r) => r.pid as number);
    const [pid] = await listener();
    expect(pid, `B's listening connection is in pg_stat_activity as ${listenerName}`).toEqual(expect.any(Number));
    const before = b.generation();
    expect((await schema.sql('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok).toBe(true);
    await until(
      'B listens again on a new connection',
      async () => {
        const pids = await listener();
        return pids.length === 1 && pids[0] !== pid;
      },
      5000,
    );
    await until('B’s value moved on reconnecting, with nothing written', () => b.generation() > before);
    const afterReconnect = b.generation();
    await publish(a);
    await until('B sees A’s write after reconnecting', () => b.generation() > afterReconnect);
  });

  it('stops following when closed: no listening connection is left', async () => {
    await b.close();
    await until('B’s listening connection is gone', async () => (await schema.sql('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [listenerName])).rowCount === 0);
  });
});

describe('ChangeFeed without notifications', () => {
  it('follows the counter by its backstop poll while it cannot listen, and never goes backwards', async () => {
    let counter = 3;
    const feed = new ChangeFeed({
      // Nothing listens on port 1: every connection attempt fails, and is retried with backoff.
      listener: () => new pg.Client({ connectionString: 'postgres://iqp@127.0.0.1:1/none', connectionTimeoutMillis: 500 }),
      read: async () => counter,
      pollMs: 20,
    });
    try {
      await feed.start();
      expect(feed.generation()).toBe(3);
      counter = 7;
      await until('the poll reads the new value', () => feed.generation() === 7);
      feed.raise(5);
      expect(feed.generation(), 'an older value changes nothing').toBe(7);
      feed.raise(9);
      expect(feed.generation(), 'a value read back by a write counts at once').toBe(9);
    } finally {
      await feed.stop();
    }
  });
});
