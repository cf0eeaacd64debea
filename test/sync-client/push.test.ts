/** Queueing and pushing: the rules of the local queue, against a scripted network. */
import { describe, expect, it } from 'vitest';
import { SyncError } from '../../src/sync-client/errors.js';
import { applyAll, error, json, offline, page } from './fakes.js';
import { rig } from './harness.js';

const card = (id: string, front = 'x') => ({ entity: 'card', entity_id: id, op: 'upsert' as const, payload: { front } });

describe('mutate', () => {
  it('commits the mutation to the store before any network call', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', () => {
      throw new Error('no network call may happen during mutate');
    });
    const id = await r.client.mutate(card('1'));
    expect(r.net.sent).toEqual([]);
    const queue = await r.store.scan('q/');
    expect(queue).toHaveLength(1);
    expect(JSON.parse(queue[0]![1])).toMatchObject({ mutation_id: id, entity: 'card', entity_id: '1', op: 'upsert', payload: { front: 'x' } });
    expect(await r.client.pendingCount()).toBe(1);
  });

  it('gives ids that never repeat for this store, across restarts and concurrent calls', async () => {
    const r = rig();
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => r.client.mutate(card(String(i)))));
    const later = r.restart();
    for (let i = 0; i < 50; i++) ids.push(await later.mutate(card(`b${i}`)));
    expect(new Set(ids).size).toBe(250);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    // Queue order is the order mutate() was called in.
    const queued = (await r.store.scan('q/')).map(([, v]) => JSON.parse(v).mutation_id);
    expect(queued).toEqual(ids);
  });

  it('refuses what the server could never accept, and queues nothing', async () => {
    const r = rig();
    const bad = [
      { entity: 'Card', entity_id: '1', op: 'upsert', payload: {} },
      { entity: 'card', entity_id: '', op: 'upsert', payload: {} },
      { entity: 'card', entity_id: 'a\nb', op: 'upsert', payload: {} },
      { entity: 'card', entity_id: 'x'.repeat(257), op: 'upsert', payload: {} },
      { entity: 'card', entity_id: '1', op: 'put', payload: {} },
      { entity: 'card', entity_id: '1', op: 'upsert' },
      { entity: 'card', entity_id: '1', op: 'patch', payload: [1] },
      { entity: 'card', entity_id: '1', op: 'delete', payload: { a: 1 } },
      { entity: 'card', entity_id: '1', op: 'upsert', payload: { n: 10n } },
    ];
    for (const m of bad) await expect(r.client.mutate(m as any)).rejects.toMatchObject({ code: 'IQP_CLIENT_INVALID_MUTATION' });
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('refuses a payload whose JSON is not an object (a Date, an object whose toJSON answers a string), and queues nothing', async () => {
    const r = rig();
    for (const payload of [new Date(0), { toJSON: () => 'text' }, { toJSON: () => [1] }, { toJSON: () => null }]) {
      await expect(r.client.mutate({ entity: 'card', entity_id: '1', op: 'upsert', payload: payload as any })).rejects.toMatchObject({ code: 'IQP_CLIENT_INVALID_MUTATION' });
    }
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('takes every id the server takes: 256 code points outside the BMP, C1 characters, DEL only refused', async () => {
    const r = rig();
    for (const id of ['\u{1F600}'.repeat(256), 'a\u0085b', '\u009f', 'ünï ćødé']) await r.client.mutate({ entity: 'card', entity_id: id, op: 'delete' });
    expect(await r.client.pendingCount()).toBe(4);
    for (const id of ['a\u007fb', '\u{1F600}'.repeat(257)]) await expect(r.client.mutate({ entity: 'card', entity_id: id, op: 'delete' })).rejects.toMatchObject({ code: 'IQP_CLIENT_INVALID_MUTATION' });
  });

  it('fixes base_version from what the device last saw, at the time of the mutation', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', applyAll(7)).on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await r.client.syncOnce();
    expect(await r.client.knownVersion('card', '1')).toBe(7);
    await r.client.mutate(card('1', 'y'));
    await r.client.mutate(card('1', 'z'));
    await r.client.mutate(card('2'));
    r.net.set('/v1/sync/push', applyAll(8));
    await r.client.syncOnce();
    const sent = r.net.requests('/v1/sync/push')[1]!.body.mutations;
    // Both offline edits carry the version seen before them (the server counts its own as seen).
    expect(sent.map((m: any) => [m.entity_id, m.base_version])).toEqual([
      ['1', 7],
      ['1', 7],
      ['2', undefined],
    ]);
  });
});

describe('new SyncClient', () => {
  it('refuses options the server would answer 400 to on every push, naming the option', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ deviceName: '' }, /deviceName/],
      [{ deviceName: 'x'.repeat(101) }, /deviceName/],
      [{ deviceName: 7 }, /deviceName/],
      [{ schemaVersion: 0 }, /schemaVersion/],
      [{ schemaVersion: 1.5 }, /schemaVersion/],
      [{ schemaVersion: -2 }, /schemaVersion/],
    ];
    for (const [options, message] of bad) expect(() => rig(options as any)).toThrow(message);
    // Lengths count code points, as the server does: 100 emoji are 100 characters.
    expect(() => rig({ deviceName: '\u{1F4F1}'.repeat(100), schemaVersion: 3 })).not.toThrow();
  });
});

