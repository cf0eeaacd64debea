/**
 * The guard with user access tokens, through a tiny stand-in auth provider (the auth plugin's real
 * JWTs arrive with that plugin): the real registry app over a real data directory, and a route
 * declared with auth 'user' mounted the way a plugin's would be. API-token paths are held by the
 * registry's HTTP tests.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Type from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError } from '../../test/server/http-client.js';
import { tempDir } from '../../test/e2e/helpers.js';
import { route } from '../../src/api/route.js';
import { createApp } from '../app.js';
import { serverConfig } from '../config.js';
import { openStores, type OpenedStores } from '../datadir.js';
import type { AuthServiceV1, Principal } from '../plugins/api.js';
import { systemClock } from '../services/clock.js';
import { TokenService } from '../services/tokens.js';
import { createValidator, mountRoute } from './contract.js';
import { errorHandler } from './errors.js';
import { actorOf, createGuard, principalOf } from './guard.js';

type User = Extract<Principal, { kind: 'user' }>;
const user = (userId: string, roles: User['roles']): User => ({ kind: 'user', userId, sessionId: `s-${userId}`, deviceId: null, roles, emailVerified: true });

/** Access tokens this stand-in knows: `ok-<name>` is valid, `old-<name>` has expired, anything else is invalid. */
const USERS: Record<string, User> = { 'ok-admin': user('u1', ['user', 'admin']), 'ok-publisher': user('u2', ['user', 'publisher']), 'ok-plain': user('u3', ['user']) };
const standIn: AuthServiceV1 = {
  verifyAccessToken: async (token) => USERS[token] ?? null,
  explainRejection: async (token) => (token.startsWith('old-') ? 'expired' : 'invalid'),
  userActive: async () => true,
  may: (principal) => principal.emailVerified,
};

const whoAmI = route({
  id: 'example.whoami',
  method: 'GET',
  path: '/whoami',
  summary: 'Who is calling',
  auth: 'user',
  responses: { 200: { description: 'The caller.', schema: Type.Object({ actor: Type.String() }) } },
});

let stores: OpenedStores;
let provider: AuthServiceV1 | null = null;
let api: { token: string };
let registry: string;
let plugin: string;
const servers: { close(): void }[] = [];

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const dataDir = tempDir('iqp-guard-');
  stores = await openStores(dataDir, 'test');
  const config = serverConfig({ dataDir, host: '127.0.0.1', port: 0 });
  const app = createApp({ config, meta: stores.meta, blobs: stores.blobs, releases: stores.releases, log: () => {}, userAuth: () => provider, validateResponses: true });
  api = await app.services.tokens.create('publisher', 'guard-test', 'test');
  registry = await listen(app.app);

  const other = express();
  const router = express.Router();
  const guard = createGuard({ tokens: new TokenService(stores.meta, systemClock), userAuth: () => provider });
  mountRoute(router, createValidator(), whoAmI, async (_input, _req, res) => ({ actor: `${actorOf(res)} ${principalOf(res)?.kind}` }), { guard, validateResponses: true });
  other.use('/v1/example', router);
  other.use(errorHandler(() => {}));
  plugin = await listen(other);
});

afterAll(async () => {
  for (const s of servers) s.close();
  await stores?.meta.close();
});

describe('user access tokens on core routes', () => {
  it('without an auth provider, a token that is not an API token is refused as today', async () => {
    provider = null;
    const r = await call(registry, '/v1/admin/releases', { token: 'ok-admin' });
    expectError(r, 'IQP_E_UNAUTHORIZED');
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="iqp", error="invalid_token"');
  });

  it('pass publisher and admin routes only with that role (admin includes publisher), asked per request', async () => {
    provider = standIn;
    expect((await call(registry, '/v1/admin/releases', { token: 'ok-publisher' })).status).toBe(200);
    expect((await call(registry, '/v1/admin/releases', { token: 'ok-admin' })).status).toBe(200);
    expect((await call(registry, '/v1/admin/audit', { token: 'ok-admin' })).status).toBe(200);
    expectError(await call(registry, '/v1/admin/audit', { token: 'ok-publisher' }), 'IQP_E_FORBIDDEN');
    expectError(await call(registry, '/v1/admin/releases', { token: 'ok-plain' }), 'IQP_E_FORBIDDEN');
    // API tokens keep working beside the provider.
    expect((await call(registry, '/v1/admin/releases', { token: api.token })).status).toBe(200);
  });

  it('an expired access token is 401 IQP_E_TOKEN_EXPIRED with the expired challenge; an invalid one is 401 invalid_token', async () => {
    provider = standIn;
    const expired = await call(registry, '/v1/admin/releases', { token: 'old-admin' });
    expectError(expired, 'IQP_E_TOKEN_EXPIRED');
    expect(expired.headers.get('www-authenticate')).toBe('Bearer error="invalid_token", error_description="expired"');
    const invalid = await call(registry, '/v1/admin/releases', { token: 'forged' });
    expectError(invalid, 'IQP_E_UNAUTHORIZED');
    expect(invalid.headers.get('www-authenticate')).toBe('Bearer realm="iqp", error="invalid_token"');
  });

  it('the audit log names the user who acted', async () => {
    provider = standIn;
    const created = await call(registry, '/v1/admin/release-profiles/guarded', { method: 'PUT', token: 'ok-publisher', json: { roles: ['text'] } });
    expect(created.status, created.body.toString()).toBe(200);
    const entries = (await call(registry, '/v1/admin/audit', { token: 'ok-admin' })).json().entries as { actor: string }[];
    expect(entries.map((e) => e.actor)).toContain('user:u2');
  });
});

describe("routes with auth 'user'", () => {
  it('take a user principal, and put it on res.locals.principal', async () => {
    provider = standIn;
    const r = await call(plugin, '/v1/example/whoami', { token: 'ok-plain' });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ actor: 'user:u3 user' });
  });

  it('refuse an API token (403), no token (401), and answer 401 when no auth provider runs', async () => {
    provider = standIn;
    expectError(await call(plugin, '/v1/example/whoami', { token: api.token }), 'IQP_E_FORBIDDEN');
    const none = await call(plugin, '/v1/example/whoami');
    expectError(none, 'IQP_E_UNAUTHORIZED');
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="iqp"');
    provider = null;
    expectError(await call(plugin, '/v1/example/whoami', { token: 'ok-plain' }), 'IQP_E_UNAUTHORIZED');
    expectError(await call(plugin, '/v1/example/whoami', { token: api.token }), 'IQP_E_UNAUTHORIZED');
  });
});
