/**
 * Export and import: export → import into an empty account → export gives the identical checksum;
 * a resumed export matches; a damaged or tampered file is refused naming its line, with nothing
 * changed; replace makes devices reset; deleting the account deletes its sync data.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Device, device, sibling, type SyncHarness, syncHarness } from './support.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function exportOf(d: Device, query = ''): Promise<{ status: number; text: string; head: string | null }> {
  const res = await fetch(`${d.h.syncUrl}/export${query}`, { headers: { authorization: `Bearer ${d.token}` } });
  return { status: res.status, text: await res.text(), head: res.headers.get('x-iqp-sync-head') };
}

function importInto(d: Device, mode: string, body: string) {
  return fetch(`${d.h.syncUrl}/import?mode=${mode}`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/x-ndjson' }, body }).then(async (r) => ({ status: r.status, body: await r.json() as any }));
}

const trailerOf = (text: string) => JSON.parse(text.trim().split('\n').at(-1)!).trailer;

async function seed(d: Device): Promise<void> {
  const muts = [];
  for (let i = 0; i < 30; i++) muts.push({ mutation_id: `s${i}`, entity: i % 3 ? 'card' : 'deck', entity_id: `id-${(i * 7) % 30}`, op: 'upsert' as const, payload: { n: i, text: `ünïcødé ${i}`, nested: { a: [i, null, true] } } });
  muts.push({ mutation_id: 'p', entity: 'card', entity_id: 'id-7', op: 'patch' as const, payload: { extra: 1 }, base_version: 1 });
  muts.push({ mutation_id: 'd', entity: 'card', entity_id: 'id-14', op: 'delete' as const, base_version: 1 });
  await d.push(muts);
}

describe('sync export and import', () => {
  it('round-trips: export, import into an empty account, export again gives the same checksum and bytes', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await seed(ann);
    const first = await exportOf(ann);
    expect(first.status).toBe(200);
    const t = trailerOf(first.text);
    expect(t).toMatchObject({ format: 'iqp-sync-export/1', count: 29 });
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    const imported = await importInto(bob, 'replace', first.text);
    expect(imported).toMatchObject({ status: 200, body: { imported: 29, mode: 'replace', sha256: t.sha256 } });
    const second = await exportOf(bob);
    expect(trailerOf(second.text).sha256).toBe(t.sha256);
    expect(second.text.split('\n').slice(0, -2)).toEqual(first.text.split('\n').slice(0, -2));
    // Bob's devices pull what was imported.
    expect((await bob.pullAll(null)).changes).toHaveLength(29);
  });

  it('resumes by offset with the same trailer, and refuses to resume once the data moved', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await seed(ann);
    const whole = await exportOf(ann);
    const lines = whole.text.split('\n');
    const rest = await exportOf(ann, `?offset=10&head=${whole.head}`);
    expect(rest.text).toBe(`${lines.slice(10).join('\n')}`);
    await ann.push([{ mutation_id: 'later', entity: 'card', entity_id: 'new', op: 'upsert', payload: {} }]);
    const moved = await exportOf(ann, `?offset=10&head=${whole.head}`);
    expect(moved.status).toBe(409);
    expect(JSON.parse(moved.text).error.code).toBe('IQP_E_SYNC_EXPORT_CHANGED');
  });

  it('refuses a damaged or tampered file naming the line, and changes nothing', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await seed(ann);
    const good = (await exportOf(ann)).text;
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    await bob.push([{ mutation_id: 'mine', entity: 'note', entity_id: 'keep', op: 'upsert', payload: { t: 'bob' } }]);
    const before = (await exportOf(bob)).text;
    const lines = good.split('\n');
    const cases: [string, string, number | null][] = [
      ['a changed payload', good.replace('ünïcødé 5', 'ünïcødé 6'), null],
      ['a dropped line', [...lines.slice(0, 3), ...lines.slice(4)].join('\n'), null],
      ['a cut-short file', good.slice(0, good.length - 40), null],
      ['no trailer', `${lines.slice(0, -2).join('\n')}\n`, null],
      ['not JSON', good.replace('{"entity"', '{entity'), 1],
      ['an extra field', good.replace('"version":', '"user_id":"x","version":'), 1],
      ['lines out of order', [lines[1], lines[0], ...lines.slice(2)].join('\n'), 2],
      ['text after the trailer', `${good}{"entity":"card"}\n`, null],
      ['an unknown trailer format', good.replace('iqp-sync-export/1', 'iqp-sync-export/9'), null],
      ['a version past 2^50', good.replace(/"version":\d+/, `"version":${2 ** 50 + 1}`), 1],
      ['an id of 257 characters', good.replace(/"entity_id":"[^"]*"/, `"entity_id":"${'\u{1F600}'.repeat(257)}"`), 1],
    ];
    for (const [what, body, line] of cases) {
      const r = await importInto(bob, 'replace', body);
      expect([r.status, r.body.error?.code], what).toEqual([422, 'IQP_E_SYNC_IMPORT_INVALID']);
      if (line !== null) expect(r.body.error.details.line, what).toBe(line);
    }
    const bad = await fetch(`${h.syncUrl}/import?mode=merge`, { method: 'POST', headers: { authorization: `Bearer ${bob.token}`, 'content-type': 'application/x-ndjson' }, body: Buffer.from([0xff, 0xfe, 0x0a]) });
    expect(bad.status).toBe(422);
    expect((await exportOf(bob)).text).toBe(before);
  });

  it('replace makes every device of the account reset; merge adds versions devices pull', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await seed(ann);
    const file = (await exportOf(ann)).text;
    const { cursor } = await ann.pullAll(null);
    await ann.push([{ mutation_id: 'gone', entity: 'note', entity_id: 'n', op: 'upsert', payload: {} }]);
    expect((await importInto(ann, 'replace', file)).status).toBe(200);
    const r = await ann.pull(cursor);
    expect(r.body.reset).toEqual({ reason: 'data_replaced' });
    const snapshot = await ann.pullAll(r.body.cursor);
    expect(snapshot.changes.some((c) => c.entity === 'note')).toBe(false);
    expect(snapshot.changes).toHaveLength(29);

    const merged = await importInto(ann, 'merge', file);
    expect(merged.body).toMatchObject({ imported: 29 });
    expect((await ann.pullAll(snapshot.cursor)).changes).toEqual([]);
  });

  it('a replace import never takes a version down: work a device queued on a later version is merged, not refused', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await ann.push([{ mutation_id: 'v1', entity: 'card', entity_id: 'x', op: 'upsert', payload: { front: 'a', back: 'b' } }]);
    const file = (await exportOf(ann)).text;
    await ann.push([
      { mutation_id: 'v2', entity: 'card', entity_id: 'x', op: 'patch', payload: { back: 'c' }, base_version: 1 },
      { mutation_id: 'v3', entity: 'card', entity_id: 'x', op: 'patch', payload: { back: 'd' }, base_version: 2 },
    ]);
    // The file has the card at version 1; the account had it at 3.
    expect((await importInto(ann, 'replace', file)).status).toBe(200);
    const line = (await exportOf(ann)).text.split('\n').map((l) => (l ? JSON.parse(l) : null)).find((l) => l?.entity_id === 'x');
    expect(line).toMatchObject({ payload: { front: 'a', back: 'b' } });
    expect(line.version).toBeGreaterThan(3);
    // A change the phone made on version 3 before it heard of the import: kept, merged against the unknown base.
    const late = await ann.push([{ mutation_id: 'late', entity: 'card', entity_id: 'x', op: 'patch', payload: { front: 'z' }, base_version: 3 }]);
    expect(late.body.results[0].status).not.toBe('rejected');
    expect(late.body.results[0].version).toBeGreaterThan(line.version);
  });

  it('imports its own export whatever the ids: lines in code point order, as the export writes them', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    // U+FFFD sorts before U+1F600 by code point (and by UTF-8 bytes), after it by UTF-16 unit.
    await ann.push(['\uFFFD', '\u{1F600}', 'a'].map((id, i) => ({ mutation_id: `u${i}`, entity: 'card', entity_id: id, op: 'upsert' as const, payload: { i } })));
    const file = (await exportOf(ann)).text;
    expect(file.split('\n').slice(0, 3).map((l) => JSON.parse(l).entity_id)).toEqual(['a', '\uFFFD', '\u{1F600}']);
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    expect(await importInto(bob, 'replace', file)).toMatchObject({ status: 200, body: { imported: 3 } });
    expect(trailerOf((await exportOf(bob)).text).sha256).toBe(trailerOf(file).sha256);
  });

  it('imports whatever push stored: a patch never grows a payload past its limit, and ids are measured the same way', async () => {
    h = await syncHarness({ entities: { card: {}, note: { max_payload_bytes: 64 } } });
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    const longId = '\u{1F600}'.repeat(256); // 256 code points, 512 UTF-16 units: as long as an id may be
    const r = await ann.push([
      { mutation_id: 'n1', entity: 'note', entity_id: 'a', op: 'upsert', payload: { text: 'x'.repeat(30) } },
      // Each patch is small; together with what the note has, the second would pass the limit.
      { mutation_id: 'n2', entity: 'note', entity_id: 'a', op: 'patch', payload: { more: 'y' } },
      { mutation_id: 'n3', entity: 'note', entity_id: 'a', op: 'patch', payload: { most: 'z'.repeat(30) } },
      { mutation_id: 'c1', entity: 'card', entity_id: longId, op: 'upsert', payload: { front: 'smile' } },
    ]);
    expect(r.body.results.map((x: any) => [x.status, x.error?.code ?? null])).toEqual([
      ['applied', null],
      ['applied', null],
      ['rejected', 'IQP_E_SYNC_PAYLOAD_TOO_LARGE'],
      ['applied', null],
    ]);
    expect(r.body.results[2]).toMatchObject({ version: 2, error: { field: 'payload' } });
    const file = (await exportOf(ann)).text;
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    expect(await importInto(bob, 'replace', file)).toMatchObject({ status: 200, body: { imported: 2 } });
    expect(trailerOf((await exportOf(bob)).text).sha256).toBe(trailerOf(file).sha256);
  });

  it('an export the account changed under is cut short, never finished with a trailer over a mix of states', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await seed(ann);
    const lines = h.sync.exportLines(ann.userId, 'cli:test')[Symbol.asyncIterator]();
    const first = await lines.next();
    expect(first.done).toBe(false);
    // A push lands while the export is being written.
    await ann.push([{ mutation_id: 'during', entity: 'card', entity_id: 'id-1', op: 'upsert', payload: { n: 'new' } }]);
    await expect(lines.next()).rejects.toMatchObject({ code: 'IQP_E_SYNC_EXPORT_CHANGED' });
    // Left alone, it finishes with the trailer's head equal to the one the export started at.
    const whole = await exportOf(ann);
    expect(String(trailerOf(whole.text).head)).toBe(whole.head);
  });

  it('never hands out a version a device saw again: an id a replace removed, made anew, continues above it', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    const tablet = await sibling(ann, 'ann-tablet-1');
    await ann.push([
      { mutation_id: 'x1', entity: 'card', entity_id: 'x', op: 'upsert', payload: { front: 'a' } },
      { mutation_id: 'x2', entity: 'card', entity_id: 'x', op: 'patch', payload: { front: 'b' }, base_version: 1 },
      { mutation_id: 'x3', entity: 'card', entity_id: 'x', op: 'patch', payload: { front: 'c' }, base_version: 2 },
    ]);
    expect((await tablet.pullAll(null)).changes).toMatchObject([{ entity_id: 'x', version: 3 }]);
    // A backup without the card replaces the account's data while the tablet is away.
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    await bob.push([{ mutation_id: 'y1', entity: 'card', entity_id: 'y', op: 'upsert', payload: { front: 'y' } }]);
    expect((await importInto(ann, 'replace', (await exportOf(bob)).text)).status).toBe(200);
    const anew = await ann.push([{ mutation_id: 'x4', entity: 'card', entity_id: 'x', op: 'upsert', payload: { front: 'new' } }]);
    expect(anew.body.results[0]).toMatchObject({ status: 'applied' });
    expect(anew.body.results[0].version).toBeGreaterThan(3);
    // The tablet's edit of the version it saw is weighed against the new card, not refused.
    const late = await tablet.push([{ mutation_id: 't1', entity: 'card', entity_id: 'x', op: 'patch', payload: { back: 'tablet' }, base_version: 3 }]);
    expect(late.body.results[0].status).not.toBe('rejected');
  });

  it('never hands out a version a device saw again: an imported id’s tombstone compacted away, made anew, continues above it', async () => {
    h = await syncHarness({ retention: { max_days: 30, compact_interval_s: 0 } });
    const bob = await device(h, 'bob@example.org', 'bob-phone-1');
    const edits = [{ mutation_id: 'y0', entity: 'card', entity_id: 'y', op: 'upsert' as const, payload: { n: 0 } }];
    for (let i = 1; i < 10; i++) edits.push({ mutation_id: `y${i}`, entity: 'card', entity_id: 'y', op: 'upsert', payload: { n: i }, base_version: i } as (typeof edits)[0]);
    await bob.push(edits);
    const file = (await exportOf(bob)).text;
    expect(JSON.parse(file.split('\n')[0]!)).toMatchObject({ entity_id: 'y', version: 10 });
    // Ann's account, nearly empty, takes the card at version 10 from the file, then deletes it.
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    expect((await importInto(ann, 'merge', file)).status).toBe(200);
    const gone = await ann.push([{ mutation_id: 'd', entity: 'card', entity_id: 'y', op: 'delete', base_version: 10 }]);
    expect(gone.body.results[0]).toMatchObject({ status: 'applied', version: 11 });
    await ann.pull((await ann.pullAll(null)).cursor);
    expect((await h.sync.compact()).tombstones).toBe(1);
    const anew = await ann.push([{ mutation_id: 'y-again', entity: 'card', entity_id: 'y', op: 'upsert', payload: { n: 'again' } }]);
    expect(anew.body.results[0].version).toBeGreaterThan(11);
  });

  it('deleting the account deletes its sync data', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await seed(ann);
    const count = () => h!.db.db.prepare("SELECT (SELECT COUNT(*) FROM sync_rows) + (SELECT COUNT(*) FROM sync_versions) + (SELECT COUNT(*) FROM sync_mutations) + (SELECT COUNT(*) FROM sync_devices) + (SELECT COUNT(*) FROM sync_users) AS n").get() as { n: number };
    expect(count().n).toBeGreaterThan(0);
    const file = (await exportOf(ann)).text;
    await h.admin.deleteUser('ann@example.org', 'cli:test');
    expect(count()).toEqual({ n: 0 });
    // Ann's access token is still in date (a signature check alone accepts it), but nothing it does
    // brings sync data back for an account that is gone: pushes, pulls, a new device, an import.
    const tablet = new Device(h, ann.token, ann.userId, 'ann-tablet-1');
    const tries = [
      await ann.push([{ mutation_id: ann.mid(), entity: 'card', entity_id: 'after', op: 'upsert', payload: { front: 'late' } }]),
      await ann.pull(null),
      await tablet.pull(null),
      await tablet.push([{ mutation_id: tablet.mid(), entity: 'card', entity_id: 'after', op: 'upsert', payload: { front: 'late' } }]),
      await importInto(ann, 'merge', file),
    ];
    for (const r of tries) expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status: 401, code: 'IQP_E_TOKEN_INVALID' });
    expect(count()).toEqual({ n: 0 });
  });

  it('a disabled account syncs nothing new until it is enabled again', async () => {
    h = await syncHarness();
    const ann = await device(h, 'ann@example.org', 'ann-phone-1');
    await h.admin.setDisabled('ann@example.org', true, 'cli:test');
    const pushed = await ann.push([{ mutation_id: ann.mid(), entity: 'card', entity_id: 'c1', op: 'upsert', payload: { front: 'a' } }]);
    expect({ status: pushed.status, code: pushed.body.error?.code }).toEqual({ status: 401, code: 'IQP_E_TOKEN_INVALID' });
    await h.admin.setDisabled('ann@example.org', false, 'cli:test');
    expect((await ann.push([{ mutation_id: ann.mid(), entity: 'card', entity_id: 'c1', op: 'upsert', payload: { front: 'a' } }])).status).toBe(200);
  });
});
