/**
 * Hostile access tokens against a protected auth route (GET /v1/auth/me): every forgery,
 * confusion and malformation is a 401, never a 5xx, and only a genuine, fresh token passes.
 */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { AUTH_ADMIN_V1 } from '../../server/plugins/api.js';
import { withPlugins } from '../../server/plugins/offline.js';
import { type AuthHarness, authHarness, currentPrivateKey, post, signedIn } from '../auth/support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const parts = (t: string) => t.split('.') as [string, string, string];
const decode = (p: string) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));

async function me(token: string) {
  return post(`${h!.url}/me`, undefined, token, 'GET');
}

async function refused(token: string, code = 'IQP_E_UNAUTHORIZED') {
  const r = await me(token);
  expect(r.status, `${token.slice(0, 80)} → ${JSON.stringify(r.body)}`).toBe(401);
  expect(r.body.error.code).toBe(code);
  expect(await h!.auth.verifyAccessToken(token)).toBeNull();
}

/** A token signed with the registry's real key, with claims and header as given. */
async function forged(claims: Record<string, unknown>, header: Record<string, unknown> = {}, omit: string[] = []) {
  const { kid, key } = await currentPrivateKey(h!);
  const now = Math.floor(h!.clock.nowMs() / 1000);
  const base: Record<string, unknown> = { iss: h!.config.issuer, aud: h!.config.audience, sub: 'u1', sid: 's1', roles: ['user'], ev: true, iat: now, exp: now + 600, ...claims };
  for (const k of omit) delete base[k];
  return new SignJWT(base).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid, ...header }).sign(key);
}

