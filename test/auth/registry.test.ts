/**
 * The auth plugin inside a real registry: what it shares with the core. Disabling it removes its
 * routes and leaves packs alone; a failing handler fails that request only; plugin routes that need
 * a role refuse a signed-in user without it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';
import { buildTemplatePack, call, newKey, packRows, registerKey, tempDir, upload } from '../server/helpers.js';
import { type AuthHarness, authHarness, PASSWORD, post, signedIn } from './support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('the auth plugin in a registry', () => {
  it('disabled, its routes answer 404 and packs, keys and accounts stay as they were', async () => {
    h = await authHarness();
    const key = newKey();
    const { token: admin } = await h.running.registry.services.tokens.create('admin', 'ops', 'cli:test');
    await registerKey(h.base, admin, key);
    const pack = await buildTemplatePack(tempDir('iqp-auth-pack-'), key);
    expect((await upload(h.base, admin, pack.path)).status).toBe(201);
    await signedIn(h);
    const dir = h.dir;
    // Links carry the server's address, which a restart changes: compare what they point at.
    const withoutLinks = (doc: any) => JSON.parse(JSON.stringify(doc).replace(/http:\/\/127\.0\.0\.1:\d+/g, ''));
    const available = withoutLinks((await call(h.base, '/v1/packs/available?app_version=1.0.0')).json());
    expect(available.packs).toHaveLength(1);
    await h.close();
    h = null;

    writeFileSync(join(dir, 'server.json'), JSON.stringify({ plugins: { auth: { enabled: false, source: 'builtin', required: false, config: {} } } }));
    const running = await startServer(serverConfig({ dataDir: dir, host: '127.0.0.1', port: 0 }), () => {});
    try {
      for (const [path, method] of [['/v1/auth/login', 'POST'], ['/v1/auth/jwks.json', 'GET'], ['/v1/auth/me', 'GET']] as const) {
        const r = await call(running.url, path, { method, ...(method === 'POST' ? { json: { email: 'ann@example.org', password: 'whatever-it-is' } } : {}) });
        expect([path, r.status, r.json().error.code]).toEqual([path, 404, 'IQP_E_NOT_FOUND']);
      }
      expect(withoutLinks((await call(running.url, '/v1/packs/available?app_version=1.0.0')).json())).toEqual(available);
      expect(packRows(dir).map((p) => `${p.package_id}@${p.version}`)).toEqual([`${pack.package_id}@${pack.version}`]);
      expect((await call(running.url, `/v1/packs/${pack.package_id}/download`)).status).toBe(200);
    } finally {
      await running.close();
    }
  });

  it('a handler that fails answers 500 for that request only; packs keep being served', async () => {
    h = await authHarness();
    // The signing keys' table goes missing under the server: signing in can no longer finish.
    await h.db.run('ALTER TABLE auth_signing_keys RENAME TO auth_signing_keys_gone');
    await h.admin.createUser({ email: 'ann@example.org', password: 'x7#kq2Lm-river-stone' }, 'cli:test');
    const failed = await post(`${h.url}/login`, { email: 'ann@example.org', password: 'x7#kq2Lm-river-stone' });
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('IQP_E_PLUGIN_FAILED');
    expect(JSON.stringify(failed.body)).not.toMatch(/no such table|auth_signing_keys/);
    expect((await call(h.base, '/v1/packs/available?app_version=1.0.0')).status).toBe(200);
    expect((await call(h.base, '/v1/health')).status).toBe(200);
    expect((await post(`${h.url}/jwks.json`, undefined, undefined, 'GET')).status).toBe(200);
  });

  it('a plugin route needing the admin role refuses a user without it (403) and admits one with it', async () => {
    process.env['IQP_TEST_HELLO_SECRET'] ??= 'correct horse battery staple';
    h = await authHarness({ fixtures: { hello: { secret: { $env: 'IQP_TEST_HELLO_SECRET' } } } });
    const user = await signedIn(h, 'ann@example.org');
    const refused = await post(`${h.base}/v1/hello/secret-length`, undefined, user.access_token, 'GET');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('IQP_E_FORBIDDEN');
    await h.admin.setRole('ann@example.org', 'admin', 'cli:test');
    const promoted = await post(`${h.url}/refresh`, { refresh_token: user.refresh_token });
    const allowed = await post(`${h.base}/v1/hello/secret-length`, undefined, promoted.body.access_token, 'GET');
    expect(allowed.status).toBe(200);
    expect(allowed.body.caller).toBe('user');
  });

  it("the core's admin routes take a user's access token only when it carries the role, from the next refresh on", async () => {
    h = await authHarness();
    const user = await signedIn(h, 'ann@example.org');
    const keys = (token: string) => post(`${h!.base}/v1/admin/keys`, undefined, token, 'GET');
    const audit = (token: string) => post(`${h!.base}/v1/admin/audit`, undefined, token, 'GET');
    for (const r of [await keys(user.access_token), await audit(user.access_token)]) {
      expect([r.status, r.body.error.code, r.body.error.message]).toEqual([403, 'IQP_E_FORBIDDEN', 'This needs the admin role; the user has user.']);
    }
    // A publisher may publish but not manage keys.
    await h.admin.setRole('ann@example.org', 'publisher', 'cli:test');
    expect((await keys(user.access_token)).status).toBe(403); // the old token still says user
    const publisher = (await post(`${h.url}/refresh`, { refresh_token: user.refresh_token })).body;
    const refused = await keys(publisher.access_token);
    expect([refused.status, refused.body.error.message]).toEqual([403, 'This needs the admin role; the user has user, publisher.']);
    await h.admin.setRole('ann@example.org', 'admin', 'cli:test');
    const admin = (await post(`${h.url}/refresh`, { refresh_token: publisher.refresh_token })).body;
    const listed = await keys(admin.access_token);
    expect([listed.status, Array.isArray(listed.body.keys)]).toEqual([200, true]);
    expect((await audit(admin.access_token)).status).toBe(200);
    // Demoted: the next refresh takes the role away again.
    await h.admin.setRole('ann@example.org', 'user', 'cli:test');
    const demoted = (await post(`${h.url}/refresh`, { refresh_token: admin.refresh_token })).body;
    expect((await keys(demoted.access_token)).status).toBe(403);
  });

  it("the core's admin routes refuse an admin's access token at once when the account is disabled or deleted", async () => {
    h = await authHarness();
    await h.admin.createUser({ email: 'root@example.org', password: PASSWORD, role: 'admin' }, 'cli:test');
    const admin = await signedIn(h, 'root@example.org');
    const keys = () => post(`${h!.base}/v1/admin/keys`, undefined, admin.access_token, 'GET');
    expect((await keys()).status).toBe(200);
    await h.admin.setDisabled('root@example.org', true, 'cli:test');
    const disabled = await keys();
    expect([disabled.status, disabled.body.error.code]).toEqual([401, 'IQP_E_UNAUTHORIZED']);
    await h.admin.setDisabled('root@example.org', false, 'cli:test');
    expect((await keys()).status).toBe(200);
    await h.admin.deleteUser('root@example.org', 'cli:test');
    expect((await keys()).status).toBe(401);
  });
});