describe('push', () => {
  it('sends the queue oldest first in batches of pushBatch, then pulls', async () => {
    const r = rig({ pushBatch: 3 });
    r.net.on('/v1/sync/push', applyAll()).on('/v1/sync/pull', () => page([], 'c1'));
    for (let i = 0; i < 7; i++) await r.client.mutate(card(String(i)));
    await r.client.syncOnce();
    expect(r.net.sent.map((s) => `${s.path}:${s.body.mutations?.length ?? ''}`)).toEqual(['/v1/sync/push:3', '/v1/sync/push:3', '/v1/sync/push:1', '/v1/sync/pull:']);
    expect(r.net.requests('/v1/sync/push').flatMap((s) => s.body.mutations.map((m: any) => m.entity_id))).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    const first = r.net.requests('/v1/sync/push')[0]!.body;
    expect(first).toMatchObject({ device_id: 'dev-test-0001', schema_version: 1 });
    expect(r.net.sent[0]!.headers['authorization']).toBe('Bearer tok-1');
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('removes a batch from the queue and records its versions in one store write', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', applyAll(4)).on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await r.client.mutate(card('2'));
    const before = r.store.writes.length;
    await r.client.syncOnce();
    const pushWrites = r.store.writes.slice(before).filter((w) => (w.del ?? []).some((k) => k.startsWith('q/')));
    expect(pushWrites).toHaveLength(1);
    expect(pushWrites[0]!.del!.filter((k) => k.startsWith('q/'))).toHaveLength(2);
    expect(pushWrites[0]!.set).toMatchObject({ 'v/card/1': '{"v":4}', 'v/card/2': '{"v":5}' });
  });

  it('after a crash between the server applying and the client recording, replays the same mutations', async () => {
    const r = rig();
    let pushes = 0;
    const original: any[] = [];
    r.net.on('/v1/sync/push', (req) => {
      pushes++;
      // The server's rule: a replay (same ids, same content) answers exactly the original results.
      if (original.length === 0) original.push(...req.body.mutations.map((m: any, i: number) => ({ mutation_id: m.mutation_id, status: 'applied', entity: m.entity, entity_id: m.entity_id, version: 1, seq: i + 1 })));
      return json(200, { results: original, head: 2 });
    });
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await r.client.mutate(card('2'));
    r.store.failNext = (b) => (b.del ?? []).some((k) => k.startsWith('q/'));
    await expect(r.client.syncOnce()).rejects.toThrow(/simulated crash/);
    expect(await r.client.pendingCount()).toBe(2);
    const restarted = r.restart();
    await restarted.syncOnce();
    const [a, b] = r.net.requests('/v1/sync/push');
    expect(b!.body.mutations).toEqual(a!.body.mutations);
    expect(pushes).toBe(2);
    expect(await restarted.pendingCount()).toBe(0);
    expect(await restarted.knownVersion('card', '2')).toBe(1);
  });

  it('takes rejected mutations off the queue, reports them, and never sends them again', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', (req) =>
      json(200, {
        results: req.body.mutations.map((m: any, i: number) =>
          m.entity_id === 'bad'
            ? { mutation_id: m.mutation_id, status: 'rejected', entity: m.entity, entity_id: m.entity_id, version: 3, error: { code: 'IQP_E_SYNC_PAYLOAD_INVALID', message: 'no', field: 'front' } }
            : { mutation_id: m.mutation_id, status: 'applied', entity: m.entity, entity_id: m.entity_id, version: 1, seq: i + 1 },
        ),
        head: 2,
      }),
    );
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('ok'));
    await r.client.mutate(card('bad'));
    await r.client.syncOnce();
    expect(r.rejected.map((x) => [x.mutation.entity_id, x.result.error?.code])).toEqual([['bad', 'IQP_E_SYNC_PAYLOAD_INVALID']]);
    expect(await r.client.pendingCount()).toBe(0);
    // The rejected one's version is not recorded: the app never saw that state.
    expect(await r.client.knownVersion('card', 'bad')).toBeUndefined();
    await r.client.syncOnce();
    expect(r.net.requests('/v1/sync/push')).toHaveLength(1);
  });

  it('IQP_E_SYNC_BASE_VERSION without a version re-queues on base 0; one for a mutation already on base 0 is an ordinary rejection, not a loop', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', applyAll(5)).on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await r.client.syncOnce();
    await r.client.mutate(card('1', 'on 5'));
    await r.client.mutate(card('2', 'new'));
    const baseVersion = (m: any) => ({ mutation_id: m.mutation_id, status: 'rejected', entity: m.entity, entity_id: m.entity_id, error: { code: 'IQP_E_SYNC_BASE_VERSION', message: 'no' } });
    r.net.set('/v1/sync/push', (req) => json(200, { results: req.body.mutations.map(baseVersion), head: 9 }));
    await r.client.syncOnce();
    const pushes = r.net.requests('/v1/sync/push').slice(1).map((q) => q.body.mutations.map((m: any) => `${m.entity_id}@${m.base_version ?? 0}`).join());
    expect(pushes).toEqual(['1@5,2@0', '1@0']);
    expect(r.rejected.map((x) => `${x.mutation.entity_id}@${x.mutation.base_version ?? 0}`)).toEqual(['2@0', '1@0']);
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('halves the batch on 413 and on 422 IQP_E_SYNC_PUSH_TOO_LARGE until the server takes it', async () => {
    for (const [status, code] of [
      [413, 'IQP_E_UPLOAD_TOO_LARGE'],
      [422, 'IQP_E_SYNC_PUSH_TOO_LARGE'],
    ] as const) {
      const r = rig({ pushBatch: 8 });
      const ok = applyAll();
      r.net.on('/v1/sync/push', (req) => (req.body.mutations.length > 2 ? error(status, code) : ok(req)));
      r.net.on('/v1/sync/pull', () => page([], 'c1'));
      for (let i = 0; i < 7; i++) await r.client.mutate(card(String(i)));
      await r.client.syncOnce();
      expect(r.net.requests('/v1/sync/push').map((s) => s.body.mutations.length)).toEqual([7, 3, 1, 1, 1, 1, 1, 1, 1]);
      expect(await r.client.pendingCount()).toBe(0);
    }
  });

  it('rejects locally a single mutation the server refuses as too large, instead of sticking on it', async () => {
    const r = rig();
    const ok = applyAll();
    r.net.on('/v1/sync/push', (req) => (req.body.mutations.some((m: any) => m.entity_id === 'huge') ? error(413, 'IQP_E_UPLOAD_TOO_LARGE') : ok(req)));
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('a'));
    await r.client.mutate(card('huge'));
    await r.client.mutate(card('b'));
    await r.client.syncOnce();
    expect(r.rejected.map((x) => [x.mutation.entity_id, x.result.error?.code])).toEqual([['huge', 'IQP_E_UPLOAD_TOO_LARGE']]);
    expect(await r.client.knownVersion('card', 'b')).toBeDefined();
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('a push answered 400 for one mutation rejects that one locally and pushes the rest, instead of retrying for ever', async () => {
    const r = rig();
    const ok = applyAll();
    // What the server says of a mutation off the protocol's shapes (one queued by an older app, say): nothing applied.
    r.net.on('/v1/sync/push', (req) => {
      const i = req.body.mutations.findIndex((m: any) => m.entity_id === 'bad');
      if (i < 0) return ok(req);
      return json(400, { error: { code: 'IQP_E_INVALID_REQUEST', message: `body.mutations.${i}.entity_id must match pattern`, details: { field: `body.mutations.${i}.entity_id`, rule: 'pattern' } } });
    });
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('a'));
    await r.client.mutate(card('bad'));
    await r.client.mutate(card('b'));
    await r.client.syncOnce();
    expect(r.rejected.map((x) => [x.mutation.entity_id, x.result.status, x.result.error?.code, x.result.error?.field])).toEqual([['bad', 'rejected', 'IQP_E_INVALID_REQUEST', 'entity_id']]);
    expect(await r.client.pendingCount()).toBe(0);
    expect(await r.client.knownVersion('card', 'b')).toBeDefined();
    expect(await r.client.knownVersion('card', 'bad')).toBeUndefined();
    expect(r.net.requests('/v1/sync/push').map((q) => q.body.mutations.map((m: any) => m.entity_id).join())).toEqual(['a,bad,b', 'a,b']);
  });

  it('a push answered 400 for the request as a whole stops syncing (blocked), keeping the queue, rather than sending it again', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', () => json(400, { error: { code: 'IQP_E_INVALID_REQUEST', message: 'body.device_name is too long', details: { field: 'body.device_name' } } }));
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'blocked', code: 'IQP_E_INVALID_REQUEST', status: 400 });
    r.client.start();
    for (let i = 0; i < 200 && r.client.status !== 'blocked'; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.client.status).toBe('blocked');
    expect(r.net.requests('/v1/sync/push')).toHaveLength(2);
    expect(await r.client.pendingCount()).toBe(1);
    expect(r.rejected).toEqual([]);
    await r.client.stop();
  });

  it('refuses an answer that does not match the batch, and keeps the queue', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', () => json(200, { results: [], head: 0 }));
    await r.client.mutate(card('1'));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ code: 'IQP_CLIENT_BAD_RESPONSE' });
    expect(await r.client.pendingCount()).toBe(1);
  });

  it('stops on IQP_E_SYNC_SCHEMA_VERSION with kind blocked, keeping the queue', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', () => error(422, 'IQP_E_SYNC_SCHEMA_VERSION'));
    await r.client.mutate(card('1'));
    const err = await r.client.syncOnce().catch((e) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ kind: 'blocked', code: 'IQP_E_SYNC_SCHEMA_VERSION' });
    expect(r.net.sent).toHaveLength(1);
    expect(await r.client.pendingCount()).toBe(1);
  });

  it('network errors leave the queue as it was and are retried with the same mutations', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', offline, offline, applyAll());
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await r.client.syncOnce();
    const bodies = r.net.requests('/v1/sync/push').map((s) => JSON.stringify(s.body));
    expect(bodies).toHaveLength(3);
    expect(new Set(bodies).size).toBe(1);
  });
});
