/**
 * POST /v1/auth/refresh as stock OAuth client libraries send it (RFC 6749 §6: a form body with
 * grant_type=refresh_token): it rotates exactly as a JSON refresh does, and a form that is not one
 * the route takes is refused with its code before any token is used, so the session goes on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AuthHarness, authHarness, signedIn } from '../auth/support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const FORM = 'application/x-www-form-urlencoded';

async function send(body: string, type = FORM): Promise<{ status: number; body: any }> {
  const res = await fetch(`${h!.url}/refresh`, { method: 'POST', headers: { 'content-type': type }, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const form = (fields: [string, string][]) => new URLSearchParams(fields).toString();

/** Every refresh token row, as it stands: a refused request must leave them all as they were. */
const tokens = () => h!.db.all<Record<string, unknown>>('SELECT id, session_id, used_at_ms, successor_id FROM auth_refresh_tokens ORDER BY id');

describe('a form-encoded refresh', () => {
  it('rotates like a JSON one: new tokens, the old refresh token used, reuse after the grace period detected', async () => {
    h = await authHarness();
    const first = await signedIn(h, 'ann@example.org', 'phone-0001');
    const r = await send(form([['grant_type', 'refresh_token'], ['refresh_token', first.refresh_token], ['client_id', 'com.example.app'], ['device_id', 'phone-0001']]));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 900, refresh_token: expect.any(String) });
    expect(r.body.refresh_token).not.toBe(first.refresh_token);
    expect((await tokens()).filter((t) => t['used_at_ms'] !== null)).toHaveLength(1);
    const me = await fetch(`${h.url}/me`, { headers: { authorization: `Bearer ${r.body.access_token}` } });
    expect(me.status).toBe(200);
    // A form's '+' is a space: a token percent-encoded by the client arrives intact (above); the next one chains on.
    const second = await send(form([['grant_type', 'refresh_token'], ['refresh_token', r.body.refresh_token]]));
    expect(second.status).toBe(200);
    h.clock.advance(11_000);
    const reused = await send(form([['grant_type', 'refresh_token'], ['refresh_token', first.refresh_token]]));
    expect([reused.status, reused.body.error.code]).toEqual([401, 'IQP_E_REFRESH_REUSED']);
  });

  it('with a repeated key, another content type, an unknown field, a wrong grant or an oversize body is refused and changes nothing', async () => {
    h = await authHarness();
    const { refresh_token } = await signedIn(h, 'ann@example.org', 'phone-0001');
    const before = await tokens();
    const audit = (await h.audit()).length;
    const good: [string, string][] = [['grant_type', 'refresh_token'], ['refresh_token', refresh_token]];
    const cases: [string, string, number, string, string?][] = [
      [form([...good, ['refresh_token', refresh_token]]), FORM, 400, 'IQP_E_INVALID_REQUEST', 'body.refresh_token'],
      [form([...good, ['grant_type', 'refresh_token']]), FORM, 400, 'IQP_E_INVALID_REQUEST', 'body.grant_type'],
      [form(good), 'text/plain', 400, 'IQP_E_INVALID_REQUEST', 'body'],
      [form(good), 'multipart/form-data; boundary=x', 400, 'IQP_E_INVALID_REQUEST', 'body'],
      [form([...good, ['client_secret', 's']]), FORM, 400, 'IQP_E_INVALID_REQUEST', 'body.client_secret'],
      [form([['grant_type', 'password'], ['refresh_token', refresh_token]]), FORM, 400, 'IQP_E_INVALID_REQUEST', 'body.grant_type'],
      [form([...good, ['scope', 'x'.repeat(70 * 1024)]]), FORM, 413, 'IQP_E_UPLOAD_TOO_LARGE'],
    ];
    for (const [body, type, status, code, field] of cases) {
      const r = await send(body, type);
      const what = `${type} ${body.slice(0, 80)}`;
      expect([what, r.status, r.body.error.code]).toEqual([what, status, code]);
      if (field) expect(r.body.error.details.field, what).toBe(field);
    }
    expect(await tokens()).toEqual(before);
    expect((await h.audit()).length).toBe(audit);
    // The token was never used: it still refreshes.
    expect((await send(form(good))).status).toBe(200);
  });
});
