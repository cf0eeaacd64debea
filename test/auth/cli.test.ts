/**
 * `iqp users …` and `iqp auth …` through the real binary, beside a real `iqp server start` on the
 * same data directory: accounts made, promoted, disabled and deleted while apps sign in; a key
 * rotation the running server picks up; the mail outbox read back.
 */
import { describe, expect, it } from 'vitest';
import { call, childServerPerTest, iqpOnData, newRegistryDir, until } from '../server/helpers.js';

const PASSWORD = 'x7#kq2Lm-river-stone';
const servers = childServerPerTest();
const run = iqpOnData;

const kidOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid as string;

async function login(url: string, email: string) {
  return call(url, '/v1/auth/login', { method: 'POST', json: { email, password: PASSWORD } });
}

describe('iqp users and iqp auth', () => {
  it('manage accounts and keys beside a running server', async () => {
    const dataDir = await newRegistryDir('iqp-auth-cli-');
    expect((await run(dataDir, ['plugins', 'enable', 'auth'])).code).toBe(0);
    const server = await servers.start(dataDir);
    const url = server.url;

    const created = await run(dataDir, ['users', 'create', 'ann@example.org', '--role', 'publisher', '--json'], { IQP_USER_PASSWORD: PASSWORD });
    expect(created.code).toBe(0);
    expect(created.stderr).toBe('');
    expect(created.stdout).not.toContain(PASSWORD);
    expect(created.json().user).toMatchObject({ email: 'ann@example.org', role: 'publisher', email_verified: true, disabled: false });
    const first = await login(url, 'ann@example.org');
    expect(first.status).toBe(200);
    expect(JSON.parse(Buffer.from(first.json().access_token.split('.')[1], 'base64url').toString()).roles).toEqual(['user', 'publisher']);

    const promoted = await run(dataDir, ['users', 'set-role', 'ann@example.org', 'admin', '--json']);
    expect(promoted.json().user.role).toBe('admin');
    const refreshed = await call(url, '/v1/auth/refresh', { method: 'POST', json: { refresh_token: first.json().refresh_token } });
    expect(JSON.parse(Buffer.from(refreshed.json().access_token.split('.')[1], 'base64url').toString()).roles).toEqual(['user', 'publisher', 'admin']);

    const oldKid = kidOf(refreshed.json().access_token);
    const rotated = await run(dataDir, ['auth', 'rotate-key', '--json']);
    expect(rotated.code).toBe(0);
    expect(rotated.json()).toEqual({ kid: expect.any(String), previous_kid: oldKid });
    // The server signs with the new key within seconds; tokens of the old one keep verifying.
    let chain = (await login(url, 'ann@example.org')).json().refresh_token as string;
    const newKid = async () => {
      const r = (await call(url, '/v1/auth/refresh', { method: 'POST', json: { refresh_token: chain } })).json();
      chain = r.refresh_token;
      return kidOf(r.access_token) === rotated.json().kid;
    };
    expect(await until(newKid, 10_000, 250)).toBe(true);
    expect((await call(url, '/v1/auth/me', { token: refreshed.json().access_token })).status).toBe(200);

    const disabled = await run(dataDir, ['users', 'disable', 'ann@example.org', '--json']);
    expect(disabled.json().user.disabled).toBe(true);
    expect((await call(url, '/v1/auth/refresh', { method: 'POST', json: { refresh_token: refreshed.json().refresh_token } })).status).toBe(401);
    expect((await login(url, 'ann@example.org')).status).toBe(403);
    expect((await run(dataDir, ['users', 'disable', 'ann@example.org', '--undo'])).code).toBe(0);
    expect((await login(url, 'ann@example.org')).status).toBe(200);

    expect((await call(url, '/v1/auth/register', { method: 'POST', json: { email: 'bob@example.org', password: PASSWORD } })).status).toBe(202);
    const outbox = await run(dataDir, ['auth', 'outbox', '--json']);
    const mail = outbox.json().messages.at(-1);
    expect(mail).toMatchObject({ to: 'bob@example.org', subject: expect.stringMatching(/^Your verification code: \d{6}$/) });
    const text = await run(dataDir, ['auth', 'outbox', '--limit', '1']);
    expect(text.stdout).toContain('to bob@example.org');

    const listed = await run(dataDir, ['users', 'list', '--json']);
    expect(listed.json().users.map((u: any) => [u.email, u.role, u.email_verified])).toEqual([
      ['ann@example.org', 'admin', true],
      ['bob@example.org', 'user', false],
    ]);
    expect((await run(dataDir, ['users', 'delete', 'bob@example.org'])).code).toBe(0);
    expect((await run(dataDir, ['users', 'list', '--json'])).json().users).toHaveLength(1);
  });

  it('refuses bad input with its code and exit status, changing nothing', async () => {
    const dataDir = await newRegistryDir('iqp-auth-cli-');
    expect((await run(dataDir, ['plugins', 'enable', 'auth'])).code).toBe(0);
    const noPassword = await run(dataDir, ['users', 'create', 'ann@example.org', '--json']);
    expect(noPassword.code).toBe(2);
    expect(noPassword.json().error.code).toBe('IQP_E_MISSING_OPTION');
    const weak = await run(dataDir, ['users', 'create', 'ann@example.org', '--json'], { IQP_USER_PASSWORD: 'password1' });
    expect(weak.code).toBe(2);
    expect(weak.json().error.code).toBe('IQP_E_PASSWORD_WEAK');
    const role = await run(dataDir, ['users', 'set-role', 'ann@example.org', 'root', '--json']);
    expect(role.code).toBe(2);
    expect(role.json().error.code).toBe('IQP_E_USAGE');
    const unknown = await run(dataDir, ['users', 'delete', 'nobody@example.org', '--json']);
    expect(unknown.code).toBe(2);
    expect(unknown.json().error.code).toBe('IQP_E_USER_NOT_FOUND');
    expect((await run(dataDir, ['users', 'list', '--json'])).json().users).toEqual([]);
    const noPlugin = await run(await newRegistryDir('iqp-auth-cli-'), ['users', 'list', '--json']);
    expect(noPlugin.code).not.toBe(0);
    expect(noPlugin.json().error.code).toBe('IQP_E_PLUGIN_UNAVAILABLE');
  });
});
