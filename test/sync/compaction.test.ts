/**
 * Compaction and reset: tombstones and history go once every active device has pulled past them;
 * compaction never changes the live state; a device whose cursor fell behind the horizon gets
 * `reset`, and the work it had not pushed survives.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ACK_EVERY_MS } from '../../plugins/sync/pull.js';
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

  it('records a device’s cursor going forward at most every 10 s, and at once going back; until then compaction keeps what the older one needs', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    const acked = async () => (await h!.db.get<{ acked: number }>('SELECT acked FROM sync_devices WHERE device_id = ?', ['tablet-0001']))!.acked;
    await phone.push([{ mutation_id: 'a1', entity: 'card', entity_id: 'a', op: 'upsert', payload: { v: 1 } }]);
    const first = await tablet.pullAll(null);
    await tablet.pull(first.cursor);
    const firstAck = await acked();
    expect(firstAck, 'a first ack is recorded at once').toBeGreaterThan(0);
    await phone.push([{ mutation_id: 'a2', entity: 'card', entity_id: 'a', op: 'delete', base_version: 1 }]);
    await phone.pull((await phone.pullAll(null)).cursor);
    const second = await tablet.pullAll(first.cursor);
    await tablet.pull(second.cursor);
    expect(await acked(), 'within 10 s of the last: not recorded').toBe(firstAck);
    expect((await h.sync.compact()).tombstones, 'the tablet’s recorded cursor is below the delete').toBe(0);
    h.clock.advance(ACK_EVERY_MS);
    await tablet.pull(second.cursor);
    const secondAck = await acked();
    expect(secondAck).toBeGreaterThan(firstAck);
    // Going back (an app restored from an older copy of its database) is recorded at once.
    await tablet.pull(first.cursor);
    expect(await acked()).toBe(firstAck);
    h.clock.advance(ACK_EVERY_MS);
    await tablet.pull(second.cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);
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

  it('lets a snapshot page below the floor in pages of one, and resets it only if the floor moves under it', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    // a, b, c, d; b deleted: once compacted, the floor (seq 5) is above c (seq 3).
    await phone.push([
      { mutation_id: 'p1', entity: 'card', entity_id: 'a', op: 'upsert', payload: { n: 1 } },
      { mutation_id: 'p2', entity: 'card', entity_id: 'b', op: 'upsert', payload: { n: 2 } },
      { mutation_id: 'p3', entity: 'card', entity_id: 'c', op: 'upsert', payload: { n: 3 } },
      { mutation_id: 'p4', entity: 'card', entity_id: 'b', op: 'delete', base_version: 1 },
      { mutation_id: 'p5', entity: 'card', entity_id: 'd', op: 'upsert', payload: { n: 5 } },
    ]);
    await phone.pull((await phone.pullAll(null)).cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);

    // A new device pages the whole snapshot one change at a time: c (seq 3) sits below the floor (seq 5).
    const tablet = await sibling(phone, 'tablet-0001');
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const r = await tablet.pull(cursor, { limit: 1 });
      expect(r.body.reset).toBeUndefined();
      seen.push(...r.body.changes.map((c: { entity_id: string }) => c.entity_id));
      cursor = r.body.cursor;
      if (!r.body.has_more) break;
    }
    expect(seen).toEqual(['a', 'c', 'd']);

    // A second device is half way through its snapshot when the floor moves past it: it must start again,
    // since a delete it has not seen may be gone. (Its own cursor holds the floor back while it is active,
    // so it is made inactive by time.)
    const laptop = await sibling(phone, 'laptop-0001');
    const first = await laptop.pull(null, { limit: 1 });
    expect(first.body).toMatchObject({ has_more: true });
    await phone.push([{ mutation_id: 'p6', entity: 'card', entity_id: 'c', op: 'delete', base_version: 1 }]);
    h.clock.advance(31 * DAY);
    const fresh = await device(h, 'ann@example.org', 'phone-0001');
    await fresh.pull((await fresh.pullAll(null)).cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);
    const back = await device(h, 'ann@example.org', 'laptop-0001');
    expect((await back.pull(first.body.cursor, { limit: 1 })).body.reset).toEqual({ reason: 'cursor_expired' });
  });

  it('never hands out a lower version: an id re-created after its tombstone was compacted continues above it', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    await phone.push([
      { mutation_id: 'p1', entity: 'card', entity_id: 'a', op: 'upsert', payload: { n: 1 } },
      { mutation_id: 'p2', entity: 'card', entity_id: 'a', op: 'upsert', payload: { n: 2 }, base_version: 1 },
      { mutation_id: 'p3', entity: 'card', entity_id: 'a', op: 'delete', base_version: 2 },
    ]);
    const seen = await tablet.pullAll(null);
    expect(seen.changes).toMatchObject([{ entity_id: 'a', op: 'delete', version: 3 }]);
    await tablet.pull(seen.cursor);
    await phone.pull((await phone.pullAll(null)).cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);
    // A late delete from a queue, then the phone creates the id again: the tablet, which holds the
    // tombstone at version 3, must see higher ones.
    const late = await tablet.push([{ mutation_id: 't1', entity: 'card', entity_id: 'a', op: 'delete', base_version: 3 }]);
    expect(late.body.results[0]).toMatchObject({ status: 'applied' });
    expect(late.body.results[0].version).toBeGreaterThan(3);
    const again = await phone.push([{ mutation_id: 'p4', entity: 'card', entity_id: 'a', op: 'upsert', payload: { n: 4 }, base_version: late.body.results[0].version }]);
    expect(again.body.results[0]).toMatchObject({ status: 'applied' });
    expect(again.body.results[0].version).toBeGreaterThan(late.body.results[0].version);
    const next = await tablet.pullAll(seen.cursor);
    expect(next.changes).toMatchObject([{ entity_id: 'a', op: 'upsert', payload: { n: 4 }, version: again.body.results[0].version }]);
  });

  it('never hands out a lower version: resolving a conflict whose entity compaction removed continues above it', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    await phone.push([{ mutation_id: 'p1', entity: 'card', entity_id: 'a', op: 'upsert', payload: { n: 1 } }]);
    await tablet.push([{ mutation_id: 't1', entity: 'card', entity_id: 'a', op: 'patch', payload: { n: 2 }, base_version: 1 }]);
    // The phone deletes the card it had at version 1: the delete wins, the tablet's edit is kept in a conflict.
    const deleted = await phone.push([{ mutation_id: 'p2', entity: 'card', entity_id: 'a', op: 'delete', base_version: 1 }]);
    expect(deleted.body.results[0]).toMatchObject({ status: 'conflict', version: 3 });
    const seen = await tablet.pullAll(null);
    await tablet.pull(seen.cursor);
    await phone.pull((await phone.pullAll(null)).cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);
    const resolved = await post(`${h.syncUrl}/conflicts/${deleted.body.results[0].conflict_id}/resolve`, { device_id: tablet.id, keep: 'loser' }, tablet.token);
    expect(resolved.status).toBe(200);
    expect(resolved.body.version).toBeGreaterThan(3);
    expect((await phone.pullAll(seen.cursor)).changes).toMatchObject([{ entity_id: 'a', op: 'upsert', payload: { n: 2 }, version: resolved.body.version }]);
  });

  it('after compaction, a device’s own offline create and edits of a new id are applied, not conflicts with itself', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    // Some history, compacted away, so that new ids start above version 1.
    await phone.push([
      { mutation_id: 'p1', entity: 'card', entity_id: 'old', op: 'upsert', payload: { n: 1 } },
      { mutation_id: 'p2', entity: 'card', entity_id: 'old', op: 'delete', base_version: 1 },
    ]);
    await tablet.pull((await tablet.pullAll(null)).cursor);
    await phone.pull((await phone.pullAll(null)).cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);
    // Made offline on the tablet: a new card, then two edits of it, none with a version seen from the registry.
    const offline = await tablet.push([
      { mutation_id: 't1', entity: 'card', entity_id: 'new', op: 'upsert', payload: { front: 'a', back: 'b' } },
      { mutation_id: 't2', entity: 'card', entity_id: 'new', op: 'patch', payload: { front: 'a2' } },
      { mutation_id: 't3', entity: 'card', entity_id: 'new', op: 'upsert', payload: { front: 'a3', back: 'b3' } },
      { mutation_id: 't4', entity: 'card', entity_id: 'gone', op: 'upsert', payload: { n: 1 } },
      { mutation_id: 't5', entity: 'card', entity_id: 'gone', op: 'delete' },
    ]);
    expect(offline.body.results.map((r: { status: string }) => r.status)).toEqual(['applied', 'applied', 'applied', 'applied', 'applied']);
    expect(offline.body.results[0].version).toBeGreaterThan(1);
    const phoneView = await phone.pullAll(null);
    expect(phoneView.conflicts).toEqual([]);
    expect(phoneView.changes).toMatchObject([
      { entity_id: 'new', op: 'upsert', payload: { front: 'a3', back: 'b3' } },
      { entity_id: 'gone', op: 'delete' },
    ]);
    // Another device's write in between is still news to it.
    const phoneSaw = await phone.push([{ mutation_id: 'p3', entity: 'card', entity_id: 'new', op: 'patch', payload: { back: 'phone' }, base_version: offline.body.results[2].version }]);
    expect(phoneSaw.body.results[0].status).toBe('applied');
    const clash = await tablet.push([{ mutation_id: 't6', entity: 'card', entity_id: 'new', op: 'patch', payload: { back: 'tablet' } }]);
    expect(clash.body.results[0].status).toBe('conflict');
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
