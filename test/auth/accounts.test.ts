/** Sign-up to sign-out over HTTP, mail codes and links, account deletion through the user.deleted hook. */
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort } from '../e2e/helpers.js';
import { type AuthHarness, authHarness, PASSWORD, post } from './support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const codeIn = (text: string) => /code is (\d{6})/.exec(text)![1]!;
const linkIn = (text: string) => /24 hours: (\S+)/.exec(text)![1]!;

async function lastMailTo(to: string) {
  const mails = (await h!.admin.readOutbox()).filter((m) => m.to === to);
  return mails.at(-1)!;
}

describe('accounts', () => {
  it('register → verify → login → refresh → logout', async () => {
    h = await authHarness({ config: { unverified_may: [] } });
    const url = h.url;
    const reg = await post(`${url}/register`, { email: 'Ann@Example.org', password: PASSWORD });
    expect(reg.status).toBe(202);
    expect(reg.body).toEqual({ status: 'verification_sent' });
    const unverified = await post(`${url}/login`, { email: 'ann@example.org', password: PASSWORD });
    expect(unverified.status).toBe(403);
    expect(unverified.body.error.code).toBe('IQP_E_EMAIL_UNVERIFIED');
    const mail = await lastMailTo('ann@example.org');
    expect(JSON.stringify(mail)).not.toContain(PASSWORD);
    expect((await post(`${url}/verify-email`, { email: 'ann@example.org', code: codeIn(mail.text) })).body).toEqual({ email_verified: true });
    const login = await post(`${url}/login`, { email: 'ANN@example.org', password: PASSWORD, device_id: 'device-0001', device_name: 'Pixel' });
    expect(login.status).toBe(200);
    expect(login.body.user).toMatchObject({ email: 'ann@example.org', email_verified: true, role: 'user' });
    const me = await post(`${url}/me`, undefined, login.body.access_token, 'GET');
    expect(me.body).toMatchObject({ email: 'ann@example.org', email_verified: true });
    expect(await h.auth.verifyAccessToken(login.body.access_token)).toMatchObject({ deviceId: 'device-0001', emailVerified: true, roles: ['user'] });
    const r = await post(`${url}/refresh`, { refresh_token: login.body.refresh_token });
    expect(r.status).toBe(200);
    expect((await post(`${url}/logout`, { refresh_token: r.body.refresh_token })).status).toBe(204);
    expect((await post(`${url}/refresh`, { refresh_token: r.body.refresh_token })).status).toBe(401);
    expect((await h.audit()).map((a) => a.action)).toEqual(expect.arrayContaining(['auth.user_registered', 'auth.email_verified', 'auth.logout']));
  });

  it('verifies by link; codes are single use and stop after 5 wrong tries', async () => {
    h = await authHarness();
    const url = h.url;
    await post(`${url}/register`, { email: 'ann@example.org', password: PASSWORD });
    const mail = await lastMailTo('ann@example.org');
    const code = codeIn(mail.text);
    const wrong = code === '000000' ? '111111' : '000000';
    for (let i = 0; i < 5; i++) {
      const r = await post(`${url}/verify-email`, { email: 'ann@example.org', code: wrong });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('IQP_E_CODE_INVALID');
    }
    expect((await post(`${url}/verify-email`, { email: 'ann@example.org', code })).status).toBe(400);
    expect((await h.admin.listUsers())[0]!.emailVerified).toBe(false);
    const link = linkIn(mail.text);
    expect((await post(`${url}/verify-email`, { token: link })).status).toBe(200);
    expect((await post(`${url}/verify-email`, { token: link })).status).toBe(400);
    expect((await h.admin.listUsers())[0]!.emailVerified).toBe(true);
    expect((await post(`${url}/verify-email`, {})).body.error.code).toBe('IQP_E_INVALID_REQUEST');
  });

  it('counts twenty wrong codes sent at once as five tries: the code ends, the link still works', async () => {
    h = await authHarness();
    const verify = (body: Record<string, string>) => post(`${h!.url}/verify-email`, body);
    await post(`${h.url}/register`, { email: 'ann@example.org', password: PASSWORD });
    const { text } = await lastMailTo('ann@example.org');
    const wrong = Array.from({ length: 20 }, (_, i) => String((Number(codeIn(text)) + 1 + i) % 1_000_000).padStart(6, '0'));
    const answers = await Promise.all(wrong.map((code) => verify({ email: 'ann@example.org', code })));
    expect(answers.map((a) => a.body.error.code)).toEqual(Array(20).fill('IQP_E_CODE_INVALID'));
    expect((await h.db.get<{ attempts: number }>("SELECT attempts FROM auth_codes WHERE kind = 'code'"))!.attempts, 'tries judged').toBe(5);
    expect((await verify({ email: 'ann@example.org', code: codeIn(text) })).status).toBe(400);
    expect((await verify({ token: linkIn(text) })).status).toBe(200);
  });

  it('codes expire after 10 minutes, links after 24 hours; a new mail replaces the old codes', async () => {
    h = await authHarness();
    const url = h.url;
    await post(`${url}/register`, { email: 'ann@example.org', password: PASSWORD });
    const first = await lastMailTo('ann@example.org');
    h.clock.advance(10 * 60_000 + 1);
    expect((await post(`${url}/verify-email`, { email: 'ann@example.org', code: codeIn(first.text) })).status).toBe(400);
    await post(`${url}/resend-verification`, { email: 'ann@example.org' });
    const second = await lastMailTo('ann@example.org');
    expect((await post(`${url}/verify-email`, { token: linkIn(first.text) })).status).toBe(400);
    h.clock.advance(24 * 3_600_000 + 1);
    expect((await post(`${url}/verify-email`, { token: linkIn(second.text) })).status).toBe(400);
  });

  it('resets a password with the mailed code: every session ends, the old password stops working', async () => {
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    const session = (await post(`${url}/login`, { email: 'ann@example.org', password: PASSWORD })).body;
    expect((await post(`${url}/password-reset/request`, { email: 'ann@example.org' })).status).toBe(202);
    const code = codeIn((await lastMailTo('ann@example.org')).text);
    const weak = await post(`${url}/password-reset/confirm`, { email: 'ann@example.org', code, password: 'password1' });
    expect(weak.status).toBe(422);
    expect(weak.body.error.code).toBe('IQP_E_PASSWORD_WEAK');
    expect((await post(`${url}/password-reset/confirm`, { email: 'ann@example.org', code, password: 'brand-new-passphrase' })).status).toBe(204);
    expect((await post(`${url}/refresh`, { refresh_token: session.refresh_token })).status).toBe(401);
    expect((await post(`${url}/login`, { email: 'ann@example.org', password: PASSWORD })).status).toBe(401);
    expect((await post(`${url}/login`, { email: 'ann@example.org', password: 'brand-new-passphrase' })).status).toBe(200);
    expect(JSON.stringify(await h.audit())).not.toMatch(/brand-new-passphrase|x7#kq2Lm/);
  });

  it('refuses the account\'s own email as the new password on a reset by link too, and the refusal leaves the link usable', async () => {
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    await post(`${url}/password-reset/request`, { email: 'ann@example.org' });
    const token = linkIn((await lastMailTo('ann@example.org')).text);
    const refused = await post(`${url}/password-reset/confirm`, { token, password: 'Ann@Example.org' });
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'IQP_E_PASSWORD_WEAK', message: 'The password may not be the email address.' });
    expect((await post(`${url}/login`, { email: 'ann@example.org', password: 'Ann@Example.org' })).status).toBe(401);
    expect((await post(`${url}/password-reset/confirm`, { token, password: 'brand-new-passphrase' })).status).toBe(204);
    expect((await post(`${url}/login`, { email: 'ann@example.org', password: 'brand-new-passphrase' })).status).toBe(200);
  });

  // Issuing a code commits, which takes measurable time: an answer that waited for it would tell
  // which emails have accounts. Another connection holds the write lock here, so no commit can
  // happen until it lets go; a request whose answer needed one could not answer meanwhile.
  it('answers reset and resend requests for a known email before the code is committed, then mails it', async () => {
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    await h.admin.createUser({ email: 'bob@example.org', password: PASSWORD, emailVerified: false }, 'cli:test');
    for (const [path, email] of [
      ['password-reset/request', 'ann@example.org'],
      ['password-reset/request', 'nobody@example.org'],
      ['resend-verification', 'bob@example.org'],
      ['resend-verification', 'nobody@example.org'],
    ] as const) {
      const r = await h.db.transaction(() => post(`${url}/${path}`, { email }));
      expect([r.status, r.body]).toEqual([202, { status: 'verification_sent' }]);
    }
    const ann = await lastMailTo('ann@example.org');
    expect(ann.subject).toMatch(/^Your password reset code: \d{6}$/);
    expect((await post(`${url}/password-reset/confirm`, { email: 'ann@example.org', code: codeIn(ann.text), password: 'brand-new-passphrase' })).status).toBe(204);
    expect((await post(`${url}/verify-email`, { token: linkIn((await lastMailTo('bob@example.org')).text) })).status).toBe(200);
    expect((await h.admin.readOutbox()).map((m) => m.to).sort()).toEqual(['ann@example.org', 'bob@example.org']);
  });

  it('logs a code that could not be issued after the answer, by what it was for', async () => {
    h = await authHarness();
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    // The account is found, then gone by the time its code is written.
    await h.db.transaction(async (tx) => {
      await tx.run("DELETE FROM auth_users WHERE email = 'ann@example.org'");
      expect((await post(`${h!.url}/password-reset/request`, { email: 'ann@example.org' })).status).toBe(202);
    });
    expect(await h.admin.readOutbox()).toEqual([]);
    const failures = h.logs.filter((l) => l['msg'] === 'code mail failed');
    expect(failures).toMatchObject([{ level: 'error', purpose: 'password_reset', error: expect.stringMatching(/FOREIGN KEY/) }]);
    expect(JSON.stringify(failures)).not.toContain('ann@example.org');
  });

  it('DELETE /me closes the account, emits user.deleted before it goes, and a failing subscriber keeps it open', async () => {
    h = await authHarness({ fixtures: { keeper: {} } });
    const url = h.url;
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    const { access_token, user } = (await post(`${url}/login`, { email: 'ann@example.org', password: PASSWORD })).body;
    await h.db.run('INSERT INTO keeper_refusals (user_id) VALUES (?)', [user.id]);
    const refused = await post(`${url}/me`, undefined, access_token, 'DELETE');
    expect(refused.status).toBe(500);
    expect(await h.admin.listUsers()).toMatchObject([{ id: user.id, disabled: false }]);
    expect(await h.auth.userActive(user.id)).toBe(true);
    await h.db.run('DELETE FROM keeper_refusals');
    expect((await post(`${url}/me`, undefined, access_token, 'DELETE')).status).toBe(204);
    // While the hooks ran, the account existed but was closed: no token still in date could add data behind them.
    expect(await h.db.all('SELECT user_id, account_present, account_disabled FROM keeper_deleted')).toEqual([{ user_id: user.id, account_present: 1, account_disabled: 1 }]);
    expect(await h.admin.listUsers()).toEqual([]);
    expect(await h.db.get('SELECT COUNT(*) AS n FROM auth_sessions')).toEqual({ n: 0 });
    expect((await post(`${url}/me`, undefined, access_token, 'GET')).status).toBe(401);
  });

  it('tells other plugins whether an unverified user may sync, as unverified_may says', async () => {
    for (const [unverified_may, expected] of [
      [['sign_in'], false],
      [['sign_in', 'sync'], true],
    ] as const) {
      h = await authHarness({ config: { unverified_may } });
      const url = h.url;
      await post(`${url}/register`, { email: 'ann@example.org', password: PASSWORD });
      const { access_token } = (await post(`${url}/login`, { email: 'ann@example.org', password: PASSWORD })).body;
      const principal = (await h.auth.verifyAccessToken(access_token))!;
      expect(principal.emailVerified).toBe(false);
      expect(h.auth.may(principal, 'sync')).toBe(expected);
      expect(h.auth.may({ ...principal, emailVerified: true }, 'sync')).toBe(true);
      await h.close();
      h = null;
    }
  });

  it('logs a failed delivery by what the mail was for, never with its code', async () => {
    h = await authHarness({ config: { smtp: { host: '127.0.0.1', port: await closedPort(), secure: false, from: 'iqp@example.org' } } });
    await post(`${h.url}/register`, { email: 'ann@example.org', password: PASSWORD });
    await h.admin.createUser({ email: 'bob@example.org', password: PASSWORD }, 'cli:test');
    expect((await post(`${h.url}/password-reset/request`, { email: 'bob@example.org' })).status).toBe(202);
    await h.admin.readOutbox();
    const failures = h.logs.filter((l) => l['msg'] === 'mail delivery failed');
    expect(failures.map((l) => l['purpose'])).toEqual(['verification', 'password_reset']);
    for (const line of failures) expect(JSON.stringify(line)).not.toMatch(/code|\d{6}/i);
  });
});
