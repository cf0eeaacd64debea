/** Pulling pages, holding back changes to entities with local work, and resets. */
import { describe, expect, it } from 'vitest';
import { applyAll, change, json, page } from './fakes.js';
import { deliveredIds, rig } from './harness.js';

const card = (id: string, front = id) => ({ entity: 'card', entity_id: id, op: 'upsert' as const, payload: { front } });

describe('pull', () => {
  it('pages until has_more is false, sending each returned cursor, and hands every page over in order', async () => {
    const r = rig({ pullLimit: 2 });
    r.net.on('/v1/sync/pull', () => page([change('1', 1, 1), change('2', 1, 2)], 'c2', true), () => page([change('3', 1, 3)], 'c3'));
    await r.client.syncOnce();
    expect(r.net.requests('/v1/sync/pull').map((q) => [q.body.cursor, q.body.limit, q.body.wait])).toEqual([
      [null, 2, undefined],
      ['c2', 2, undefined],
    ]);
    expect(deliveredIds(r)).toEqual(['upsert:1@1', 'upsert:2@1', 'upsert:3@1']);
    // A null cursor is a snapshot of the latest state.
    expect(r.delivered.map((d) => d.info.snapshot)).toEqual([true, true]);
    expect(await r.store.get('m/cursor')).toBe('c3');
    expect(await r.client.knownVersion('card', '3')).toBe(1);
    r.net.set('/v1/sync/pull', () => page([change('1', 2, 4)], 'c4'));
    await r.client.syncOnce();
    expect(r.net.requests('/v1/sync/pull')[2]!.body.cursor).toBe('c3');
    expect(r.delivered.at(-1)!.info.snapshot).toBe(false);
  });

  it('stores the cursor only after onChanges resolved, in the same write as the versions', async () => {
    let fail = true;
    const r = rig({
      onChanges: async () => {
        if (fail) throw new Error('app could not apply');
      },
    });
    r.net.on('/v1/sync/pull', () => page([change('1', 5, 9)], 'c9'));
    await expect(r.client.syncOnce()).rejects.toThrow(/could not apply/);
    expect(await r.store.get('m/cursor')).toBeUndefined();
    expect(await r.client.knownVersion('card', '1')).toBeUndefined();
    fail = false;
    await r.client.syncOnce();
    expect(r.net.requests('/v1/sync/pull').map((q) => q.body.cursor)).toEqual([null, null]);
    const w = r.store.writes.find((x) => x.set?.['m/cursor'] === 'c9')!;
    expect(w.set).toMatchObject({ 'v/card/1': '{"v":5}' });
  });

  it('passes conflicts to onConflicts before the cursor moves', async () => {
    const r = rig();
    const conflict = { id: 'c_1', entity: 'card', entity_id: '1', seq: 3, fields: ['front'], base: null, winner: { front: 'a' }, loser: { front: 'b' }, winner_device: 'x', loser_device: 'dev-test-0001', summary: 's', status: 'open', resolution: null, created_at: 't', resolved_at: null };
    r.net.on('/v1/sync/pull', () => json(200, { changes: [], conflicts: [conflict], cursor: 'c3', has_more: false, head: 3 }));
    await r.client.syncOnce();
    expect(r.conflicts).toEqual([conflict]);
  });

  it('does not hand over changes to an entity that still has queued mutations; pushes first each cycle', async () => {
    const r = rig();
    await r.client.mutate(card('1'));
    r.net.on('/v1/sync/push', applyAll(2));
    r.net.on('/v1/sync/pull', async () => {
      // While the pull is out, the user edits card 1 again: it is queued when the page arrives.
      await r.client.mutate(card('1', 'again'));
      return page([change('1', 2, 5, { front: 'from-server' }), change('2', 1, 6)], 'c6');
    });
    await r.client.syncOnce();
    expect(deliveredIds(r)).toEqual(['upsert:2@1']);
    expect(await r.store.get('m/cursor')).toBe('c6');
    // Next cycle: the push comes first, and the merged state arrives in a later pull.
    r.net.set('/v1/sync/push', applyAll(3));
    r.net.set('/v1/sync/pull', () => page([change('1', 3, 7, { front: 'merged' })], 'c7'));
    await r.client.syncOnce();
    const order = r.net.sent.map((s) => s.path.slice(9));
    expect(order).toEqual(['push', 'pull', 'push', 'pull']);
    expect(deliveredIds(r)).toEqual(['upsert:2@1', 'upsert:1@3']);
  });

  it('hands over a held change once the entity’s mutations were rejected (nothing newer exists)', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', () => page([change('1', 4, 4)], 'c4'));
    await r.client.syncOnce();
    r.net.set('/v1/sync/pull', async () => {
      await r.client.mutate(card('1', 'mine'));
      return page([change('1', 5, 5, { front: 'theirs' })], 'c5');
    });
    await r.client.syncOnce();
    expect(deliveredIds(r)).toEqual(['upsert:1@4']);
    r.net.on('/v1/sync/push', (req) =>
      json(200, { results: req.body.mutations.map((m: any) => ({ mutation_id: m.mutation_id, status: 'rejected', entity: 'card', entity_id: '1', version: 5, error: { code: 'IQP_E_SYNC_PAYLOAD_INVALID', message: 'no' } })), head: 5 }),
    );
    r.net.set('/v1/sync/pull', () => page([], 'c5'));
    await r.client.syncOnce();
    expect(deliveredIds(r)).toEqual(['upsert:1@4', 'upsert:1@5']);
    expect(r.delivered.at(-1)!.changes[0]!.payload).toEqual({ front: 'theirs' });
    expect(await r.client.knownVersion('card', '1')).toBe(5);
    expect(await r.store.scan('h/')).toEqual([]);
  });

  it('drops a held change once a push of ours made a newer version', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', async () => {
      await r.client.mutate(card('1', 'mine'));
      return page([change('1', 2, 2, { front: 'other device' })], 'c2');
    });
    await r.client.syncOnce();
    r.net.on('/v1/sync/push', applyAll(3));
    r.net.set('/v1/sync/pull', () => page([change('1', 3, 3, { front: 'merged' })], 'c3'));
    await r.client.syncOnce();
    expect(deliveredIds(r)).toEqual(['upsert:1@3']);
  });
});

