/** Malformed requests to the auth routes: each is refused with its code and status, and nothing is written. */
import { afterEach, describe, expect, it } from 'vitest';
import { type AuthHarness, authHarness, PASSWORD, post } from '../auth/support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function counts() {
  const n = async (table: string) => (await h!.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))!.n;
  return { users: await n('auth_users'), devices: await n('auth_devices'), sessions: await n('auth_sessions'), codes: await n('auth_codes'), mails: (await h!.admin.readOutbox()).length };
}

describe('malformed auth requests', () => {
  it('are refused with the field named, and change nothing', async () => {
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    const before = await counts();
    const cases: [string, unknown, number, string, string?][] = [
      ['/register', {}, 400, 'IQP_E_INVALID_REQUEST', 'body.email'],
      ['/register', { email: 'not an email', password: PASSWORD }, 400, 'IQP_E_INVALID_REQUEST', 'body.email'],
      ['/register', { email: `${'a'.repeat(320)}@example.org`, password: PASSWORD }, 400, 'IQP_E_INVALID_REQUEST', 'body.email'],
      ['/register', { email: 'new@example.org', password: PASSWORD, role: 'admin' }, 400, 'IQP_E_INVALID_REQUEST', 'body.role'],
      ['/register', { email: 'new@example.org', password: 'short' }, 422, 'IQP_E_PASSWORD_WEAK'],
      ['/register', { email: 'new@example.org', password: 'p'.repeat(1025) }, 422, 'IQP_E_PASSWORD_WEAK'],
      ['/register', { email: 'new@example.org', password: 'iloveyou' }, 422, 'IQP_E_PASSWORD_WEAK'],
      ['/register', { email: 'new@example.org', password: 12345678 }, 400, 'IQP_E_INVALID_REQUEST', 'body.password'],
      ['/login', { email: 'ann@example.org', password: 'p'.repeat(1025) }, 400, 'IQP_E_INVALID_REQUEST', 'body.password'],
      ['/login', { email: 'ann@example.org', password: PASSWORD, device_id: '../../etc' }, 400, 'IQP_E_INVALID_REQUEST', 'body.device_id'],
      ['/login', { email: 'ann@example.org', password: PASSWORD, device_id: 'short' }, 400, 'IQP_E_INVALID_REQUEST', 'body.device_id'],
      ['/login', { email: 'ann@example.org', password: PASSWORD, device_name: 'n'.repeat(101) }, 400, 'IQP_E_INVALID_REQUEST', 'body.device_name'],
      ['/login', { email: 'ann@example.org', password: PASSWORD, device_id: 'ok-device-1', device_name: '' }, 400, 'IQP_E_INVALID_REQUEST', 'body.device_name'],
      ['/refresh', { refresh_token: 'x', grant_type: 'password' }, 400, 'IQP_E_INVALID_REQUEST', 'body.grant_type'],
      ['/refresh', {}, 400, 'IQP_E_INVALID_REQUEST', 'body.refresh_token'],
      ['/verify-email', { email: 'ann@example.org', code: '12345678901234567' }, 400, 'IQP_E_INVALID_REQUEST', 'body.code'],
      ['/verify-email', { email: 'ann@example.org', code: 'abcdef' }, 400, 'IQP_E_CODE_INVALID'],
      ['/verify-email', { token: 'no.such' }, 400, 'IQP_E_CODE_INVALID'],
      ['/password-reset/confirm', { token: 'no.such', password: 'a fine new passphrase' }, 400, 'IQP_E_CODE_INVALID'],
      ['/google', { id_token: 'x'.repeat(8193) }, 400, 'IQP_E_INVALID_REQUEST', 'body.id_token'],
    ];
    for (const [path, body, status, code, field] of cases) {
      const r = await post(`${url}${path}`, body);
      expect([path, JSON.stringify(body).slice(0, 60), r.status, r.body.error?.code]).toEqual([path, JSON.stringify(body).slice(0, 60), status, code]);
      if (field) expect(r.body.error.details.field).toBe(field);
    }
    const raw = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' });
    expect(raw.status).toBe(400);
    const form = await fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'email=a' });
    expect(((await form.json()) as any).error.code).toBe('IQP_E_INVALID_REQUEST');
    expect(await counts()).toEqual(before);
  });

  it('refuse user routes without a user token, and an API-token principal on them', async () => {
    h = await authHarness();
    const url = h.url;
    for (const [path, method] of [['/me', 'GET'], ['/me', 'DELETE'], ['/devices', 'GET']] as const) {
      const r = await post(`${url}${path}`, undefined, undefined, method);
      expect(r.status).toBe(401);
    }
    const { token } = await h.running.registry.services.tokens.create('admin', 'ci', 'cli:test');
    // A valid API token is someone, but not a user: refused as not allowed.
    for (const [path, method] of [['/me', 'GET'], ['/devices', 'GET']] as const) {
      const r = await post(`${url}${path}`, undefined, token, method);
      expect([r.status, r.body.error.code]).toEqual([403, 'IQP_E_FORBIDDEN']);
    }
  });
});
