/**
 * docs/openapi.json documents the built-in plugins' routes under /v1/<id> (openapi.test.ts holds
 * the whole document to the code). Here: what it says about the auth plugin's routes (request
 * media types, error codes, bearer security) and that a real registry running the plugin answers
 * as documented, through a whole account's life; and that a registry whose plugin failed to start
 * answers its routes with the documented 503.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import { AUTH_ADMIN_V1 } from '../../server/plugins/api.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { expectConforms, type Json, sendTo, spec } from './openapi-helpers.js';

const FORM = 'application/x-www-form-urlencoded';
const op = (path: string, method: string) => spec['paths'][path]?.[method] as Json;
const codesAt = (o: Json, status: number) => (o['responses'][String(status)]?.['content']?.['application/json']?.['schema']?.['properties']?.['error']?.['properties']?.['code']?.['enum'] ?? []) as string[];

describe('the auth plugin in docs/openapi.json', () => {
  it('lists its routes under /v1/auth with their tag, and its user routes need a bearer token', () => {
    const paths = Object.keys(spec['paths']).filter((p) => p.startsWith('/v1/auth/'));
    expect(paths).toEqual(expect.arrayContaining(['/v1/auth/register', '/v1/auth/login', '/v1/auth/refresh', '/v1/auth/logout', '/v1/auth/me', '/v1/auth/jwks.json']));
    expect((spec['tags'] as Json[]).find((t) => t['name'] === 'auth')?.['description']).toMatch(/Accounts/);
    expect(op('/v1/auth/me', 'get')).toMatchObject({ tags: ['auth'], operationId: 'auth.me', security: [{ bearer: ['user'] }] });
    expect(op('/v1/auth/login', 'post')['security']).toBeUndefined();
    expect(spec['components']['securitySchemes']['bearer']).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('names the codes each route answers, the plugin’s own and the host’s', () => {
    const refresh = op('/v1/auth/refresh', 'post');
    expect(codesAt(refresh, 401)).toEqual(expect.arrayContaining(['IQP_E_REFRESH_REUSED', 'IQP_E_TOKEN_INVALID']));
    expect(codesAt(refresh, 429)).toEqual(['IQP_E_RATE_LIMITED']);
    expect(codesAt(refresh, 400)).toContain('IQP_E_INVALID_REQUEST');
    expect(codesAt(refresh, 503)).toContain('IQP_E_PLUGIN_UNAVAILABLE');
    expect(codesAt(refresh, 500)).toEqual(expect.arrayContaining(['IQP_E_INTERNAL', 'IQP_E_PLUGIN_FAILED']));
    expect(codesAt(op('/v1/auth/login', 'post'), 401)).toContain('IQP_E_INVALID_CREDENTIALS');
    expect(codesAt(op('/v1/auth/me', 'get'), 401)).toEqual(expect.arrayContaining(['IQP_E_UNAUTHORIZED', 'IQP_E_TOKEN_EXPIRED', 'IQP_E_TOKEN_INVALID']));
  });

  it('documents the refresh body as JSON or a form with one schema, and the other bodies as JSON only', () => {
    const content = op('/v1/auth/refresh', 'post')['requestBody']['content'] as Json;
    expect(Object.keys(content)).toEqual(['application/json', FORM]);
    expect(content[FORM]['schema']).toEqual(content['application/json']['schema']);
    expect(content[FORM]['schema']['properties']).toMatchObject({ grant_type: { const: 'refresh_token' }, refresh_token: { type: 'string' } });
    for (const path of ['/v1/auth/login', '/v1/auth/register', '/v1/auth/logout']) expect(Object.keys(op(path, 'post')['requestBody']['content']), path).toEqual(['application/json']);
  });
});

// ---------- a registry running the plugin answers as documented ----------

const work = mkdtempSync(join(tmpdir(), 'iqp-openapi-plugins-'));
const servers: RunningServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
  rmSync(work, { recursive: true, force: true });
});

async function registry(name: string, auth: Json): Promise<RunningServer> {
  const dataDir = join(work, name);
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ plugins: { auth: { enabled: true, source: 'builtin', ...auth } } }));
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {}, { validateResponses: true });
  servers.push(running);
  return running;
}

describe('a registry running the auth plugin', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await registry('running', { required: true });
  });

  /** Sends and checks the answer against the document; returns status and parsed body. */
  async function conforming(method: string, path: string, init: { json?: unknown; form?: string; token?: string; type?: string } = {}): Promise<{ status: number; body: Json | undefined; headers: Headers }> {
    const headers: Record<string, string> = {};
    if (init.token) headers['authorization'] = `Bearer ${init.token}`;
    let body: string | undefined;
    if (init.json !== undefined) [headers['content-type'], body] = ['application/json', JSON.stringify(init.json)];
    if (init.form !== undefined) [headers['content-type'], body] = [init.type ?? FORM, init.form];
    const { res, body: text } = await sendTo(server.url, method, path.replace(/\{id\}/, 'dev-00000001'), { headers, ...(body === undefined ? {} : { body }) });
    return { status: res.status, body: expectConforms(method.toLowerCase(), path, res, text), headers: res.headers };
  }

  it('through sign-up, verification, sign-in, the account, refresh (JSON and form), devices and sign-out', async () => {
    const email = 'ann@example.org';
    const password = 'x7#kq2Lm-river-stone';
    expect((await conforming('POST', '/v1/auth/register', { json: { email, password } })).status).toBe(202);
    expect((await conforming('POST', '/v1/auth/register', { json: { email, password: 'short' } })).status).toBe(422);
    const mail = (await server.plugins!.service(AUTH_ADMIN_V1)!.readOutbox()).find((m) => m.to === email)!;
    const code = /code is (\d{6})/.exec(mail.text)![1]!;
    expect((await conforming('POST', '/v1/auth/verify-email', { json: { email, code: code === '000000' ? '111111' : '000000' } })).status).toBe(400);
    expect((await conforming('POST', '/v1/auth/verify-email', { json: { email, code } })).body).toEqual({ email_verified: true });
    expect((await conforming('POST', '/v1/auth/resend-verification', { json: { email } })).status).toBe(202);

    expect((await conforming('POST', '/v1/auth/login', { json: { email, password: 'wrong password' } })).status).toBe(401);
    const signedIn = await conforming('POST', '/v1/auth/login', { json: { email, password, device_id: 'dev-00000001', device_name: 'Pixel' } });
    expect(signedIn.status).toBe(200);
    const { access_token, refresh_token } = signedIn.body as { access_token: string; refresh_token: string };
    expect((await conforming('GET', '/v1/auth/me', { token: access_token })).body).toMatchObject({ email, email_verified: true });
    expect((await conforming('GET', '/v1/auth/me')).status).toBe(401);
    expect((await conforming('GET', '/v1/auth/devices', { token: access_token })).body!['devices']).toHaveLength(1);
    expect((await conforming('POST', '/v1/auth/devices', { token: access_token, json: { device_id: 'dev-00000002', name: 'Tablet' } })).status).toBe(201);
    expect((await conforming('DELETE', '/v1/auth/devices/{id}', { token: access_token })).status).toBe(204);
    expect((await conforming('DELETE', '/v1/auth/devices/{id}', { token: access_token })).status).toBe(404);
    const jwks = await conforming('GET', '/v1/auth/jwks.json');
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');

    // Removing dev-00000001 ended its session: sign in again, then refresh as JSON and as a form.
    const again = (await conforming('POST', '/v1/auth/login', { json: { email, password, device_id: 'dev-00000003' } })).body!;
    expect((await conforming('POST', '/v1/auth/refresh', { json: { refresh_token } })).status).toBe(401);
    const byJson = await conforming('POST', '/v1/auth/refresh', { json: { refresh_token: again['refresh_token'], device_id: 'dev-00000003' } });
    expect(byJson.status).toBe(200);
    const form = `grant_type=refresh_token&refresh_token=${encodeURIComponent(byJson.body!['refresh_token'] as string)}&device_id=dev-00000003`;
    expect((await conforming('POST', '/v1/auth/refresh', { form: `${form}&device_id=dev-00000003` })).status).toBe(400);
    expect((await conforming('POST', '/v1/auth/refresh', { form, type: 'text/plain' })).status).toBe(400);
    const byForm = await conforming('POST', '/v1/auth/refresh', { form });
    expect(byForm.status).toBe(200);
    expect(byForm.body!['refresh_token']).not.toBe(byJson.body!['refresh_token']);

    expect((await conforming('POST', '/v1/auth/password-reset/request', { json: { email } })).status).toBe(202);
    expect((await conforming('POST', '/v1/auth/password-reset/confirm', { json: { token: 'no.such', password: 'a fine new passphrase' } })).status).toBe(400);
    expect((await conforming('POST', '/v1/auth/google', { json: { id_token: 'not.a.jwt' } })).status).toBe(401);
    expect((await conforming('POST', '/v1/auth/logout', { json: { refresh_token: byForm.body!['refresh_token'] } })).status).toBe(204);
    const other = (await conforming('POST', '/v1/auth/login', { json: { email, password } })).body!;
    expect((await conforming('POST', '/v1/auth/password', { token: other['access_token'] as string, json: { current_password: password, new_password: 'another fine passphrase' } })).status).toBe(200);
    expect((await conforming('DELETE', '/v1/auth/me', { token: other['access_token'] as string })).status).toBe(204);
  });
});

describe('a registry whose auth plugin failed to start', () => {
  it('answers its routes 503 IQP_E_PLUGIN_UNAVAILABLE, as documented, and says degraded on /v1/health', async () => {
    // access_ttl_s below the schema's minimum: the plugin is left out, the registry serves.
    const server = await registry('failed', { required: false, config: { access_ttl_s: 1 } });
    for (const [method, path, init] of [
      ['POST', '/v1/auth/refresh', { headers: { 'content-type': FORM }, body: 'refresh_token=x' }],
      ['GET', '/v1/auth/me', {}],
    ] as const) {
      const { res, body } = await sendTo(server.url, method, path, init);
      expect(res.status).toBe(503);
      expect(expectConforms(method.toLowerCase(), path, res, body)!['error']['code']).toBe('IQP_E_PLUGIN_UNAVAILABLE');
    }
    const { res, body } = await sendTo(server.url, 'GET', '/v1/health');
    expect(expectConforms('get', '/v1/health', res, body)).toMatchObject({ status: 'degraded', plugins: { loaded: [], failed: [{ id: 'auth', code: 'IQP_E_PLUGIN_CONFIG' }] } });
  });
});
