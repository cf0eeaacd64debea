/**
 * Compaction and reset: tombstones and history go once every active device has pulled past them;
 * compaction never changes the live state; a device whose cursor fell behind the horizon gets
 * `reset`, and the work it had not pushed survives.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { post } from '../auth/support.js';
import { device, sibling, type SyncHarness, syncHarness } from './support.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const DAY = 86_400_000;

describe('sync compaction', () => {
  it('keeps history an active device still needs, drops it once acknowledged, and never changes the live state', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    const start = await tablet.pullAll(null);
    const muts = [];
    for (let i = 0; i < 10; i++) muts.push({ mutation_id: `u${i}`, entity: 'card', entity_id: `c${i % 4}`, op: 'upsert' as const, payload: { i } });
    muts.push({ mutation_id: 'del', entity: 'card', entity_id: 'c0', op: 'delete' as const, base_version: 3 });
    await phone.push(muts);
    const exportText = async () => (await (await fetch(`${h!.syncUrl}/export`, { headers: { authorization: `Bearer ${phone.token}` } })).text()).replace(/"head":\d+/, '');
    const before = await exportText();
    // The tablet has not pulled since the start: nothing it may need goes.
    expect((await h.sync.compact()).tombstones).toBe(0);
    const { cursor: phoneAt } = await phone.pullAll(null);
    // A cursor counts as acknowledged when the device sends it: the next pull does.
    await tablet.pull((await tablet.pullAll(start.cursor)).cursor);
    await phone.pull(phoneAt);
    const stats = await h.sync.compact();
    expect(stats).toMatchObject({ tombstones: 1 });
    expect(stats.versions).toBeGreaterThan(0);
    expect(await exportText()).toBe(before);
    // A device that had acknowledged everything keeps syncing without a reset.
    const r = await tablet.pull(phoneAt);
    expect(r.body.reset).toBeUndefined();
  });

  it('resets a device that fell behind the horizon; its unpushed work survives the reset', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    let phone = await device(h, 'ann@example.org', 'phone-0001');
    let tablet = await sibling(phone, 'tablet-0001');
    await phone.push([{ mutation_id: 'p1', entity: 'card', entity_id: 'a', op: 'upsert', payload: { front: 'one' } }]);
    const old = await tablet.pullAll(null);
    // The tablet goes quiet for longer than max_days; the phone keeps syncing (signed in again: its tokens expired meanwhile).
    h.clock.advance(31 * DAY);
    phone = await device(h, 'ann@example.org', 'phone-0001');
    await phone.push([{ mutation_id: 'p2', entity: 'card', entity_id: 'a', op: 'delete', base_version: 1 }]);
    await phone.push([{ mutation_id: 'p3', entity: 'card', entity_id: 'b', op: 'upsert', payload: { front: 'two' } }]);
    const phoneAt = await phone.pullAll(null);
    await phone.pull(phoneAt.cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);

    // The tablet comes back with an edit it made offline, and its old cursor.
    tablet = await device(h, 'ann@example.org', 'tablet-0001');
    const reset = await tablet.pull(old.cursor);
    expect(reset.body).toMatchObject({ changes: [], has_more: true, reset: { reason: 'cursor_expired' } });
    // As the protocol says: push the queue first, then page the snapshot.
    const pushed = await tablet.push([{ mutation_id: 't1', entity: 'card', entity_id: 'c', op: 'upsert', payload: { front: 'offline work' } }]);
    expect(pushed.body.results[0].status).toBe('applied');
    const snapshot = await tablet.pullAll(reset.body.cursor);
    expect(snapshot.changes.map((c) => [c.entity_id, c.op, c.payload?.front])).toEqual([
      ['b', 'upsert', 'two'],
      ['c', 'upsert', 'offline work'],
    ]);
    // The entity deleted while it was away is simply absent: the client drops what the snapshot did not mention.
    expect((await tablet.pull(snapshot.cursor)).body.reset).toBeUndefined();
  });

  it('answers reset for a cursor it never wrote, or one from the future', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    for (const cursor of ['garbage', Buffer.from('abcdefgh.99999').toString('base64url'), 'x'.repeat(200)]) {
      const r = await phone.pull(cursor);
      expect(r.body.reset, cursor).toEqual({ reason: expect.stringMatching(/cursor_unknown|data_replaced/) });
    }
    const tooLong = await phone.pull('x'.repeat(201));
    expect([tooLong.status, tooLong.body.error.code]).toEqual([400, 'IQP_E_INVALID_REQUEST']);
  });

  it('counts in stats, the audit log and /v1/metrics, never with payloads', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    await phone.push([{ mutation_id: 'a', entity: 'card', entity_id: 'x', op: 'upsert', payload: { secret: 'nope' } }]);
    const stats = await h.sync.stats();
    expect(stats).toEqual({ users: 1, entities: 1, tombstones: 0, conflicts_open: 0, devices: 1 });
    const audit = await h.db.all<{ action: string; details: string }>("SELECT action, details FROM audit_log WHERE action LIKE 'sync.%'");
    expect(audit.map((a) => a.action)).toEqual(['sync.push']);
    expect(audit[0]!.details).not.toContain('nope');
    expect(JSON.parse(audit[0]!.details)).toMatchObject({ mutations: 1, applied: 1 });
    await phone.pull('not-a-cursor');
    const metrics = await (await fetch(`${h.base}/v1/metrics`)).text();
    expect(metrics).toContain('iqp_sync_mutations_total{status="applied"} 1');
    expect(metrics).toContain('iqp_sync_resets_total{reason="cursor_unknown"} 1');
    void post;
  });
});
