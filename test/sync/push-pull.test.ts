/**
 * Push and pull against a real registry: idempotent replays, atomic pushes, merges and conflicts,
 * update after delete, exact paging, deletes, resets that keep unpushed work.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { post } from '../auth/support.js';
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

  it('stores every answer of a push larger than one statement holds: a replay of any of them answers the same', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const mutations = Array.from({ length: 150 }, (_, i) => ({ mutation_id: `b${i}`, entity: 'card', entity_id: `c${i}`, op: 'upsert' as const, payload: { front: `f${i}` } }));
    const first = await phone.push(mutations);
    expect(first.status).toBe(200);
    expect(first.body.results.filter((r: any) => r.status === 'applied')).toHaveLength(150);
    // Replays from both ends and the middle, in another order, alone: the stored answers come back.
    const picks = [149, 0, 64, 63, 100];
    const again = await phone.push(picks.map((k) => mutations[k]!));
    expect(again.body.results).toEqual(picks.map((k) => first.body.results[k]));
    // An id of that push reused for another mutation is refused, and nothing is written.
    const reused = await phone.push([{ ...mutations[120]!, payload: { front: 'other' } }]);
    expect(reused.body.results[0]).toMatchObject({ status: 'rejected', error: { code: 'IQP_E_SYNC_MUTATION_REUSED' } });
    const pulled = await phone.pullAll(null);
    expect(pulled.changes).toHaveLength(150);
    expect(pulled.changes.find((c: any) => c.entity_id === 'c120').payload).toEqual({ front: 'f120' });
  });

  it('replays answers stored before applied ones were kept short (as JSON), and answers of every status, the same', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const mutations = [
      { mutation_id: 'j1', entity: 'card', entity_id: '1', op: 'upsert' as const, payload: { front: 'a' } },
      { mutation_id: 'j2', entity: 'card', entity_id: '2', op: 'upsert' as const, payload: { front: 'b' } },
      { mutation_id: 'j3', entity: 'card', entity_id: '3', op: 'patch' as const, payload: null },
    ];
    const first = await phone.push(mutations);
    expect(first.body.results.map((r: any) => r.status)).toEqual(['applied', 'applied', 'rejected']);
    const stored = await h.db.all<{ mutation_id: string; result: string }>('SELECT mutation_id, result FROM sync_mutations ORDER BY mutation_id');
    expect(stored.map((r) => r.result)).toEqual(['a1.1', 'a1.2', JSON.stringify(first.body.results[2])]);
    // j1 as a registry before the short form stored it.
    await h.db.run('UPDATE sync_mutations SET result = ? WHERE mutation_id = ?', [JSON.stringify(first.body.results[0]), 'j1']);
    const again = await phone.push(mutations);
    // The same answers, key for key and in the same order.
    expect(JSON.stringify(again.body.results)).toBe(JSON.stringify(first.body.results));
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

describe('sync push, continued', () => {
  it('is atomic: a failure in the middle of a push leaves nothing of it, and the same push applies whole later', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    // Another connection makes the database refuse one row, as a full disk or a crash mid-push would.
    h.db.db.exec("CREATE TRIGGER boom BEFORE INSERT ON sync_rows WHEN NEW.entity_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END");
    const mutations = [
      { mutation_id: 'a', entity: 'card', entity_id: '1', op: 'upsert' as const, payload: { v: 1 } },
      { mutation_id: 'b', entity: 'card', entity_id: 'boom', op: 'upsert' as const, payload: { v: 2 } },
      { mutation_id: 'c', entity: 'card', entity_id: '3', op: 'upsert' as const, payload: { v: 3 } },
    ];
    const failed = await phone.push(mutations);
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('IQP_E_PLUGIN_FAILED');
    for (const table of ['sync_rows', 'sync_versions', 'sync_mutations']) expect(h.db.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
    expect(h.db.db.prepare('SELECT head FROM sync_users').all()).toEqual([]);
    h.db.db.exec('DROP TRIGGER boom');
    const ok = await phone.push(mutations);
    expect(ok.body.results.map((r: any) => [r.status, r.seq])).toEqual([
      ['applied', 1],
      ['applied', 2],
      ['applied', 3],
    ]);
  });

  it("reads an entity's earlier versions written by the same push: two offline edits on one base merge as the device's own, not as a conflict", async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const r = await phone.push([
      { mutation_id: 'm1', entity: 'card', entity_id: '7', op: 'upsert' as const, payload: { front: 'a', back: 'b' } },
      { mutation_id: 'm2', entity: 'card', entity_id: '7', op: 'patch' as const, payload: { front: 'a2' }, base_version: 1 },
      { mutation_id: 'm3', entity: 'card', entity_id: '7', op: 'patch' as const, payload: { back: 'b3' }, base_version: 1 },
    ]);
    expect(r.body.results.map((x: any) => [x.status, x.version])).toEqual([
      ['applied', 1],
      ['applied', 2],
      ['applied', 3],
    ]);
    expect(h.db.db.prepare("SELECT version FROM sync_versions WHERE entity_id = '7' ORDER BY version").all()).toEqual([{ version: 1 }, { version: 2 }]);
    const { changes, conflicts } = await phone.pullAll(null);
    expect(changes).toEqual([{ entity: 'card', entity_id: '7', op: 'upsert', payload: { front: 'a2', back: 'b3' }, version: 3, seq: 3 }]);
    expect(conflicts).toEqual([]);
    expect(h.db.db.prepare('SELECT COUNT(*) AS n FROM sync_conflicts').get()).toEqual({ n: 0 });
  });

  it('audits a push in its own transaction: a push whose audit entry cannot be written leaves nothing, and one that applies has exactly one entry', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const pushes = () => h!.db.db.prepare("SELECT details FROM audit_log WHERE action = 'sync.push'").all() as { details: string }[];
    h.db.db.exec("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log WHEN NEW.action = 'sync.push' BEGIN SELECT RAISE(ABORT, 'audit log full'); END");
    const mutations = [
      { mutation_id: 'a', entity: 'card', entity_id: '1', op: 'upsert' as const, payload: { v: 1 } },
      { mutation_id: 'b', entity: 'card', entity_id: '2', op: 'upsert' as const, payload: { v: 2 } },
    ];
    const failed = await phone.push(mutations);
    expect(failed.status).toBe(500);
    for (const table of ['sync_rows', 'sync_versions', 'sync_mutations']) expect(h.db.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
    expect(pushes()).toEqual([]);
    h.db.db.exec('DROP TRIGGER no_audit');
    const ok = await phone.push(mutations);
    expect(ok.body.results.map((r: any) => r.status)).toEqual(['applied', 'applied']);
    expect(pushes().map((p) => JSON.parse(p.details))).toEqual([{ mutations: 2, applied: 2, merged: 0, conflict: 0, duplicate: 0, rejected: 0 }]);
  });

  it('answers duplicate for a second copy in one push, and refuses a mutation id reused for something else', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const m = { mutation_id: 'x1', entity: 'note', entity_id: 'n', op: 'upsert' as const, payload: { t: 'a' } };
    const r = await phone.push([m, m]);
    expect(r.body.results.map((x: any) => [x.status, x.version, x.seq])).toEqual([
      ['applied', 1, 1],
      ['duplicate', 1, 1],
    ]);
    const reused = await phone.push([{ ...m, payload: { t: 'b' } }]);
    expect(reused.body.results[0]).toMatchObject({ status: 'rejected', error: { code: 'IQP_E_SYNC_MUTATION_REUSED', field: 'mutation_id' } });
    expect((await phone.pullAll(null)).changes.map((c) => c.payload)).toEqual([{ t: 'a' }]);
  });

  it('brings an entity back when an edit arrives after a delete it had not seen, and records the conflict', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001', 'phone');
    const tablet = await sibling(phone, 'tablet-0001', 'tablet');
    await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '7', op: 'upsert', payload: { front: 'a', back: 'b' } }]);
    expect((await tablet.push([{ mutation_id: tablet.mid(), entity: 'card', entity_id: '7', op: 'delete', base_version: 1 }])).body.results[0]).toMatchObject({ status: 'applied', version: 2 });
    const edit = await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '7', op: 'patch', payload: { back: 'c' }, base_version: 1 }]);
    expect(edit.body.results[0]).toMatchObject({ status: 'conflict', version: 3 });
    const { changes, conflicts } = await tablet.pullAll(null);
    expect(changes).toEqual([{ entity: 'card', entity_id: '7', op: 'upsert', payload: { front: 'a', back: 'c' }, version: 3, seq: 3 }]);
    expect(conflicts[0]).toMatchObject({ fields: ['(deleted)'], winner: { front: 'a', back: 'c' }, loser: null, loser_device: 'tablet-0001' });
    expect(conflicts[0].summary).toBe('Card 7 · deleted on tablet, then edited on phone — kept the edit (later), so it is back');
  });

  it('keeps the edits a late delete removes in its conflict record, and deletes travel to every device', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001', 'phone');
    const tablet = await sibling(phone, 'tablet-0001', 'tablet');
    await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '7', op: 'upsert', payload: { front: 'a' } }]);
    const seen = await tablet.pullAll(null);
    await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: '7', op: 'upsert', payload: { front: 'edited' }, base_version: 1 }]);
    const del = await tablet.push([{ mutation_id: tablet.mid(), entity: 'card', entity_id: '7', op: 'delete', base_version: 1 }]);
    expect(del.body.results[0]).toMatchObject({ status: 'conflict', version: 3 });
    const after = await tablet.pullAll(seen.cursor);
    expect(after.changes).toEqual([{ entity: 'card', entity_id: '7', op: 'delete', payload: null, version: 3, seq: 3 }]);
    expect(after.conflicts[0]).toMatchObject({ winner: null, loser: { front: 'edited' } });
    expect((await phone.pullAll(null)).changes.map((c) => c.op)).toEqual(['delete']);
  });

  it('resolves a conflict by keeping the loser, the winner or a payload: a new version every device pulls', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    const conflictOn = async (id: string) => {
      await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: id, op: 'upsert', payload: { front: 'base' } }]);
      await phone.push([{ mutation_id: phone.mid(), entity: 'card', entity_id: id, op: 'patch', payload: { front: 'phone' }, base_version: 1 }]);
      const r = await tablet.push([{ mutation_id: tablet.mid(), entity: 'card', entity_id: id, op: 'patch', payload: { front: 'tablet' }, base_version: 1 }]);
      expect(r.body.results[0].status).toBe('conflict');
      return r.body.results[0].conflict_id as string;
    };
    const listed = async (status: string) => (await post(`${h!.syncUrl}/conflicts?status=${status}`, undefined, phone.token, 'GET')).body.conflicts.map((c: any) => c.id);
    const a = await conflictOn('a');
    const b = await conflictOn('b');
    const c = await conflictOn('c');
    expect(await listed('open')).toEqual([a, b, c].sort());
    const start = await phone.pullAll(null);
    const resolve = (id: string, keep: unknown) => post(`${h!.syncUrl}/conflicts/${id}/resolve`, { device_id: phone.id, keep }, phone.token);
    const ra = await resolve(a, 'loser');
    expect(ra.status).toBe(200);
    expect(ra.body.conflict).toMatchObject({ status: 'resolved', resolution: 'loser' });
    expect((await resolve(b, 'winner')).status).toBe(200);
    expect((await resolve(c, { front: 'both', note: 'merged by hand' })).status).toBe(200);
    const again = await resolve(a, 'winner');
    expect([again.status, again.body.error.code]).toEqual([409, 'IQP_E_SYNC_CONFLICT_RESOLVED']);
    expect(await listed('open')).toEqual([]);
    const after = await tablet.pullAll(start.cursor);
    expect(Object.fromEntries(after.changes.map((ch) => [ch.entity_id, ch.payload.front]))).toEqual({ a: 'phone', b: 'tablet', c: 'both' });
    expect(after.conflicts.map((x) => [x.id, x.status])).toEqual([
      [a, 'resolved'],
      [b, 'resolved'],
      [c, 'resolved'],
    ]);
  });

  it('loses no update under concurrent pushes from many devices: each value is in the final state or a conflict record', async () => {
    h = await syncHarness();
    const first = await device(h, 'ann@example.org', 'dev-00000');
    const devices = [first, ...(await Promise.all([1, 2, 3, 4, 5].map((i) => sibling(first, `dev-0000${i}`))))];
    await first.push([{ mutation_id: first.mid(), entity: 'counter', entity_id: 'shared', op: 'upsert', payload: {} }]);
    // Every device sets its own field and a shared one, 10 times, all based on version 1, all at once.
    await Promise.all(
      devices.map(async (d, i) => {
        for (let n = 0; n < 10; n++) {
          const r = await d.push([{ mutation_id: d.mid(), entity: 'counter', entity_id: 'shared', op: 'patch', payload: { [`own${i}`]: n, shared: `${i}:${n}` }, base_version: 1 }]);
          expect(r.status).toBe(200);
        }
      }),
    );
    const { changes, conflicts } = await first.pullAll(null);
    const final = changes.find((c) => c.entity_id === 'shared')!.payload;
    for (let i = 0; i < devices.length; i++) expect(final[`own${i}`], `device ${i}`).toBe(9);
    // A device's own later write supersedes its earlier one; its last value is kept, as the winner or in a conflict record.
    const kept = new Set([final.shared, ...conflicts.map((c) => c.loser?.shared)]);
    for (let i = 0; i < devices.length; i++) expect(kept.has(`${i}:9`), `device ${i}'s last write`).toBe(true);
    expect(conflicts.filter((c) => !c.fields.includes('shared') || c.fields.some((f: string) => f.startsWith('own')))).toEqual([]);
    expect(changes.find((c) => c.entity_id === 'shared')!.version).toBe(1 + devices.length * 10);
  });
});

describe('sync pull', () => {
  it('a pull that only reads commits nothing to the registry’s database, so the other worker processes keep their page caches', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    await phone.push(Array.from({ length: 6 }, (_, i) => ({ mutation_id: `m${i}`, entity: 'card', entity_id: `c${i}`, op: 'upsert' as const, payload: { i } })));
    // The device's first pull makes its row, its first cursor is recorded at once: both commits.
    const first = await tablet.pull(null, { limit: 1 });
    const second = await tablet.pull(first.body.cursor, { limit: 1 });
    // PRAGMA data_version changes for a connection when another one commits to the file.
    const version = () => h!.db.db.pragma('data_version', { simple: true }) as number;
    const before = version();
    const rest = await tablet.pullAll(second.body.cursor, { limit: 1 });
    expect(rest.pages).toBe(4);
    expect(rest.changes.map((c) => c.entity_id)).toEqual(['c2', 'c3', 'c4', 'c5']);
    expect(version(), 'pages, counted against the pull limit, with cursors moving forward').toBe(before);
    // A push does commit: the watcher is not blind.
    await phone.push([{ mutation_id: 'm9', entity: 'card', entity_id: 'c9', op: 'upsert', payload: {} }]);
    expect(version()).not.toBe(before);
  });

  it('returns every change exactly once, for every page size from 1 to the number of changes', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const muts = [];
    for (let i = 0; i < 12; i++) muts.push({ mutation_id: `c${i}`, entity: i % 2 ? 'card' : 'deck', entity_id: `e${i % 7}`, op: 'upsert' as const, payload: { i } });
    muts.push({ mutation_id: 'del', entity: 'card', entity_id: 'e1', op: 'delete' as const, base_version: 1 });
    expect((await phone.push(muts)).body.results.every((r: any) => r.status === 'applied')).toBe(true);
    const whole = await phone.pullAll(null, { limit: 1000 });
    expect(whole.pages).toBe(1);
    const keys = whole.changes.map((c) => `${c.entity}/${c.entity_id}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (let limit = 1; limit <= whole.changes.length; limit++) {
      const paged = await phone.pullAll(null, { limit });
      expect(paged.changes, `limit ${limit}`).toEqual(whole.changes);
      expect(paged.pages).toBe(Math.ceil(whole.changes.length / limit));
    }
    expect(whole.changes.find((c) => c.entity_id === 'e1' && c.entity === 'card')).toMatchObject({ op: 'delete', payload: null });
  });

  it('caps a page by bytes, always sending at least one change', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const big = 'x'.repeat(3000);
    await phone.push([0, 1, 2, 3].map((i) => ({ mutation_id: `b${i}`, entity: 'note', entity_id: `n${i}`, op: 'upsert' as const, payload: { big } })));
    const paged = await phone.pullAll(null, { max_bytes: 1024 });
    expect(paged.pages).toBe(4);
    expect(paged.changes).toHaveLength(4);
  });

  it('holds a pull with wait until a push lands, then answers with it', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    const { cursor } = await tablet.pullAll(null);
    const waiting = tablet.pull(cursor, { wait: 30 });
    const before = Date.now();
    await phone.push([{ mutation_id: 'w1', entity: 'note', entity_id: 'n', op: 'upsert', payload: { t: 1 } }]);
    const r = await waiting;
    expect(r.body.changes.map((c: any) => c.payload)).toEqual([{ t: 1 }]);
    // Not the 30 s timeout: the push woke it (a generous bound; this is not a timing assertion about speed).
    expect(Date.now() - before).toBeLessThan(20_000);
  });
});
