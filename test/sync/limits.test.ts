/**
 * What the sync config allows, and every refusal with its code: unknown entities, schema
 * violations naming the field, payload/push/body sizes, schema versions and upgrades of older
 * apps' payloads, rate limits with Retry-After, expired tokens mid-sync, unverified accounts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { post } from '../auth/support.js';
import { device, sibling, type SyncHarness, syncHarness } from './support.js';

let h: SyncHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const CARD_SCHEMA = { type: 'object', required: ['front'], properties: { front: { type: 'string', maxLength: 100 }, stars: { type: 'integer', minimum: 0 } } };

const CONFIG = {
  entities: {
    card: { label: 'Card', schema: CARD_SCHEMA, upgrades: [{ from: 1, rename: { question: 'front' } }, { from: 2, set: { stars: 0 }, remove: ['legacy'] }] },
    note: { max_payload_bytes: 64 },
  },
  schema_versions: { min: 1, max: 3 },
  max_push_mutations: 5,
  max_push_bytes: 4096,
};

describe('sync limits and entity rules', () => {
  it('rejects a mutation the config refuses, naming why, and still applies the rest of the push', async () => {
    h = await syncHarness(CONFIG);
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const r = await phone.push(
      [
        { mutation_id: '1', entity: 'card', entity_id: 'a', op: 'upsert', payload: { front: 'ok', extra: { kept: true } } },
        { mutation_id: '2', entity: 'deck', entity_id: 'a', op: 'upsert', payload: {} },
        { mutation_id: '3', entity: 'card', entity_id: 'b', op: 'upsert', payload: { front: 7 } },
        { mutation_id: '4', entity: 'note', entity_id: 'a', op: 'upsert', payload: { text: 'x'.repeat(80) } },
        { mutation_id: '5', entity: 'card', entity_id: 'a', op: 'patch', payload: { stars: -1 }, base_version: 1 },
      ],
      { schema_version: 3 },
    );
    expect(r.status).toBe(200);
    expect(r.body.results.map((x: any) => [x.status, x.error?.code ?? null, x.error?.field ?? null])).toEqual([
      ['applied', null, null],
      ['rejected', 'IQP_E_SYNC_ENTITY_UNKNOWN', 'entity'],
      ['rejected', 'IQP_E_SYNC_PAYLOAD_INVALID', 'payload.front'],
      ['rejected', 'IQP_E_SYNC_PAYLOAD_TOO_LARGE', 'payload'],
      ['rejected', 'IQP_E_SYNC_PAYLOAD_INVALID', 'payload.stars'],
    ]);
    expect(r.body.results[4].version).toBe(1);
    // Unknown fields are kept, not dropped.
    expect((await phone.pullAll(null)).changes).toEqual([{ entity: 'card', entity_id: 'a', op: 'upsert', payload: { front: 'ok', extra: { kept: true } }, version: 1, seq: 1 }]);
  });

  it('refuses whole pushes that are too big, or from an app outside the schema range, with nothing written', async () => {
    h = await syncHarness(CONFIG);
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const one = (i: number) => ({ mutation_id: `m${i}`, entity: 'card', entity_id: `c${i}`, op: 'upsert' as const, payload: { front: 'x' } });
    const tooMany = await phone.push([0, 1, 2, 3, 4, 5].map(one), { schema_version: 3 });
    expect([tooMany.status, tooMany.body.error.code]).toEqual([422, 'IQP_E_SYNC_PUSH_TOO_LARGE']);
    const tooBig = await phone.push([{ ...one(0), payload: { front: 'x', pad: 'y'.repeat(5000) } }], { schema_version: 3 });
    expect([tooBig.status, tooBig.body.error.code]).toEqual([413, 'IQP_E_UPLOAD_TOO_LARGE']);
    for (const v of [0, 4]) {
      const r = await phone.push([one(0)], { schema_version: v });
      expect(r.status, `schema_version ${v}`).toBe(v === 0 ? 400 : 422);
      if (v === 4) expect(r.body.error).toMatchObject({ code: 'IQP_E_SYNC_SCHEMA_VERSION', details: { min: 1, max: 3 } });
    }
    expect((await phone.pullAll(null)).changes).toEqual([]);
  });

  it('upgrades payloads from older apps through the configured steps', async () => {
    h = await syncHarness(CONFIG);
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const v1 = await phone.push([{ mutation_id: 'old', entity: 'card', entity_id: 'a', op: 'upsert', payload: { question: 'q?', legacy: 1 } }], { schema_version: 1 });
    expect(v1.body.results[0].status).toBe('applied');
    const v2 = await phone.push([{ mutation_id: 'mid', entity: 'card', entity_id: 'b', op: 'upsert', payload: { front: 'f', legacy: 1, stars: 4 } }], { schema_version: 2 });
    expect(v2.body.results[0].status).toBe('applied');
    expect((await phone.pullAll(null)).changes.map((c) => c.payload)).toEqual([
      { front: 'q?', stars: 0 },
      { front: 'f', stars: 4 },
    ]);
  });

  it('upgrades a patch from an older app by renaming and removing fields only: a default never overwrites what the entity has', async () => {
    h = await syncHarness(CONFIG);
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    await phone.push([{ mutation_id: 'new', entity: 'card', entity_id: 'c', op: 'upsert', payload: { front: 'f', stars: 5 } }], { schema_version: 3 });
    const old = await phone.push([{ mutation_id: 'old', entity: 'card', entity_id: 'c', op: 'patch', payload: { question: 'q2', legacy: 1 }, base_version: 1 }], { schema_version: 1 });
    expect(old.body.results[0].status).toBe('applied');
    expect((await phone.pullAll(null)).changes.map((c) => c.payload)).toEqual([{ front: 'q2', stars: 5 }]);
  });

  it('holds a payload kept by a conflict resolution to the entity’s size limit, leaving the conflict open', async () => {
    h = await syncHarness(CONFIG);
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const tablet = await sibling(phone, 'tablet-0001');
    await phone.push([{ mutation_id: 'n1', entity: 'note', entity_id: 'n', op: 'upsert', payload: { t: 'base' } }]);
    await phone.push([{ mutation_id: 'n2', entity: 'note', entity_id: 'n', op: 'patch', payload: { t: 'phone' }, base_version: 1 }]);
    const clash = await tablet.push([{ mutation_id: 'n3', entity: 'note', entity_id: 'n', op: 'patch', payload: { t: 'tablet' }, base_version: 1 }]);
    const id = clash.body.results[0].conflict_id as string;
    const big = await post(`${h.syncUrl}/conflicts/${id}/resolve`, { device_id: phone.id, keep: { t: 'x'.repeat(100) } }, phone.token);
    expect([big.status, big.body.error.code, big.body.error.details]).toEqual([422, 'IQP_E_SYNC_PAYLOAD_TOO_LARGE', { field: 'body.keep' }]);
    const open = await post(`${h.syncUrl}/conflicts?status=open`, undefined, phone.token, 'GET');
    expect(open.body.conflicts.map((c: { id: string }) => c.id)).toEqual([id]);
  });

  it('answers 429 with Retry-After once an account spends its push budget', async () => {
    h = await syncHarness({ rate_limits: { push_per_user: { points: 2, duration_s: 60 }, pull_per_user: { points: 100, duration_s: 60 } } });
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const push = () => phone.push([{ mutation_id: phone.mid(), entity: 'note', entity_id: 'n', op: 'upsert', payload: {} }]);
    expect((await push()).status).toBe(200);
    expect((await push()).status).toBe(200);
    const limited = await push();
    expect([limited.status, limited.body.error.code]).toEqual([429, 'IQP_E_RATE_LIMITED']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('counts every push against the budget, refused ones too (another account\'s device, a schema version out of range)', async () => {
    h = await syncHarness({ ...CONFIG, rate_limits: { push_per_user: { points: 3, duration_s: 60 }, pull_per_user: { points: 100, duration_s: 60 } } });
    const tablet = await device(h, 'bob@example.org', 'tablet-0001');
    expect((await tablet.pull(null)).status).toBe(200);
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const one = { mutation_id: 'm0', entity: 'note', entity_id: 'n', op: 'upsert' as const, payload: {} };
    const foreign = await phone.push([one], { schema_version: 3, device_id: 'tablet-0001' });
    expect([foreign.status, foreign.body.error.code]).toEqual([409, 'IQP_E_DEVICE_FOREIGN']);
    const old = await phone.push([one], { schema_version: 4 });
    expect([old.status, old.body.error.code]).toEqual([422, 'IQP_E_SYNC_SCHEMA_VERSION']);
    expect((await phone.push([one], { schema_version: 3 })).status).toBe(200);
    const limited = await phone.push([{ ...one, mutation_id: 'm1' }], { schema_version: 3 });
    expect([limited.status, limited.body.error.code]).toEqual([429, 'IQP_E_RATE_LIMITED']);
    // The refused pushes wrote nothing else: one entity, from the one push applied.
    expect((await phone.pullAll(null)).changes.map((c) => c.entity_id)).toEqual(['n']);
  });

  it('answers 401 IQP_E_TOKEN_EXPIRED mid-sync; after a refresh the same push returns the results of the first', async () => {
    h = await syncHarness();
    const phone = await device(h, 'ann@example.org', 'phone-0001');
    const mutations = [{ mutation_id: 'q1', entity: 'note', entity_id: 'n', op: 'upsert' as const, payload: { t: 1 } }];
    const first = await phone.push(mutations);
    h.clock.advance((h.config.access_ttl_s + 60) * 1000);
    const expired = await phone.push(mutations);
    expect([expired.status, expired.body.error.code]).toEqual([401, 'IQP_E_TOKEN_EXPIRED']);
    expect(expired.headers.get('www-authenticate')).toContain('invalid_token');
    const fresh = await device(h, 'ann@example.org', 'phone-0001');
    const again = await fresh.push(mutations);
    expect(again.body).toEqual(first.body);
  });

  it('refuses an account with an unverified email unless the auth config lets it sync', async () => {
    h = await syncHarness();
    await h.admin.createUser({ email: 'new@example.org', password: 'x7#kq2Lm-river-stone', emailVerified: false }, 'cli:test');
    const login = await post(`${h.url}/login`, { email: 'new@example.org', password: 'x7#kq2Lm-river-stone' });
    expect(login.status).toBe(200);
    const r = await post(`${h.syncUrl}/pull`, { device_id: 'new-device-1', cursor: null }, login.body.access_token);
    expect([r.status, r.body.error.code]).toEqual([403, 'IQP_E_EMAIL_UNVERIFIED']);
  });
});