describe('reset', () => {
  /** A device that already knows cards 1..4 at cursor c4. */
  async function known() {
    const r = rig();
    r.net.on('/v1/sync/pull', () => page([change('1', 1, 1), change('2', 1, 2), change('3', 1, 3), change('4', 1, 4, null)], 'c4'));
    await r.client.syncOnce();
    r.delivered.length = 0;
    return r;
  }

  it('pushes the queue first, pages the snapshot, then deletes what it knew that the snapshot did not mention', async () => {
    const r = await known();
    r.net.on('/v1/sync/push', async (req) => {
      // A mutation made while the reset's push is out goes up before the snapshot too.
      if (r.net.requests('/v1/sync/push').length === 1) await r.client.mutate(card('6'));
      return applyAll(1)(req);
    });
    r.net.set(
      '/v1/sync/pull',
      async () => {
        await r.client.mutate(card('5'));
        return json(200, { changes: [], conflicts: [], cursor: 's0', has_more: true, head: 9, reset: { reason: 'cursor_expired' } });
      },
      () => page([change('1', 1, 1)], 's1', true),
      () => page([change('5', 1, 9)], 's9'),
    );
    await r.client.syncOnce();
    const order = r.net.sent.slice(1).map((s) => `${s.path.slice(9)}:${s.body.cursor ?? s.body.mutations.map((m: any) => m.entity_id).join(',')}`);
    expect(order).toEqual(['pull:c4', 'push:5', 'push:6', 'pull:s0', 'pull:s1']);
    // 2 and 3 were known and not mentioned: deleted. 4 was already a delete. 6 was pushed during the snapshot: kept.
    expect(deliveredIds(r)).toEqual(['upsert:1@1', 'upsert:5@1', 'delete:2@1', 'delete:3@1']);
    expect(r.delivered.every((d) => d.info.snapshot)).toBe(true);
    expect(await r.store.scan('s/')).toEqual([]);
    expect(await r.store.get('m/snapshot')).toBeUndefined();
    expect(await r.store.get('m/cursor')).toBe('s9');
  });

  it('keeps entities that still have queued mutations', async () => {
    const r = await known();
    r.net.set(
      '/v1/sync/pull',
      () => json(200, { changes: [], conflicts: [], cursor: 's0', has_more: true, head: 9, reset: { reason: 'data_replaced' } }),
      async () => {
        await r.client.mutate(card('2', 'edited during the snapshot'));
        return page([change('1', 1, 1)], 's1');
      },
    );
    await r.client.syncOnce();
    expect(deliveredIds(r)).toEqual(['upsert:1@1', 'delete:3@1']);
  });

  it('a crash mid-snapshot resumes from the stored page, remembering what earlier pages mentioned', async () => {
    const r = await known();
    let crash = true;
    const app = r.restart({
      onChanges: (changes, info) => {
        if (crash && changes.some((c) => c.entity_id === '3')) throw new Error('crash');
        r.delivered.push({ changes, info });
      },
    });
    r.net.set(
      '/v1/sync/pull',
      () => json(200, { changes: [], conflicts: [], cursor: 's0', has_more: true, head: 9, reset: { reason: 'cursor_unknown' } }),
      () => page([change('1', 1, 1)], 's1', true),
      (req) => {
        expect(req.body.cursor).toBe('s1');
        return page([change('3', 1, 3)], 's3');
      },
    );
    await expect(app.syncOnce()).rejects.toThrow('crash');
    expect(await r.store.get('m/cursor')).toBe('s1');
    crash = false;
    await r.restart({ onChanges: (changes, info) => void r.delivered.push({ changes, info }) }).syncOnce();
    // Card 1 was mentioned by the page before the crash: not deleted. Card 2 was never mentioned.
    expect(deliveredIds(r)).toEqual(['upsert:1@1', 'upsert:3@1', 'delete:2@1']);
  });

  it('after a restore from an older backup, re-queues on the registry’s version what was based on a newer one, rather than dropping it', async () => {
    const r = await known();
    // The device saw card 1 at version 7; the registry is then restored to a backup where it is at 3.
    r.net.set('/v1/sync/pull', () => page([change('1', 7, 7)], 'c7'));
    await r.client.syncOnce();
    r.delivered.length = 0;
    const first = await r.client.mutate(card('1', 'mine, made on 7'));
    await r.client.mutate(card('2', 'also mine'));
    const registry = new Map([
      ['1', 3],
      ['2', 1],
    ]);
    let seq = 20;
    r.net.on('/v1/sync/push', (req) =>
      json(200, {
        results: req.body.mutations.map((m: any) => {
          const current = registry.get(m.entity_id) ?? 0;
          if ((m.base_version ?? 0) > current) {
            return { mutation_id: m.mutation_id, status: 'rejected', entity: m.entity, entity_id: m.entity_id, version: current, error: { code: 'IQP_E_SYNC_BASE_VERSION', message: 'newer than the registry', field: 'base_version' } };
          }
          registry.set(m.entity_id, current + 1);
          return { mutation_id: m.mutation_id, status: 'applied', entity: m.entity, entity_id: m.entity_id, version: current + 1, seq: ++seq };
        }),
        head: seq,
      }),
    );
    r.net.set(
      '/v1/sync/pull',
      () => json(200, { changes: [], conflicts: [], cursor: 's0', has_more: true, head: 20, reset: { reason: 'cursor_unknown' } }),
      () => page([change('1', 4, 21, { front: 'mine, made on 7' }), change('2', 2, 22, { front: 'also mine' })], 's22'),
    );
    await r.client.syncOnce();
    const pushes = r.net.requests('/v1/sync/push').map((q) => q.body.mutations);
    expect(pushes.map((ms) => ms.map((m: any) => [m.entity_id, m.base_version]))).toEqual([
      [
        ['1', 7],
        ['2', 1],
      ],
      [['1', 3]],
    ]);
    // The same change under a new id (a resend of the old id with another base would be refused as reused).
    const again = pushes[1]![0];
    expect(again.mutation_id).not.toBe(first);
    expect(again.mutation_id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    expect(again.payload).toEqual({ front: 'mine, made on 7' });
    expect(r.rejected).toEqual([]);
    expect(await r.client.pendingCount()).toBe(0);
    expect(await r.client.knownVersion('card', '1')).toBe(4);
    expect(deliveredIds(r)).toEqual(['upsert:1@4', 'upsert:2@2', 'delete:3@1']);
  });

  it('gives up for the cycle when the server answers reset again and again', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', () => json(200, { changes: [], conflicts: [], cursor: 's0', has_more: true, head: 1, reset: { reason: 'cursor_unknown' } }));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ code: 'IQP_CLIENT_BAD_RESPONSE' });
    expect(r.net.sent.length).toBe(4);
  });
});
