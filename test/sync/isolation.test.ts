/**
 * No account reads or writes another's data, whatever ids it guesses: entities, devices, conflicts,
 * cursors and exports are all scoped by the user the access token names, never by the body.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { post } from '../auth/support.js';
import { device, sibling, type SyncHarness, syncHarness } from './support.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('sync isolation between accounts', () => {
  it('holds for reads, writes, guessed entity and device ids, cursors, conflicts and exports', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    const annTablet = await sibling(ann, 'ann-tablet-1');
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    await ann.push([{ mutation_id: 'a1', entity: 'card', entity_id: 'secret', op: 'upsert', payload: { front: 'ann only' } }]);
    await ann.push([{ mutation_id: 'a2', entity: 'card', entity_id: 'secret', op: 'patch', payload: { front: 'ann 2' }, base_version: 1 }]);
    const conflict = await annTablet.push([{ mutation_id: 't1', entity: 'card', entity_id: 'secret', op: 'patch', payload: { front: 'tablet' }, base_version: 1 }]);
    const conflictId = conflict.body.results[0].conflict_id;
    expect(conflictId).toBeTruthy();
    const annCursor = (await ann.pullAll(null)).cursor;

    // Read: Bob's pull from the start, and with Ann's cursor, shows nothing of Ann's.
    expect(await bob.pullAll(null)).toMatchObject({ changes: [], conflicts: [] });
    const withAnnsCursor = await bob.pull(annCursor);
    expect(withAnnsCursor.body.changes).toEqual([]);
    expect(withAnnsCursor.body.reset).toBeDefined();
    expect((await bob.pullAll(withAnnsCursor.body.cursor)).changes).toEqual([]);

    // Write with a guessed entity id: Bob gets his own entity; Ann's is untouched.
    const guessed = await bob.push([{ mutation_id: 'b1', entity: 'card', entity_id: 'secret', op: 'patch', payload: { front: 'bob' }, base_version: 3 }]);
    expect(guessed.body.results[0]).toMatchObject({ status: 'applied', version: 1 });
    const del = await bob.push([{ mutation_id: 'b2', entity: 'card', entity_id: 'secret', op: 'delete', base_version: 1 }]);
    expect(del.body.results[0].status).toBe('applied');
    expect((await ann.pullAll(null)).changes.map((c) => c.payload)).toEqual([{ front: 'tablet' }]);

    // Another account's device id, in push, pull and resolve.
    for (const r of [
      await bob.push([{ mutation_id: 'b3', entity: 'card', entity_id: 'x', op: 'upsert', payload: {} }], { device_id: 'ann-phone-1' }),
      await bob.pull(null, { device_id: 'ann-phone-1' }),
      await post(`${h.syncUrl}/conflicts/${conflictId}/resolve`, { device_id: 'ann-phone-1', keep: 'winner' }, bob.token),
    ]) {
      expect([r.status, r.body.error.code]).toEqual([409, 'IQP_E_DEVICE_FOREIGN']);
    }
    // Nor did the refused push leave a mutation record under Ann's device.
    expect(h.db.db.prepare("SELECT COUNT(*) AS n FROM sync_mutations WHERE device_id = 'ann-phone-1'").get()).toEqual({ n: 2 });

    // Another account's conflict id: not found, not listed, not resolvable.
    expect((await post(`${h.syncUrl}/conflicts?status=all`, undefined, bob.token, 'GET')).body.conflicts).toEqual([]);
    const resolve = await post(`${h.syncUrl}/conflicts/${conflictId}/resolve`, { device_id: 'bob-phone-1', keep: 'loser' }, bob.token);
    expect([resolve.status, resolve.body.error.code]).toEqual([404, 'IQP_E_NOT_FOUND']);
    expect((await post(`${h.syncUrl}/conflicts?status=open`, undefined, ann.token, 'GET')).body.conflicts.map((c: any) => c.id)).toEqual([conflictId]);

    // Export: Bob's holds only Bob's (nothing live).
    const bobExport = await (await fetch(`${h.syncUrl}/export`, { headers: { authorization: `Bearer ${bob.token}` } })).text();
    expect(bobExport).not.toContain('ann');
    expect(JSON.parse(bobExport.trim()).trailer.count).toBe(0);
  });

  it('refuses API tokens and anonymous callers: sync needs a signed-in user', async () => {
    h = await syncHarness();
    const { token } = await h.running.registry.services.tokens.create('admin', 'ops', 'cli:test');
    for (const auth of [token, undefined]) {
      const r = await post(`${h.syncUrl}/pull`, { device_id: 'some-device', cursor: null }, auth);
      expect(r.status, String(auth)).toBe(auth ? 403 : 401);
    }
  });
});