describe('access tokens', () => {
  it('accepts a genuine token, and the forged-token helper is genuine when unaltered', async () => {
    h = await authHarness();
    const { access_token, user } = await signedIn(h);
    expect((await me(access_token)).body).toMatchObject({ id: user.id, email: 'ann@example.org' });
    const header = decode(parts(access_token)[0]);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    expect(decode(parts(access_token)[1])).toMatchObject({ iss: 'iqp', aud: 'iqp-apps', sub: user.id, roles: ['user'], exp: expect.any(Number), iat: expect.any(Number), sid: expect.any(String) });
    expect(await h.auth.verifyAccessToken(await forged({}))).toMatchObject({ userId: 'u1', sessionId: 's1', roles: ['user'] });
  });

  it('refuses alg none, HS256 keyed with the public key, and a header alg other than the key’s', async () => {
    h = await authHarness();
    const { access_token } = await signedIn(h);
    const [head, body] = parts(access_token);
    const header = decode(head);
    await refused(`${b64({ ...header, alg: 'none' })}.${body}.`);
    const jwks = (await post(`${h.url}/jwks.json`, undefined, undefined, 'GET')).body;
    const publicJwk = jwks.keys.find((k: any) => k.kid === header.kid);
    for (const secret of [Buffer.from(publicJwk.x, 'base64url'), Buffer.from(JSON.stringify(publicJwk)), Buffer.from(publicJwk.x)]) {
      const hs = await new SignJWT(decode(body)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: header.kid }).sign(secret);
      await refused(hs);
    }
    for (const alg of ['ES256', 'RS256', 'Ed25519', 'EdDSA ']) await refused(`${b64({ ...header, alg })}.${body}.${parts(access_token)[2]}`);
  });

  it('refuses odd kids and key-locating headers before looking up any key', async () => {
    h = await authHarness();
    await refused(await forged({}, { kid: '../../x' }));
    await refused(await forged({}, { kid: 'k'.repeat(10_240) }));
    await refused(await forged({}, { kid: 'unknown-kid' }));
    // Past its exp, a token with a key no longer known is 'expired' (a rotation outlived it) only
    // when it names this registry as issuer and audience and its header passed; 'expired' grants nothing.
    const past = Math.floor(h.clock.nowMs() / 1000) - 3_600;
    await refused(await forged({ iat: past - 60, exp: past }, { kid: 'unknown-kid' }), 'IQP_E_TOKEN_EXPIRED');
    await refused(await forged({ iat: past - 60, exp: past, iss: 'https://evil.example' }, { kid: 'unknown-kid' }));
    await refused(await forged({ iat: past - 60, exp: past, aud: 'another-app' }, { kid: 'unknown-kid' }));
    await refused(await forged({ iat: past - 60, exp: past }, { kid: '../../x' }));
    await refused(await forged({ iat: past - 60, exp: past }, { kid: 'unknown-kid', jku: 'http://127.0.0.1:1/jwks.json' }));
    await refused(await forged({}, { jku: 'http://127.0.0.1:1/jwks.json' }));
    await refused(await forged({}, { x5u: 'http://127.0.0.1:1/cert.pem' }));
    const jwks = (await post(`${h.url}/jwks.json`, undefined, undefined, 'GET')).body;
    await refused(await forged({}, { jwk: jwks.keys[0] }));
  });

  it('refuses a wrong or missing iss or aud, and a typ other than at+jwt', async () => {
    h = await authHarness();
    await refused(await forged({ iss: 'https://evil.example' }));
    await refused(await forged({}, {}, ['iss']));
    await refused(await forged({ aud: 'another-app' }));
    await refused(await forged({}, {}, ['aud']));
    await refused(await forged({}, { typ: 'JWT' }));
    await refused(await forged({}, { typ: 'id_token+jwt' }));
    await refused(await forged({}, {}, ['sid']));
    await refused(await forged({ roles: ['root'] }));
  });

  it('refuses a refresh token, a Google ID token and an email link token presented as an access token', async () => {
    h = await authHarness();
    const { refresh_token } = await signedIn(h);
    await refused(refresh_token);
    const google = await new SignJWT({ email: 'ann@example.org', email_verified: true })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: 'google-kid' })
      .setIssuer('https://accounts.google.com')
      .setAudience('client')
      .setSubject('123')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(Buffer.alloc(32, 1));
    await refused(google);
    await post(`${h.url}/password-reset/request`, { email: 'ann@example.org' });
    const mail = (await h.admin.readOutbox()).at(-1)!;
    const link = /link within 24 hours: (\S+)/.exec(mail.text)![1]!;
    await refused(link);
  });

  it('counts exp and nbf with 30 s of tolerance: 29 s past is accepted, 31 s past is refused as expired', async () => {
    h = await authHarness();
    const { access_token } = await signedIn(h);
    const ttl = h.config.access_ttl_s * 1000;
    h.clock.advance(ttl + 29_000);
    expect((await me(access_token)).status).toBe(200);
    h.clock.advance(2_000);
    await refused(access_token, 'IQP_E_TOKEN_EXPIRED');
    expect(await h.auth.explainRejection(access_token)).toBe('expired');
    const now = Math.floor(h.clock.nowMs() / 1000);
    await refused(await forged({ nbf: now + 60 }));
    expect(await h.auth.verifyAccessToken(await forged({ nbf: now + 20 }))).not.toBeNull();
    expect(await h.auth.explainRejection(await forged({ nbf: now + 60 }))).toBe('invalid');
  });

  it('refuses an edited payload and malformed tokens, never with a 5xx', async () => {
    h = await authHarness();
    const { access_token } = await signedIn(h);
    const [head, body, sig] = parts(access_token);
    await refused(`${head}.${b64({ ...decode(body), roles: ['user', 'publisher', 'admin'] })}.${sig}`);
    // A signature with its first byte's bits changed (its first character carries six data bits; the
    // last carries two, and "AA" for the last two left one signature in 256 as it was).
    await refused(`${head}.${body}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`);
    for (const bad of ['x', 'a.b.c', '..', `${head}..${sig}`, `${head}.${body}`, `${head}.${body}.${sig}.x`, '\u00e9.\u00e9.\u00e9', `${b64('not json')}.${body}.${sig}`, `${head}.${b64('[1,2]')}.${sig}`, 'e'.repeat(8_000)]) {
      await refused(bad);
    }
    // Not sendable in a header, but a consuming plugin may pass any string.
    expect(await h.auth.verifyAccessToken('😀.😀.😀')).toBeNull();
    expect(await h.auth.explainRejection('😀.😀.😀')).toBe('invalid');
  });

  it('keeps a rotated-out key verifying until its last token expires, then refuses it; a rotation by another process is noticed', async () => {
    h = await authHarness();
    const before = await signedIn(h);
    const oldKid = decode(parts(before.access_token)[0]).kid;
    // Another process on the same data directory (iqp auth rotate-key beside the server).
    const rotated = await withPlugins(h.dir, 'auth rotate-key', (host) => host.service(AUTH_ADMIN_V1).rotateKey('cli:auth rotate-key'));
    expect(rotated.previousKid).toBe(oldKid);
    expect((await me(before.access_token)).status).toBe(200);
    h.clock.advance(5_000);
    const after = await signedIn(h);
    expect(decode(parts(after.access_token)[0]).kid).toBe(rotated.kid);
    const kids = (await post(`${h.url}/jwks.json`, undefined, undefined, 'GET')).body.keys.map((k: any) => k.kid);
    expect(kids.sort()).toEqual([oldKid, rotated.kid].sort());
    h.clock.advance((h.config.access_ttl_s + 31) * 1000);
    // Its key has gone, and so has its exp: expired, so the app refreshes (nothing is granted by it).
    await refused(before.access_token, 'IQP_E_TOKEN_EXPIRED');
    expect(await h.auth.explainRejection(before.access_token)).toBe('expired');
    const left = (await post(`${h.url}/jwks.json`, undefined, undefined, 'GET')).body.keys.map((k: any) => k.kid);
    expect(left).toEqual([rotated.kid]);
  });
});
