/**
 * Push and pull against a real registry: idempotent replays, atomic pushes, merges and conflicts,
 * update after delete, exact paging, deletes, resets that keep unpushed work.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { device, sibling, type SyncHarness, syncHarness } from './support.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('sync push', () => {
  it('applies mutations in order and a replayed push returns the same results, writing nothing', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const mutations = [
      { mutation_id: 'm1', entity: 'card', entity_id: '12', op: 'upsert' as const, payload: { front: 'abc', back: 'x' } },
      { mutation_id: 'm2', entity: 'card', entity_id: '12', op: 'patch' as const, payload: { back: 'y' }, base_version: 1 },
      { mutation_id: 'm3', entity: 'card', entity_id: '13', op: 'upsert' as const, payload: { front: 'q' } },
    ];
    const first = await phone.push(mutations);
    expect(first.status).toBe(200);
    expect(first.body.results.map((r: any) => [r.mutation_id, r.status, r.version, r.seq])).toEqual([
      ['m1', 'applied', 1, 1],
      ['m2', 'applied', 2, 2],
      ['m3', 'applied', 1, 3],
    ]);
    const again = await phone.push(mutations);
    expect(again.body).toEqual(first.body);
    const pulled = await phone.pullAll(null);
    expect(pulled.changes).toEqual([
      { entity: 'card', entity_id: '12', op: 'upsert', payload: { front: 'abc', back: 'y' }, version: 2, seq: 2 },
      { entity: 'card', entity_id: '13', op: 'upsert', payload: { front: 'q' }, version: 1, seq: 3 },
    ]);
  });

  it('merges fields only one side changed, and keeps both sides of a field both changed', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001', 'phone');
    const tablet = await sibling(phone, 'tablet-0001', 'tablet');
    await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '12', op: 'upsert', payload: { front: 'ab', back: 'b', tags: [] } }]);
    const t = await tablet.push([{ mutation_id: tablet.mid(), entity: 'card', entity_id: '12', op: 'upsert', payload: { front: 'ab', back: 'B2', tags: [] }, base_version: 1 }]);
    expect(t.body.results[0].status).toBe('applied');
    // The phone never saw version 2: its change to front merges with the tablet's change to back.
    const p = await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '12', op: 'upsert', payload: { front: 'abc', back: 'b', tags: [] }, base_version: 1 }]);
    expect(p.body.results[0]).toMatchObject({ status: 'merged', version: 3 });
    // Both change front: the later arrival (tablet) wins, the conflict keeps the phone's value.
    const p2 = await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '12', op: 'patch', payload: { front: 'abc!' }, base_version: 3 }]);
    expect(p2.body.results[0].status).toBe('applied');
    const t2 = await tablet.push([{ mutation_id: tablet.mid(), entity: 'card', entity_id: '12', op: 'patch', payload: { front: 'abd' }, base_version: 3 }]);
    expect(t2.body.results[0]).toMatchObject({ status: 'conflict', version: 5 });
    const { changes, conflicts } = await phone.pullAll(null);
    expect(changes).toEqual([{ entity: 'card', entity_id: '12', op: 'upsert', payload: { front: 'abd', back: 'B2', tags: [] }, version: 5, seq: 5 }]);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ id: t2.body.results[0].conflict_id, fields: ['front'], winner: { front: 'abd' }, loser: { front: 'abc!' }, status: 'open', winner_device: 'tablet-0001', loser_device: 'phone-0001' });
    expect(conflicts[0].summary).toBe("Card 12 · front: phone 'abc!' vs tablet 'abd' — kept tablet (later)");
  });
});
