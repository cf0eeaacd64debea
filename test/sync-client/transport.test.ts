/** Expired tokens, rate limits, busy servers and outages: the recovery rules, on virtual time. */
import { describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS, backoffMs, retryAfterMs } from '../../src/sync-client/timing.js';
import { applyAll, error, json, offline, page } from './fakes.js';
import { rig } from './harness.js';

const card = (id: string) => ({ entity: 'card', entity_id: id, op: 'upsert' as const, payload: { front: id } });

describe('expired access tokens', () => {
  it('refreshes once and retries the same request; the queue is untouched meanwhile', async () => {
    const r = rig();
    const ok = applyAll();
    r.net.on('/v1/sync/push', async (req) => {
      // The queue still holds the mutation while the retried request is under way.
      expect((await r.store.scan('q/')).length).toBe(1);
      return req.headers['authorization'] === 'Bearer tok-1' ? error(401, 'IQP_E_TOKEN_EXPIRED') : ok(req);
    });
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    await r.client.mutate(card('1'));
    await r.client.syncOnce();
    const pushes = r.net.requests('/v1/sync/push');
    expect(pushes.map((p) => p.headers['authorization'])).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    expect(pushes[1]!.body).toEqual(pushes[0]!.body);
    expect(r.tokens.refreshes).toBe(1);
    expect(await r.client.pendingCount()).toBe(0);
  });

  it('a second 401 after the refresh signs out, without looping', async () => {
    const r = rig();
    r.net.on('/v1/sync/push', () => error(401, 'IQP_E_TOKEN_EXPIRED'));
    await r.client.mutate(card('1'));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'signed_out' });
    expect(r.net.sent).toHaveLength(2);
    expect(r.tokens.refreshes).toBe(1);
    expect(await r.client.pendingCount()).toBe(1);
  });

  it('a refresh that ends the session signs out, and keeps the queue', async () => {
    const r = rig();
    r.tokens.next = [null];
    r.net.on('/v1/sync/push', () => error(401, 'IQP_E_TOKEN_EXPIRED'));
    await r.client.mutate(card('1'));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'signed_out' });
    expect(r.net.sent).toHaveLength(1);
    expect(await r.client.pendingCount()).toBe(1);
  });

  it('an invalid token (not expired) signs out at once: refreshing cannot fix it', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', () => error(401, 'IQP_E_TOKEN_INVALID'));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'signed_out', code: 'IQP_E_TOKEN_INVALID' });
    expect(r.tokens.refreshes).toBe(0);
  });

  it('no token at all is signed out before any request', async () => {
    const r = rig();
    r.tokens.token = null;
    await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'signed_out' });
    expect(r.net.sent).toEqual([]);
  });
});

describe('waiting', () => {
  it('429 and 503 wait the Retry-After the server asked for (seconds or a date)', async () => {
    const r = rig();
    // The date is absolute: 19 s from now is 12 s after the first 7-second wait.
    const at = new Date(r.clock.ms + 19_000).toUTCString();
    r.net.on('/v1/sync/pull', () => error(429, 'IQP_E_RATE_LIMITED', { 'retry-after': '7' }), () => error(503, 'IQP_E_BUSY', { 'retry-after': at }), () => page([], 'c1'));
    await r.client.syncOnce();
    expect(r.clock.slept).toEqual([7000, 12_000]);
    expect(r.net.requests('/v1/sync/pull')).toHaveLength(3);
    expect(r.statuses).toContainEqual(['retrying', 'IQP_E_RATE_LIMITED']);
    expect(r.statuses.at(-1)).toEqual(['idle', undefined]);
  });

  it('network errors and 5xx back off exponentially with full jitter, capped at 60 s', async () => {
    const r = rig({ random: () => 0.999_999 });
    const failures = [offline, () => error(500, 'IQP_E_INTERNAL'), offline, () => json(502, { nope: 1 }), offline, offline, offline, offline, offline];
    r.net.on('/v1/sync/pull', ...failures, () => page([], 'c1'));
    await r.client.syncOnce();
    // random ≈ 1 shows each ceiling: 1 s, 2 s, 4 s ... then 60 s.
    expect(r.clock.slept.map((ms) => Math.round(ms / 1000))).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60]);
    expect(r.statuses).toContainEqual(['offline', undefined]);
  });

  it('full jitter spreads waits over the whole range (seeded)', () => {
    let x = 0;
    const random = () => (x = (x * 9301 + 49297) % 233280) / 233280;
    const waits = Array.from({ length: 2000 }, () => backoffMs(10, random));
    expect(Math.max(...waits)).toBeLessThan(BACKOFF_CAP_MS);
    expect(Math.min(...waits)).toBeLessThan(BACKOFF_CAP_MS / 20);
    expect(Math.max(...waits)).toBeGreaterThan(BACKOFF_CAP_MS * 0.95);
  });

  it('reads Retry-After defensively', () => {
    expect(retryAfterMs(null, 0)).toBeUndefined();
    expect(retryAfterMs('soon', 0)).toBeUndefined();
    expect(retryAfterMs(' 3 ', 0)).toBe(3000);
    expect(retryAfterMs(new Date(5000).toUTCString(), 10_000)).toBe(0);
    expect(retryAfterMs('99999999', 0)).toBe(3_600_000);
  });

  it('a 200 that is not JSON is retried like a server error', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', () => new Response('<html>proxy</html>', { status: 200 }), () => page([], 'c1'));
    await r.client.syncOnce();
    expect(r.net.requests('/v1/sync/pull')).toHaveLength(2);
  });

  it('other client errors fail the cycle with the server’s code (no retry inside)', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', () => error(404, 'IQP_E_NOT_FOUND'));
    await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'failed', code: 'IQP_E_NOT_FOUND', status: 404 });
    expect(r.net.sent).toHaveLength(1);
  });

  it('a pull refused as malformed (400 INVALID_REQUEST or USAGE) blocks syncing instead of being sent again unchanged', async () => {
    for (const code of ['IQP_E_INVALID_REQUEST', 'IQP_E_USAGE']) {
      const r = rig();
      r.net.on('/v1/sync/pull', () => error(400, code));
      await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'blocked', code, status: 400 });
      expect(r.net.sent).toHaveLength(1);
    }
  });

  it('an unverified email and a foreign device id block syncing with their codes', async () => {
    for (const [status, code] of [
      [403, 'IQP_E_EMAIL_UNVERIFIED'],
      [409, 'IQP_E_DEVICE_FOREIGN'],
    ] as const) {
      const r = rig();
      r.net.on('/v1/sync/pull', () => error(status, code));
      await expect(r.client.syncOnce()).rejects.toMatchObject({ kind: 'blocked', code });
    }
  });
});
