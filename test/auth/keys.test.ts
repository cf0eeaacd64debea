/**
 * The auth plugin's secret and signing keys on one machine: a registry that kept its private keys
 * as files (before they moved into the database) keeps its current key and its tokens across the
 * upgrade; a configured `secret` is checked when it is set and when the server starts, and never
 * printed; and a key sealed under another secret is never used to sign.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { iqpOnData, newRegistryDir, spawnServer } from '../server/helpers.js';
import { type AuthHarness, authHarness, openSealedKey, post, signedIn, TestClock } from './support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const kidOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid as string;
const keysDir = (dir: string) => join(dir, 'plugins', 'auth', 'keys');

describe('signing keys in the database', () => {
  it('imports the key files of an earlier version once: the current kid stays, its tokens keep verifying, the files go', async () => {
    h = await authHarness();
    const before = await signedIn(h);
    const kid = kidOf(before.access_token);
    const { dir, clock } = h;
    // Back to what the earlier version left: the private key as a file, no column for it, no ledger row.
    const row = await h.db.get<{ private_jwk_sealed: string }>('SELECT private_jwk_sealed FROM auth_signing_keys WHERE kid = ?', [kid]);
    const jwk = openSealedKey(dir, kid, row!.private_jwk_sealed);
    await h.db.run('ALTER TABLE auth_signing_keys DROP COLUMN private_jwk_sealed');
    await h.db.run("DELETE FROM plugin_migrations WHERE plugin_id = 'auth' AND migration_id = '0002-signing-key-private'");
    await h.close();
    h = null;
    mkdirSync(keysDir(dir), { mode: 0o700 });
    writeFileSync(join(keysDir(dir), `${kid}.jwk`), jwk, { mode: 0o600 });
    writeFileSync(join(keysDir(dir), 'unknownkid.jwk'), jwk.replace(kid, 'unknownkid'), { mode: 0o600 });

    h = await authHarness({ dir, clock });
    expect((await post(`${h.url}/me`, undefined, before.access_token, 'GET')).status, 'the old access token verifies').toBe(200);
    const after = await post(`${h.url}/refresh`, { refresh_token: before.refresh_token });
    expect(after.status).toBe(200);
    expect(kidOf(after.body.access_token), 'the same key stays current').toBe(kid);
    expect(existsSync(join(keysDir(dir), `${kid}.jwk`)), 'the imported file is removed').toBe(false);
    expect(existsSync(join(keysDir(dir), 'unknownkid.jwk')), 'a file the database does not know is left alone').toBe(true);
    const sealed = await h.db.get<{ private_jwk_sealed: string }>('SELECT private_jwk_sealed FROM auth_signing_keys WHERE kid = ?', [kid]);
    expect(openSealedKey(dir, kid, sealed!.private_jwk_sealed)).toBe(jwk);
    expect(sealed!.private_jwk_sealed).not.toContain(JSON.parse(jwk).d);
  });

  it('never signs with a key sealed under another secret: a new current key, the old tokens verify until they expire', async () => {
    h = await authHarness();
    const before = await signedIn(h);
    const { dir } = h;
    await h.close();
    h = null;
    const clock = new TestClock();
    h = await authHarness({ dir, clock, config: { secret: randomBytes(32).toString('base64url') } });
    const after = await signedIn(h);
    expect(kidOf(after.access_token)).not.toBe(kidOf(before.access_token));
    expect((await post(`${h.url}/me`, undefined, before.access_token, 'GET')).status).toBe(200);
    // Refresh tokens are checked by their hash alone: a new secret signs nobody out.
    expect((await post(`${h.url}/refresh`, { refresh_token: before.refresh_token })).status).toBe(200);
    const kids = async () => ((await post(`${h!.url}/jwks.json`, undefined, undefined, 'GET')).body.keys as { kid: string }[]).map((k) => k.kid);
    expect(await kids()).toContain(kidOf(before.access_token));
    clock.advance((900 + 30) * 1000 + 5_001);
    expect(await kids(), 'its public half goes once its last token has expired').toEqual([kidOf(after.access_token)]);
  });

  it('forgets the private half of a retired key once it verifies nothing; its public half stays in the table', async () => {
    h = await authHarness();
    const first = kidOf((await signedIn(h)).access_token);
    await h.admin.rotateKey('cli:test');
    h.clock.advance((900 + 30) * 1000 + 1);
    await h.admin.rotateKey('cli:test');
    const row = await h.db.get<{ private_jwk_sealed: string | null; public_jwk: string }>('SELECT private_jwk_sealed, public_jwk FROM auth_signing_keys WHERE kid = ?', [first]);
    expect(row!.private_jwk_sealed).toBeNull();
    expect(row!.public_jwk).toContain(first);
  });

  it('answers IQP_E_TOKEN_EXPIRED for an expired token whose key has since been retired and gone, so the app refreshes', async () => {
    h = await authHarness();
    const ann = await signedIn(h);
    const me = () => post(`${h!.url}/me`, undefined, ann.access_token, 'GET');
    await h.admin.rotateKey('cli:test');
    // Past the retired key's window (access_ttl_s + 30 s) and the keyring's next reading.
    h.clock.advance((h.config.access_ttl_s + 30) * 1000 + 5_001);
    expect((await post(`${h.url}/jwks.json`, undefined, undefined, 'GET')).body.keys.map((k: { kid: string }) => k.kid)).not.toContain(kidOf(ann.access_token));
    const r = await me();
    expect([r.status, r.body.error.code]).toEqual([401, 'IQP_E_TOKEN_EXPIRED']);
    expect(r.headers.get('www-authenticate')).toContain('error_description="expired"');
    expect(await h.auth.verifyAccessToken(ann.access_token)).toBeNull();
    const refreshed = await post(`${h.url}/refresh`, { refresh_token: ann.refresh_token });
    expect(refreshed.status, 'the session lives on').toBe(200);
    expect((await post(`${h.url}/me`, undefined, refreshed.body.access_token, 'GET')).status).toBe(200);
  });

  it('takes server.key as the secret without signing anybody out', async () => {
    h = await authHarness();
    const before = await signedIn(h);
    const { dir, clock } = h;
    await h.close();
    h = null;
    const serverKey = readFileSync(join(dir, 'plugins', 'auth', 'server.key'), 'utf8');
    h = await authHarness({ dir, clock, config: { secret: serverKey } });
    const refreshed = await post(`${h.url}/refresh`, { refresh_token: before.refresh_token });
    expect(refreshed.status).toBe(200);
    expect(kidOf(refreshed.body.access_token)).toBe(kidOf(before.access_token));
    // The replay within the grace period still gets the same successor: the HMAC key did not change.
    expect((await post(`${h.url}/refresh`, { refresh_token: before.refresh_token })).body.refresh_token).toBe(refreshed.body.refresh_token);
  });
});

describe('the secret setting', () => {
  const good = randomBytes(32).toString('base64');

  it('is checked at `plugins config --set`, with IQP_E_PLUGIN_CONFIG naming the key and not the value; a good one is masked', async () => {
    const dir = await newRegistryDir('iqp-auth-secret-');
    expect((await iqpOnData(dir, ['plugins', 'enable', 'auth'])).code).toBe(0);
    const file = () => readFileSync(join(dir, 'server.json'), 'utf8');
    const unchanged = file();
    for (const bad of ['too-short-a-secret', randomBytes(31).toString('base64url'), randomBytes(33).toString('base64'), `${good.slice(0, -2)}!=`]) {
      const r = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', `secret=${bad}`, '--json']);
      expect(r.code, bad).toBe(2);
      expect(r.json()).toMatchObject({ error: { code: 'IQP_E_PLUGIN_CONFIG', details: { plugin: 'auth', key: 'secret' } } });
      expect(r.json().error.message).toContain('32 random bytes in base64 or base64url');
      expect(r.stdout + r.stderr).not.toContain(bad);
      expect(file()).toBe(unchanged);
    }
    const notText = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', 'secret=42', '--json']);
    expect(notText.json()).toMatchObject({ error: { code: 'IQP_E_PLUGIN_CONFIG', details: { key: 'secret' } } });
    const set = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', `secret=${good}`, '--json']);
    expect(set.code).toBe(0);
    expect(set.json().config.secret).toBe('********');
    const shown = await iqpOnData(dir, ['plugins', 'config', 'auth']);
    const listed = await iqpOnData(dir, ['plugins', 'list', '--json']);
    for (const r of [set, shown, listed]) expect(r.stdout + r.stderr).not.toContain(good);
    const env = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', 'secret={"$env":"IQP_AUTH_SECRET"}', '--json']);
    expect(env.json().config.secret).toEqual({ $env: 'IQP_AUTH_SECRET' });
  });

  it('refuses an object setting missing a field it requires (rate_limits.per_ip.duration_s), naming it', async () => {
    const dir = await newRegistryDir('iqp-auth-secret-');
    expect((await iqpOnData(dir, ['plugins', 'enable', 'auth'])).code).toBe(0);
    const unchanged = readFileSync(join(dir, 'server.json'), 'utf8');
    const r = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', 'rate_limits={"per_ip":{"points":1000}}', '--json']);
    expect(r.code).toBe(2);
    expect(r.json().error).toMatchObject({ code: 'IQP_E_PLUGIN_CONFIG', details: { plugin: 'auth', key: 'rate_limits.per_ip.duration_s' } });
    expect(readFileSync(join(dir, 'server.json'), 'utf8')).toBe(unchanged);
  });

  it('masks a secret nested in an object (smtp.password) wherever the config is shown', async () => {
    const dir = await newRegistryDir('iqp-auth-secret-');
    expect((await iqpOnData(dir, ['plugins', 'enable', 'auth'])).code).toBe(0);
    const password = `mail-${randomBytes(12).toString('hex')}`;
    const smtp = { host: 'smtp.example.org', from: 'iqp@example.org', user: 'iqp', password };
    const set = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', `smtp=${JSON.stringify(smtp)}`, '--json']);
    expect(set.code).toBe(0);
    expect(set.json().config.smtp).toMatchObject({ host: 'smtp.example.org', user: 'iqp', password: '********' });
    const shown = await iqpOnData(dir, ['plugins', 'config', 'auth']);
    const listed = await iqpOnData(dir, ['plugins', 'list', '--json']);
    for (const r of [set, shown, listed]) expect(r.stdout + r.stderr).not.toContain(password);
    expect(readFileSync(join(dir, 'server.json'), 'utf8')).toContain(password);
    const env = await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', `smtp=${JSON.stringify({ ...smtp, password: { $env: 'IQP_SMTP_PASSWORD' } })}`, '--json']);
    expect(env.json().config.smtp.password).toEqual({ $env: 'IQP_SMTP_PASSWORD' });
  });

  it('is checked at server start, and neither the start nor the log prints it', async () => {
    const dir = await newRegistryDir('iqp-auth-secret-');
    expect((await iqpOnData(dir, ['plugins', 'enable', 'auth', '--required'])).code).toBe(0);
    expect((await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', 'secret={"$env":"IQP_AUTH_SECRET"}'])).code).toBe(0);
    const bad = 'not-32-bytes-of-anything';
    const refused = await iqpOnData(dir, ['server', 'start', '--port', '0', '--json'], { IQP_AUTH_SECRET: bad });
    expect(refused.code).toBe(2);
    expect(refused.json()).toMatchObject({ error: { code: 'IQP_E_PLUGIN_CONFIG', details: { plugin: 'auth' } } });
    expect(refused.json().error.message).toContain('config secret is not in the expected form');
    expect(refused.stdout + refused.stderr).not.toContain(bad);

    const server = await spawnServer(dir, [], { IQP_AUTH_SECRET: good });
    try {
      const r = await post(`${server.url}/v1/auth/register`, { email: 'ann@example.org', password: 'x7#kq2Lm-river-stone' });
      expect(r.status).toBe(202);
      expect(JSON.stringify(server.info)).not.toContain(good);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    expect(server.stderr()).not.toContain(good);
    expect(server.stderr()).not.toContain(Buffer.from(good, 'base64').toString('base64url').slice(0, 20));
    expect(existsSync(join(dir, 'plugins', 'auth', 'server.key')), 'a configured secret replaces server.key').toBe(false);
    expect(statSync(join(dir, 'server.json')).isFile()).toBe(true);
  });
});
