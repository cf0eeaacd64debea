/**
 * Refresh-token rotation over HTTP: a race converges, a lost answer is answered again, any other
 * reuse ends the family, and lifetimes, logout, device removal and password changes end sessions.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../plugins/auth/config.js';
import { type AuthHarness, authHarness, PASSWORD, post, signedIn } from './support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const refresh = (refresh_token: string, extra: Record<string, unknown> = {}) => post(`${h!.url}/refresh`, { refresh_token, ...extra });

async function expectRefused(token: string, code: string) {
  const r = await refresh(token);
  expect(r.status).toBe(401);
  expect(r.body.error.code).toBe(code);
}

describe('refresh tokens', () => {
  it('rotate on every use, in OAuth’s shape, and the old one is gone after the grace period', async () => {
    h = await authHarness();
    const first = await signedIn(h);
    expect(first.refresh_token).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const r = await refresh(first.refresh_token, { grant_type: 'refresh_token', client_id: 'app' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, refresh_token: expect.any(String) });
    expect(r.body.refresh_token).not.toBe(first.refresh_token);
    // Only hashes are stored.
    const rows = await h.db.all<{ secret_hash: string }>('SELECT secret_hash FROM auth_refresh_tokens');
    for (const row of rows) for (const t of [first.refresh_token, r.body.refresh_token]) expect(t).not.toContain(row.secret_hash);
    const second = await refresh(r.body.refresh_token);
    expect(second.status).toBe(200);
  });

  it('revokes the whole family, successor included, when an old token comes back after the grace period', async () => {
    h = await authHarness();
    const first = await signedIn(h);
    const successor = (await refresh(first.refresh_token)).body;
    h.clock.advance(11_000);
    await expectRefused(first.refresh_token, 'IQP_E_REFRESH_REUSED');
    await expectRefused(successor.refresh_token, 'IQP_E_TOKEN_INVALID');
    expect((await h.audit()).filter((a) => a.action === 'auth.refresh_reuse_detected')).toHaveLength(1);
    expect(JSON.stringify(await h.audit())).not.toContain(first.refresh_token.split('.')[1]);
    // The access token of the family keeps working until it expires (stateless), the session does not.
    expect((await post(`${h.url}/me`, undefined, successor.access_token, 'GET')).status).toBe(200);
  });

  it('ends the family just the same when the old token comes back naming another device (a thief\'s)', async () => {
    h = await authHarness();
    const first = await signedIn(h, 'ann@example.org', 'device-ann-1');
    const successor = (await refresh(first.refresh_token, { device_id: 'device-ann-1' })).body;
    h.clock.advance(11_000);
    const r = await refresh(first.refresh_token, { device_id: 'device-thief-1' });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('IQP_E_REFRESH_REUSED');
    await expectRefused(successor.refresh_token, 'IQP_E_TOKEN_INVALID');
    expect((await h.audit()).filter((a) => a.action === 'auth.refresh_reuse_detected')).toHaveLength(1);
    expect(await h.db.get("SELECT COUNT(*) AS n FROM auth_devices WHERE id = 'device-thief-1'")).toEqual({ n: 0 });
  });

  it('five parallel refreshes of one token converge on one successor', async () => {
    h = await authHarness();
    const first = await signedIn(h);
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => refresh(first.refresh_token)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.refresh_token)).size).toBe(1);
    expect((await refresh(answers[0]!.body.refresh_token)).status).toBe(200);
    expect((await h.audit()).some((a) => a.action === 'auth.refresh_reuse_detected')).toBe(false);
  });

  it('answers a replay of the immediate parent within the grace period with the same successor', async () => {
    h = await authHarness();
    const first = await signedIn(h);
    const a = (await refresh(first.refresh_token)).body;
    h.clock.advance(9_000);
    const b = (await refresh(first.refresh_token)).body;
    expect(b.refresh_token).toBe(a.refresh_token);
  });

  it('revokes on a grandparent replay inside the grace period', async () => {
    h = await authHarness();
    const first = await signedIn(h);
    const second = (await refresh(first.refresh_token)).body;
    const third = (await refresh(second.refresh_token)).body;
    await expectRefused(first.refresh_token, 'IQP_E_REFRESH_REUSED');
    await expectRefused(third.refresh_token, 'IQP_E_TOKEN_INVALID');
  });

  it('refuses a replay within the grace period naming a device the first use did not bind (another account\'s included): nothing is claimed', async () => {
    h = await authHarness();
    await signedIn(h, 'bob@example.org', 'device-bob-1');
    const ann = await signedIn(h, 'ann@example.org');
    const first = await refresh(ann.refresh_token);
    expect(first.status).toBe(200);
    for (const device_id of ['device-bob-1', 'device-ann-2']) {
      const replay = await refresh(ann.refresh_token, { device_id });
      expect([replay.status, replay.body.error?.code], device_id).toEqual([401, 'IQP_E_TOKEN_INVALID']);
    }
    expect(await h.db.all('SELECT id, user_id FROM auth_devices ORDER BY id')).toEqual([{ id: 'device-bob-1', user_id: (await h.admin.listUsers()).find((u) => u.email === 'bob@example.org')!.id }]);
    expect(await h.db.all('SELECT device_id FROM auth_sessions WHERE user_id = ?', [ann.user.id])).toEqual([{ device_id: null }]);
    // Nothing was used up: the replay as the first was sent, and the successor, still work.
    const again = await refresh(ann.refresh_token);
    expect(again.body.refresh_token).toBe(first.body.refresh_token);
    expect(await h.auth.verifyAccessToken(again.body.access_token)).toMatchObject({ deviceId: null });
    expect((await refresh(first.body.refresh_token)).status).toBe(200);
  });

  it('answers a replay within the grace period with the device the session is bound to', async () => {
    h = await authHarness();
    const ann = await signedIn(h, 'ann@example.org', 'device-ann-1');
    const first = await refresh(ann.refresh_token);
    for (const extra of [{}, { device_id: 'device-ann-1' }]) {
      const replay = await refresh(ann.refresh_token, extra);
      expect(replay.body.refresh_token).toBe(first.body.refresh_token);
      expect(await h.auth.verifyAccessToken(replay.body.access_token)).toMatchObject({ deviceId: 'device-ann-1' });
    }
    expect((await refresh(ann.refresh_token, { device_id: 'device-ann-2' })).body.error.code).toBe('IQP_E_TOKEN_INVALID');
  });

  it('gives every answer to refreshes racing on one token the device the session was bound to, one of them naming a device', async () => {
    h = await authHarness();
    const ann = await signedIn(h, 'ann@example.org');
    const answers = await Promise.all([refresh(ann.refresh_token), refresh(ann.refresh_token), refresh(ann.refresh_token, { device_id: 'device-ann-7' })]);
    const stored = (await h.db.get<{ device_id: string | null }>('SELECT device_id FROM auth_sessions WHERE user_id = ?', [ann.user.id]))!.device_id;
    for (const a of answers.filter((a) => a.status === 200)) expect(await h.auth.verifyAccessToken(a.body.access_token)).toMatchObject({ deviceId: stored });
    expect(answers.filter((a) => a.status !== 200).map((a) => [a.status, a.body.error.code])).toEqual(stored ? [] : [[401, 'IQP_E_TOKEN_INVALID']]);
  });

  it('refuses a wrong secret for a real id without ending the session', async () => {
    h = await authHarness();
    const first = await signedIn(h);
    const [id] = first.refresh_token.split('.');
    await expectRefused(`${id}.${'A'.repeat(43)}`, 'IQP_E_TOKEN_INVALID');
    for (const bad of ['', 'x', `${id}.`, `${id}.${'A'.repeat(44)}`, 'a'.repeat(256)]) expect((await refresh(bad)).status).toBe(401);
    expect((await refresh(first.refresh_token)).status).toBe(200);
  });

  it('ends sessions idle for refresh_idle_days and any session older than refresh_absolute_days', async () => {
    h = await authHarness({ config: { refresh_idle_days: 30, refresh_absolute_days: 60 } });
    const idle = await signedIn(h);
    h.clock.advance(30 * DAY_MS - 1000);
    let current = (await refresh(idle.refresh_token)).body.refresh_token as string;
    expect(current).toBeDefined();
    h.clock.advance(30 * DAY_MS + 1000);
    await expectRefused(current, 'IQP_E_TOKEN_INVALID');

    const fresh = await signedIn(h);
    current = fresh.refresh_token;
    for (let day = 0; day < 59; day += 20) {
      h.clock.advance(20 * DAY_MS);
      const r = await refresh(current);
      if (day + 20 >= 60) {
        expect(r.status).toBe(401);
        break;
      }
      current = r.body.refresh_token;
    }
    await expectRefused(current, 'IQP_E_TOKEN_INVALID');
  });

  it('logout ends the family; a token for another device is refused; a role change shows at the next refresh', async () => {
    h = await authHarness();
    const a = await signedIn(h, 'ann@example.org', 'device-ann-1');
    const r = await refresh(a.refresh_token, { device_id: 'device-ann-2' });
    expect(r.body.error?.code).toBe('IQP_E_TOKEN_INVALID');
    await h.admin.setRole('ann@example.org', 'publisher', 'cli:test');
    const next = (await refresh(a.refresh_token, { device_id: 'device-ann-1' })).body;
    const claims = JSON.parse(Buffer.from(next.access_token.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ roles: ['user', 'publisher'], did: 'device-ann-1' });
    expect((await post(`${h.url}/logout`, { refresh_token: next.refresh_token })).status).toBe(204);
    await expectRefused(next.refresh_token, 'IQP_E_TOKEN_INVALID');
    expect((await post(`${h.url}/logout`, { refresh_token: 'nonsense' })).status).toBe(204);
  });

  it('removing a device ends its sessions only; a password change ends all and keeps the caller signed in', async () => {
    h = await authHarness();
    const phone = await signedIn(h, 'ann@example.org', 'device-phone-1');
    h.clock.advance(1000);
    const tablet = await signedIn(h, 'ann@example.org', 'device-tablet-1');
    h.clock.advance(1000);
    const laptop = await signedIn(h, 'ann@example.org', 'device-laptop-1');
    const list = await post(`${h.url}/devices`, undefined, phone.access_token, 'GET');
    expect(list.body.devices.map((d: any) => [d.id, d.current])).toEqual([
      ['device-phone-1', true],
      ['device-tablet-1', false],
      ['device-laptop-1', false],
    ]);
    expect((await post(`${h.url}/devices/device-tablet-1`, undefined, phone.access_token, 'DELETE')).status).toBe(204);
    expect((await post(`${h.url}/devices/device-tablet-1`, undefined, phone.access_token, 'DELETE')).status).toBe(404);
    await expectRefused(tablet.refresh_token, 'IQP_E_TOKEN_INVALID');
    const kept = (await refresh(phone.refresh_token)).body;
    expect(kept.refresh_token).toBeDefined();
    const changed = await post(`${h.url}/password`, { current_password: PASSWORD, new_password: 'a-new-long-passphrase' }, kept.access_token);
    expect(changed.status).toBe(200);
    await expectRefused(kept.refresh_token, 'IQP_E_TOKEN_INVALID');
    await expectRefused(laptop.refresh_token, 'IQP_E_TOKEN_INVALID');
    expect((await refresh(changed.body.refresh_token)).status).toBe(200);
    expect((await post(`${h.url}/login`, { email: 'ann@example.org', password: PASSWORD })).status).toBe(401);
  });

  it('a disabled account\'s access token, still in date, removes no device', async () => {
    h = await authHarness();
    const phone = await signedIn(h, 'ann@example.org', 'device-phone-1');
    await signedIn(h, 'ann@example.org', 'device-tablet-1');
    await h.admin.setDisabled('ann@example.org', true, 'cli:test');
    const r = await post(`${h.url}/devices/device-tablet-1`, undefined, phone.access_token, 'DELETE');
    expect([r.status, r.body.error.code]).toEqual([401, 'IQP_E_TOKEN_INVALID']);
    expect(await h.db.get("SELECT COUNT(*) AS n FROM auth_devices WHERE id = 'device-tablet-1'")).toEqual({ n: 1 });
    expect((await h.audit()).some((a) => a.action === 'auth.device_removed')).toBe(false);
  });

  it('refuses a device id that belongs to another account, and writes nothing for it', async () => {
    h = await authHarness();
    await signedIn(h, 'ann@example.org', 'device-shared-1');
    await h.admin.createUser({ email: 'bob@example.org', password: PASSWORD }, 'cli:test');
    const before = await h.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM auth_sessions');
    const r = await post(`${h.url}/login`, { email: 'bob@example.org', password: PASSWORD, device_id: 'device-shared-1' });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('IQP_E_DEVICE_FOREIGN');
    expect(await h.db.get('SELECT COUNT(*) AS n FROM auth_sessions')).toEqual(before);
  });

  it('a password change naming another account\'s device is refused whole: the password and the sessions stay', async () => {
    h = await authHarness();
    await signedIn(h, 'ann@example.org', 'device-ann-1');
    const bob = await signedIn(h, 'bob@example.org', 'device-bob-1');
    const r = await post(`${h.url}/password`, { current_password: PASSWORD, new_password: 'a-new-long-passphrase', device_id: 'device-ann-1' }, bob.access_token);
    expect([r.status, r.body.error.code]).toEqual([409, 'IQP_E_DEVICE_FOREIGN']);
    expect((await refresh(bob.refresh_token)).status).toBe(200);
    expect((await post(`${h.url}/login`, { email: 'bob@example.org', password: PASSWORD })).status).toBe(200);
  });

  it('refuses a refresh naming another device without using the token up', async () => {
    h = await authHarness();
    const a = await signedIn(h, 'ann@example.org', 'device-ann-1');
    expect((await refresh(a.refresh_token, { device_id: 'device-thief-1' })).body.error.code).toBe('IQP_E_TOKEN_INVALID');
    h.clock.advance(60_000);
    const r = await refresh(a.refresh_token, { device_id: 'device-ann-1' });
    expect(r.status).toBe(200);
    expect(await h.db.get("SELECT COUNT(*) AS n FROM auth_devices WHERE id = 'device-thief-1'")).toEqual({ n: 0 });
  });

  it('binds a session signed in without a device to the device its first refresh names', async () => {
    h = await authHarness();
    const a = await signedIn(h, 'ann@example.org');
    const r = await refresh(a.refresh_token, { device_id: 'device-ann-7', device_name: 'Tablet' });
    expect(r.status).toBe(200);
    expect(await h.auth.verifyAccessToken(r.body.access_token)).toMatchObject({ deviceId: 'device-ann-7' });
    expect((await post(`${h.url}/devices`, undefined, r.body.access_token, 'GET')).body.devices).toMatchObject([{ id: 'device-ann-7', name: 'Tablet', current: true }]);
    expect((await refresh(r.body.refresh_token, { device_id: 'device-ann-8' })).status).toBe(401);
    // A device of another account cannot be bound.
    const b = await signedIn(h, 'bob@example.org');
    const foreign = await refresh(b.refresh_token, { device_id: 'device-ann-7' });
    expect(foreign.status).toBe(409);
    expect(foreign.body.error.code).toBe('IQP_E_DEVICE_FOREIGN');
    expect((await refresh(b.refresh_token)).status).toBe(200);
  });
});
