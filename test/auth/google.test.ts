/** Google sign-in against a key set served on loopback, with ID tokens this test signs. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthConfig } from '../../plugins/auth/config.js';
import { type AuthHarness, authHarness, PASSWORD, post } from './support.js';

let h: AuthHarness | null = null;
let server: Server | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
  if (server) await new Promise((r) => server!.close(r));
  server = null;
});

interface Signer {
  kid: string;
  key: CryptoKey;
  jwk: JWK;
}

async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** A key set on loopback that counts its fetches; `published` can change between requests. */
async function googleKeys(published: Signer[]) {
  const state = { published, fetches: 0 };
  server = createServer((_req, res) => {
    state.fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: state.published.map((s) => s.jwk) }));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/v3/certs` };
}

async function idToken(s: Signer, h: AuthHarness, claims: Record<string, unknown> = {}) {
  const now = Math.floor(h.clock.nowMs() / 1000);
  return new SignJWT({ iss: 'https://accounts.google.com', aud: 'client-1', sub: 'google-sub-1', email: 'gina@example.org', email_verified: true, iat: now, exp: now + 3600, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: s.kid, typ: 'JWT' })
    .sign(s.key);
}

async function setup(google: Partial<AuthConfig['google']> = {}) {
  const s1 = await signer('g1');
  const keys = await googleKeys([s1]);
  h = await authHarness({ config: { google: { jwks_url: keys.url, client_ids: ['client-1', 'client-2'], jwks_cooldown_s: 0, ...google } } });
  return { s1, keys, h };
}

async function refusedAs(token: string, code = 'IQP_E_GOOGLE_TOKEN_INVALID', nonce?: string) {
  const r = await post(`${h!.url}/google`, { id_token: token, ...(nonce ? { nonce } : {}) });
  expect(r.status, JSON.stringify(r.body)).toBe(code === 'IQP_E_ACCOUNT_CONFLICT' ? 409 : 401);
  expect(r.body.error.code).toBe(code);
}

describe('Google sign-in', () => {
  it('creates a verified account for a new Google user and signs the same user in again by sub', async () => {
    const { s1, h } = await setup();
    const first = await post(`${h.url}/google`, { id_token: await idToken(s1, h, { nonce: 'n-1' }), nonce: 'n-1', device_id: 'device-gina-1' });
    expect(first.status).toBe(200);
    expect(first.body.user).toMatchObject({ email: 'gina@example.org', email_verified: true });
    const again = await post(`${h.url}/google`, { id_token: await idToken(s1, h, { iss: 'accounts.google.com', aud: 'client-2', email: 'renamed@example.org' }) });
    expect(again.body.user.id).toBe(first.body.user.id);
    expect(await h.auth.verifyAccessToken(first.body.access_token)).toMatchObject({ userId: first.body.user.id, deviceId: 'device-gina-1' });
  });

  it('refuses a wrong aud, a wrong iss, an expired token, a wrong nonce, another hd, and an unverified email', async () => {
    const { s1, h } = await setup({ hd: 'example.org' });
    await refusedAs(await idToken(s1, h, { aud: 'someone-else', hd: 'example.org' }));
    await refusedAs(await idToken(s1, h, { iss: 'https://evil.example', hd: 'example.org' }));
    await refusedAs(await idToken(s1, h, { exp: Math.floor(h.clock.nowMs() / 1000) - 31, hd: 'example.org' }));
    await refusedAs(await idToken(s1, h, { nonce: 'n-1', hd: 'example.org' }), 'IQP_E_GOOGLE_TOKEN_INVALID', 'n-2');
    await refusedAs(await idToken(s1, h, { hd: 'other.org' }));
    await refusedAs(await idToken(s1, h));
    await refusedAs(await idToken(s1, h, { hd: 'example.org', email_verified: false }));
    await refusedAs('not.a.token');
    expect(await h.admin.listUsers()).toEqual([]);
    expect((await post(`${h.url}/google`, { id_token: await idToken(s1, h, { hd: 'example.org' }) })).status).toBe(200);
  });

  it('refetches the key set once for an unknown kid, and refuses a kid still unknown', async () => {
    const { s1, keys, h } = await setup();
    expect((await post(`${h.url}/google`, { id_token: await idToken(s1, h) })).status).toBe(200);
    expect(keys.state.fetches).toBe(1);
    const s2 = await signer('g2');
    keys.state.published = [s1, s2];
    expect((await post(`${h.url}/google`, { id_token: await idToken(s2, h) })).status).toBe(200);
    expect(keys.state.fetches).toBe(2);
    const stranger = await signer('g3');
    await refusedAs(await idToken(stranger, h));
    expect(keys.state.fetches).toBe(3);
  });

  it('does not refetch for an unknown kid within the cooldown', async () => {
    const { s1, keys, h } = await setup({ jwks_cooldown_s: 30 });
    expect((await post(`${h.url}/google`, { id_token: await idToken(s1, h) })).status).toBe(200);
    const stranger = await signer('g3');
    await refusedAs(await idToken(stranger, h));
    await refusedAs(await idToken(stranger, h));
    expect(keys.state.fetches).toBe(1);
  });

  it('never links to a local account whose email is unverified; links to a verified one', async () => {
    const { s1, h } = await setup();
    await post(`${h.url}/register`, { email: 'gina@example.org', password: PASSWORD });
    await refusedAs(await idToken(s1, h), 'IQP_E_ACCOUNT_CONFLICT');
    expect(await h.db.all('SELECT * FROM auth_identities')).toEqual([]);
    await h.admin.createUser({ email: 'vera@example.org', password: PASSWORD }, 'cli:test');
    const r = await post(`${h.url}/google`, { id_token: await idToken(s1, h, { sub: 'google-sub-2', email: 'Vera@example.org' }) });
    expect(r.status).toBe(200);
    expect(r.body.user.email).toBe('vera@example.org');
    expect((await post(`${h.url}/login`, { email: 'vera@example.org', password: PASSWORD })).body.user.id).toBe(r.body.user.id);
  });

  it('is refused with a clear message when no client ids are configured', async () => {
    const { s1, h } = await setup({ client_ids: [] });
    const r = await post(`${h.url}/google`, { id_token: await idToken(s1, h) });
    expect(r.body.error).toMatchObject({ code: 'IQP_E_GOOGLE_TOKEN_INVALID', message: expect.stringMatching(/no Google client ids/) });
  });
});
