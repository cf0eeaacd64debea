/**
 * The client against the real registry (auth and sync plugins on 127.0.0.1, temp data dir):
 * devices converge, conflicts and rejections reach the app, tokens refresh on a real expiry,
 * resets delete what the server no longer has, and the loop long-polls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type SyncHarness, syncHarness } from '../sync/support.js';
import { app, payloads, serverRows } from './app.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const ANN = 'ann@example.org';

describe('sync client end to end', () => {
  it('two devices edit offline, sync, and converge on what the server holds', async () => {
    h = await syncHarness();
    const phone = await app(h, ANN, 'phone-0001');
    const tablet = await app(h, ANN, 'tablet-0001');
    for (let i = 0; i < 30; i++) await phone.edit('card', `p${i}`, 'upsert', { front: `phone ${i}`, back: 'b' });
    for (let i = 0; i < 5; i++) await tablet.edit('card', `t${i}`, 'upsert', { front: `tablet ${i}` });
    await phone.edit('card', 'p3', 'delete');
    await phone.edit('card', 'p4', 'patch', { back: 'patched' });
    expect(await phone.client.pendingCount()).toBe(32);
    await phone.client.syncOnce();
    await tablet.client.syncOnce();
    await tablet.edit('card', 'p5', 'patch', { back: 'from tablet' });
    await tablet.client.syncOnce();
    await phone.client.syncOnce();
    const server = await serverRows(h, ANN, 'check-0001');
    expect(server.size).toBe(34);
    expect(server.get('card/p4')!.payload).toEqual({ front: 'phone 4', back: 'patched' });
    expect(server.get('card/p5')!.payload).toEqual({ front: 'phone 5', back: 'from tablet' });
    expect(server.has('card/p3')).toBe(false);
    expect(phone.rows).toEqual(payloads(server));
    expect(tablet.rows).toEqual(payloads(server));
    expect(await phone.client.knownVersion('card', 'p5')).toBe(server.get('card/p5')!.version);
    expect(phone.rejected).toEqual([]);
  });

  it('a field both devices changed is a conflict the app hears of, and both converge on the winner', async () => {
    h = await syncHarness();
    const phone = await app(h, ANN, 'phone-0001');
    const tablet = await app(h, ANN, 'tablet-0001');
    await phone.edit('card', '12', 'upsert', { front: 'ab', back: 'b' });
    await phone.client.syncOnce();
    await tablet.client.syncOnce();
    await phone.edit('card', '12', 'patch', { front: 'abc' });
    await tablet.edit('card', '12', 'patch', { front: 'abd' });
    await phone.client.syncOnce();
    await tablet.client.syncOnce();
    await phone.client.syncOnce();
    expect(phone.conflicts).toHaveLength(1);
    expect(phone.conflicts[0]).toMatchObject({ entity: 'card', entity_id: '12', fields: ['front'], winner: { front: 'abd' }, loser: { front: 'abc' }, loser_device: 'phone-0001' });
    expect(phone.rows.get('card/12')).toEqual({ front: 'abd', back: 'b' });
    expect(tablet.rows.get('card/12')).toEqual({ front: 'abd', back: 'b' });
  });

  it('payloads the server refuses are reported as rejected and leave the queue', async () => {
    h = await syncHarness({ entities: { card: { schema: { type: 'object', required: ['front'], properties: { front: { type: 'string' } } } } } });
    const phone = await app(h, ANN, 'phone-0001');
    await phone.edit('card', '1', 'upsert', { front: 'ok' });
    await phone.edit('card', '2', 'upsert', { front: 7 });
    await phone.edit('note', '1', 'upsert', { text: 'no such entity' });
    await phone.client.syncOnce();
    expect(phone.rejected.map((r) => [r.mutation.entity, r.mutation.entity_id, r.result.error?.code])).toEqual([
      ['card', '2', 'IQP_E_SYNC_PAYLOAD_INVALID'],
      ['note', '1', 'IQP_E_SYNC_ENTITY_UNKNOWN'],
    ]);
    expect(await phone.client.pendingCount()).toBe(0);
    await phone.client.syncOnce();
    expect(phone.sent.filter((s) => s.path === '/v1/sync/push')).toHaveLength(1);
  });

  it('an access token that expires on the server is refreshed once and the same push retried', async () => {
    h = await syncHarness();
    // The app's own clock does not see the expiry coming; the server's does.
    const phone = await app(h, ANN, 'phone-0001', { tokenNow: () => 0 });
    const before = await phone.store.get('auth/refresh_token');
    await phone.edit('card', '1', 'upsert', { front: 'a' });
    h.clock.advance(3600_000);
    await phone.client.syncOnce();
    const pushes = phone.sent.filter((s) => s.path === '/v1/sync/push');
    expect(pushes).toHaveLength(2);
    expect(pushes[1]!.body).toEqual(pushes[0]!.body);
    expect(await phone.client.pendingCount()).toBe(0);
    // The refresh token rotated, and the rotated one is what the store keeps.
    expect(await phone.store.get('auth/refresh_token')).not.toBe(before);
  });

  it('after an import replaces the data, the reset deletes what is gone and keeps unpushed work', async () => {
    h = await syncHarness();
    const phone = await app(h, ANN, 'phone-0001');
    for (const id of ['1', '2', '3', '4', '5']) await phone.edit('card', id, 'upsert', { front: id });
    await phone.client.syncOnce();
    const userId = (await h.admin.listUsers()).find((u) => u.email === ANN)!.id;
    let text = '';
    for await (const chunk of h.sync.exportLines(userId, 'cli:test')) text += chunk;
    const lines = text.split('\n').filter((l) => l !== '').map((l) => `${l}\n`);
    // Keep cards 1 and 2, add 9: the export format, re-checksummed.
    const { createHash } = await import('node:crypto');
    const data = lines.filter((l) => !l.includes('"trailer"')).filter((l) => /"entity_id":"[12]"/.test(l));
    data.push(`${JSON.stringify({ entity: 'card', entity_id: '9', version: 1, payload: { front: '9' } })}\n`);
    const sha256 = createHash('sha256').update(data.join('')).digest('hex');
    const file = [...data, `${JSON.stringify({ trailer: { format: 'iqp-sync-export/1', count: data.length, head: 0, sha256 } })}\n`];
    await h.sync.importFile(userId, 'replace', (async function* () {
      yield* file;
    })(), 'cli:test');
    await phone.edit('card', '4', 'patch', { back: 'unpushed' });
    await phone.client.syncOnce();
    const pulls = phone.sent.filter((s) => s.path === '/v1/sync/pull');
    expect(pulls.length).toBeGreaterThanOrEqual(3);
    expect([...phone.rows.keys()].sort()).toEqual(['card/1', 'card/2', 'card/4', 'card/9']);
    const server = await serverRows(h, ANN, 'check-0001');
    expect([...server.keys()].sort()).toEqual(['card/1', 'card/2', 'card/4', 'card/9']);
    expect(server.get('card/4')!.payload).toMatchObject({ back: 'unpushed' });
  });

  it('an app on a schema version the server does not accept is blocked, with its queue kept', async () => {
    h = await syncHarness();
    const phone = await app(h, ANN, 'phone-0001', { schemaVersion: 2 });
    await phone.edit('card', '1', 'upsert', { front: 'a' });
    await expect(phone.client.syncOnce()).rejects.toMatchObject({ kind: 'blocked', code: 'IQP_E_SYNC_SCHEMA_VERSION' });
    expect(await phone.client.pendingCount()).toBe(1);
  });

  it('the loop long-polls at head and hears another device’s change on that poll', async () => {
    h = await syncHarness();
    const tablet = await app(h, ANN, 'tablet-0001', { longPollS: 20 });
    const phone = await app(h, ANN, 'phone-0001');
    tablet.client.start();
    const polling = () => tablet.sent.some((s) => s.path === '/v1/sync/pull' && s.body.wait === 20);
    await tablet.when(polling);
    await phone.edit('card', '1', 'upsert', { front: 'live' });
    await phone.client.syncOnce();
    await tablet.when(() => tablet.rows.has('card/1'));
    await tablet.client.stop();
    expect(tablet.rows.get('card/1')).toEqual({ front: 'live' });
    // The change came back on the long poll itself: no other pull went out before it arrived.
    const pulls = tablet.sent.filter((s) => s.path === '/v1/sync/pull');
    expect(pulls.slice(0, 2).map((p) => p.body.wait)).toEqual([undefined, 20]);
  });
});
