/**
 * The auth plugin on several servers: two `iqp server start` processes with data directories of
 * their own over one PostgreSQL database, as two machines behind a load balancer run them. With
 * the same `secret`, a session moves freely between them and a key rotation counts on both; with
 * different secrets, neither hands out a token that cannot work nor signs with a key it cannot open.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { KeySealer } from '../../plugins/auth/crypto/seal.js';
import { describePg, type TestSchema } from '../postgres/harness.js';
import { pgServersPerTest } from '../postgres/servers.js';
import { type ChildServer, call, iqpOnData, tempDir } from '../server/helpers.js';

const PASSWORD = 'x7#kq2Lm-river-stone';
const EMAIL = 'ann@example.org';
const kidOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).kid as string;
const newSecret = () => randomBytes(32).toString('base64');

const servers = pgServersPerTest();


/** A machine: its own data directory, the auth plugin required, its secret read from IQP_AUTH_SECRET. */
async function machine(env: Record<string, string>): Promise<string> {
  const dir = tempDir('iqp-auth-scale-');
  expect((await iqpOnData(dir, ['plugins', 'enable', 'auth', '--required'], env)).code).toBe(0);
  expect((await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', 'secret={"$env":"IQP_AUTH_SECRET"}'], env)).code).toBe(0);
  return dir;
}

const start = (dir: string, env: Record<string, string>): Promise<ChildServer> => servers.start(dir, env);

const login = (server: ChildServer) => call(server.url, '/v1/auth/login', { method: 'POST', json: { email: EMAIL, password: PASSWORD } });
const refresh = (server: ChildServer, token: string) => call(server.url, '/v1/auth/refresh', { method: 'POST', json: { refresh_token: token } });
const me = (server: ChildServer, access: string) => call(server.url, '/v1/auth/me', { token: access });

async function sealedKey(s: TestSchema, kid: string): Promise<string> {
  const client = new pg.Client({ connectionString: s.url() });
  await client.connect();
  try {
    return (await client.query('SELECT private_jwk_sealed FROM auth_signing_keys WHERE kid = $1', [kid])).rows[0].private_jwk_sealed;
  } finally {
    await client.end();
  }
}

describePg('the auth plugin on two servers sharing one PostgreSQL database', () => {
  it('with the same secret: a session signed in on one refreshes on the other, and a rotation counts on both at once', { timeout: 90_000 }, async () => {
    const schema = await servers.schema();
    const secret = newSecret();
    const env = { IQP_DATABASE_URL: schema.url(), IQP_AUTH_SECRET: secret };
    const [dirA, dirB] = [await machine(env), await machine(env)];
    expect((await iqpOnData(dirA, ['users', 'create', EMAIL], { ...env, IQP_USER_PASSWORD: PASSWORD })).code).toBe(0);
    const [a, b] = [await start(dirA, env), await start(dirB, env)];

    const signedIn = await login(a);
    expect(signedIn.status).toBe(200);
    const first = signedIn.json();
    const onB = await refresh(b, first.refresh_token);
    expect(onB.status, onB.body.toString()).toBe(200);
    // The same refresh replayed on A within the grace period: the same successor, as on one server.
    const replayed = await refresh(a, first.refresh_token);
    expect(replayed.status).toBe(200);
    expect(replayed.json().refresh_token).toBe(onB.json().refresh_token);
    expect(kidOf(onB.json().access_token), 'both sign with the one current key').toBe(kidOf(first.access_token));
    expect((await me(a, onB.json().access_token)).status).toBe(200);
    expect((await me(b, first.access_token)).status).toBe(200);

    // A rotation from a third machine, against the database alone.
    const dirC = await machine(env);
    const rotated = await iqpOnData(dirC, ['auth', 'rotate-key', '--json'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.json()).toEqual({ kid: expect.any(String), previous_kid: kidOf(first.access_token) });
    for (const server of [a, b]) {
      expect(kidOf((await login(server)).json().access_token), 'the next token is signed with the new key').toBe(rotated.json().kid);
      expect((await me(server, first.access_token)).status, 'tokens of the old key keep verifying').toBe(200);
    }

    for (const [dir, server] of [[dirA, a], [dirB, b], [dirC, null]] as const) {
      expect(existsSync(join(dir, 'plugins', 'auth', 'server.key')), 'no server.key with a configured secret').toBe(false);
      expect(existsSync(join(dir, 'plugins', 'auth', 'keys')), 'no key files').toBe(false);
      if (server) {
        expect(server.stderr()).not.toContain(secret);
        expect(JSON.stringify(server.info)).not.toContain(secret);
      }
    }
    expect(a.stderr(), 'the shared-secret warning is for servers without one').not.toContain('no auth secret is configured');
  });

  it('with different secrets: a replay another server answered is refused cleanly, and no server signs with a key it cannot open', { timeout: 90_000 }, async () => {
    const schema = await servers.schema();
    const [secretA, secretB] = [newSecret(), newSecret()];
    const envA = { IQP_DATABASE_URL: schema.url(), IQP_AUTH_SECRET: secretA };
    const envB = { ...envA, IQP_AUTH_SECRET: secretB };
    const [dirA, dirB] = [await machine(envA), await machine(envB)];
    expect((await iqpOnData(dirA, ['users', 'create', EMAIL], { ...envA, IQP_USER_PASSWORD: PASSWORD })).code).toBe(0);
    const a = await start(dirA, envA);
    const first = (await login(a)).json();
    const keyA = kidOf(first.access_token);
    const b = await start(dirB, envB);

    const next = await refresh(a, first.refresh_token);
    expect(next.status).toBe(200);
    const replayed = await refresh(b, first.refresh_token);
    expect(replayed.status).toBe(401);
    expect(replayed.json().error.code).toBe('IQP_E_TOKEN_INVALID');
    expect((await refresh(a, next.json().refresh_token)).status, 'the session was not ended by it').toBe(200);

    const onB = await login(b);
    expect(onB.status).toBe(200);
    const keyB = kidOf(onB.json().access_token);
    expect(keyB).not.toBe(keyA);
    const sealed = await sealedKey(schema, keyB);
    expect(new KeySealer(Buffer.from(secretB, 'base64')).open(sealed, keyB), 'B signs with a key sealed under its secret').not.toBeNull();
    expect(new KeySealer(Buffer.from(secretA, 'base64')).open(sealed, keyB)).toBeNull();
    expect(b.stderr()).toContain('cannot be used by this server');
    // Public keys are shared: each verifies the other's tokens until they expire.
    expect((await me(b, first.access_token)).status).toBe(200);
    expect((await me(a, onB.json().access_token)).status).toBe(200);
    for (const [server, secret] of [[a, secretA], [b, secretB]] as const) expect(server.stderr()).not.toContain(secret);
  });

  it('without a secret, warns at start that sessions and mail stay on this machine', { timeout: 60_000 }, async () => {
    const schema = await servers.schema();
    const env = { IQP_DATABASE_URL: schema.url() };
    const dir = tempDir('iqp-auth-scale-');
    expect((await iqpOnData(dir, ['plugins', 'enable', 'auth', '--required'], env)).code).toBe(0);
    const server = await start(dir, env);
    expect((await call(server.url, '/v1/auth/jwks.json')).status).toBe(200);
    expect(server.stderr()).toContain('no auth secret is configured');
    expect(server.stderr()).toContain('no smtp is configured');
  });
});
