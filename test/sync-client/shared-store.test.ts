/**
 * Two clients on one store: two tabs of a web app on one IndexedDB database, or two parts of one
 * app that each made a client. Every mutate() of each lands, in each one's order.
 */
import { describe, expect, it } from 'vitest';
import { applyAll, page } from './fakes.js';
import { rig } from './harness.js';

const card = (id: string) => ({ entity: 'card', entity_id: id, op: 'upsert' as const, payload: { front: id } });

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
});
