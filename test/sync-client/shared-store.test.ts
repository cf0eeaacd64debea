/**
 * Two clients on one store: two tabs of a web app on one IndexedDB database, or two parts of one
 * app that each made a client. Every mutate() of each lands, in each one's order, and one of them
 * at a time runs the push/pull loop, pushing the other's mutations too.
 */
import { describe, expect, it, vi } from 'vitest';
import { IndexedDbStore } from '../../src/sync-client/indexeddb-store.js';
import { fakeIndexedDb } from './fake-indexeddb.js';
import { applyAll, hang, page, type SentRequest } from './fakes.js';
import type { SyncClient } from '../../src/sync-client/client.js';
import { type Rig, rig, until } from './harness.js';

const card = (id: string) => ({ entity: 'card', entity_id: id, op: 'upsert' as const, payload: { front: id } });

const pushedIds = (reqs: SentRequest[]): string[] => reqs.flatMap((q) => q.body.mutations.map((m: { mutation_id: string }) => m.mutation_id));

/** A push answer that takes a few turns, so two pushes could overlap if nothing kept them apart. */
function slowApply() {
  const apply = applyAll();
  return async (req: SentRequest) => {
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    return apply(req);
  };
}

/**
 * Slow pushes and long polls held until aborted; r's client starts and reaches a long poll, then
 * `second` starts and waits on standby.
 */
async function firstOwnsSecondWaits(r: Rig, second: SyncClient): Promise<void> {
  r.net.on('/v1/sync/push', slowApply());
  r.net.on('/v1/sync/pull', (req) => (req.body.wait ? hang(req) : page([], 'c1')));
  r.client.start();
  await until(() => r.net.inFlight === 1 && r.net.requests('/v1/sync/pull').some((q) => q.body.wait));
  second.start();
  await until(() => second.status === 'standby');
}

describe('two clients on one store', () => {
  it('every mutate() of both lands in the queue, each client’s in the order it was made', async () => {
    const r = rig();
    const a = r.client;
    const b = r.restart();
    const made = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).mutate(card(String(i)))));
    expect(await a.pendingCount()).toBe(60);
    const queued = (await r.store.scan('q/')).map(([, v]) => JSON.parse(v).mutation_id as string);
    expect(new Set(queued)).toEqual(new Set(made));
    const mine = (n: number) => made.filter((_, i) => i % 2 === n);
    expect(queued.filter((id) => mine(0).includes(id))).toEqual(mine(0));
    expect(queued.filter((id) => mine(1).includes(id))).toEqual(mine(1));
  });

  it('reads a queue an older version left under q/<counter>, in order, before what is queued now', async () => {
    const r = rig();
    const old = (n: number) => JSON.stringify({ mutation_id: `${n}-00aa`, entity: 'card', entity_id: `old${n}`, op: 'delete' });
    await r.store.write({ set: { 'q/0000000000000009': old(9), 'q/0000000000000010': old(10), 'm/counter': '10' } });
    await r.client.mutate(card('new'));
    r.net.on('/v1/sync/push', applyAll()).on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.syncOnce();
    expect(r.net.requests('/v1/sync/push')[0]!.body.mutations.map((m: { entity_id: string }) => m.entity_id)).toEqual(['old9', 'old10', 'new']);
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('two syncOnce() at once push each mutation exactly once', async () => {
    const r = rig({ pushBatch: 3 });
    const b = r.restart();
    r.net.on('/v1/sync/push', slowApply()).on('/v1/sync/pull', () => page([], 'c1'));
    const made = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? r.client : b).mutate(card(String(i)))));
    await Promise.all([r.client.syncOnce(), b.syncOnce()]);
    expect(pushedIds(r.net.requests('/v1/sync/push')).sort()).toEqual([...made].sort());
    expect(r.net.maxInFlight).toBe(1);
  });

  it('one loop runs, the other client waits on standby; the owner pushes the other’s mutations at once, and the other takes over when it stops', async () => {
    const r = rig({ longPollS: 25 });
    const b = r.restart();
    await firstOwnsSecondWaits(r, b);
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    // Only the owner's long poll is out.
    expect(r.net.inFlight).toBe(1);
    expect(r.net.maxInFlight).toBe(1);
    const id = await b.mutate(card('from b'));
    await until(async () => (await b.pendingCount()) === 0);
    expect(pushedIds(r.net.requests('/v1/sync/push'))).toEqual([id]);
    // The owner stops (its tab closes): the other one runs the loop from then on.
    await r.client.stop();
    await until(() => b.status === 'idle' && r.net.inFlight === 1);
    const next = await r.client.mutate(card('queued by a client that no longer syncs'));
    await until(() => pushedIds(r.net.requests('/v1/sync/push')).includes(next));
    await b.stop();
    expect(r.net.maxInFlight).toBe(1);
    expect(pushedIds(r.net.requests('/v1/sync/push'))).toEqual([id, next]);
  });
});

/** navigator.locks as Chromium has it, for the parts the client uses: exclusive named locks, ifAvailable, signal. */
function fakeLocks() {
  const held = new Set<string>();
  const waiting = new Map<string, Array<() => void>>();
  const release = (name: string) => {
    const next = waiting.get(name)?.shift();
    if (next) next();
    else held.delete(name);
  };
  return {
    async request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>) {
      if (held.has(name)) {
        if (options.ifAvailable) return callback(null);
        await new Promise<void>((resolve, reject) => {
          const queue = waiting.get(name) ?? [];
          waiting.set(name, queue);
          queue.push(resolve);
          options.signal?.addEventListener('abort', () => {
            const i = queue.indexOf(resolve);
            if (i < 0) return;
            queue.splice(i, 1);
            reject(new DOMException('aborted', 'AbortError'));
          });
        });
      }
      held.add(name);
      try {
        return await callback({ name });
      } finally {
        release(name);
      }
    },
  };
}

describe('two tabs on one IndexedDB database', () => {
  it('run one loop between them through Web Locks; the other tab’s mutations wake it (BroadcastChannel), and it takes over when the first stops', async () => {
    vi.stubGlobal('navigator', { locks: fakeLocks() });
    try {
      const idb = fakeIndexedDb();
      const r = rig({ store: new IndexedDbStore('app-sync', idb), longPollS: 25 });
      // Another tab: its own store object and client over the same database.
      const other = r.restart({ store: new IndexedDbStore('app-sync', idb) });
      await firstOwnsSecondWaits(r, other);
      const id = await other.mutate(card('from the other tab'));
      await until(async () => (await other.pendingCount()) === 0);
      expect(pushedIds(r.net.requests('/v1/sync/push'))).toEqual([id]);
      await r.client.stop();
      await until(() => other.status === 'idle' && r.net.inFlight === 1);
      await other.stop();
      expect(r.net.maxInFlight).toBe(1);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
