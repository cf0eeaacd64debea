/**
 * What answers give away and how they are labelled: no server path in /v1/health's 503, nosniff on
 * every JSON answer (the ones served before Express too), 405 with Allow for a wrong method on a
 * known path, and metrics labelled with the full route whatever the outcome.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTemplatePack, call, newKey, rawGet, startRegistry, tempDir, type TestKey, type TestRegistry, upload, withDatabase } from '../server/helpers.js';

let key: TestKey;
let reg: TestRegistry;

beforeAll(async () => {
  key = newKey();
  reg = await startRegistry({ keys: [key] });
  const pack = await buildTemplatePack(tempDir('iqp-hostile-resp-'), key, { authored: { package_id: 'resp.pack', version: '1.0.0' } });
  expect((await upload(reg.url, reg.publisher, pack.path)).status).toBe(201);
});

afterAll(async () => {
  await reg?.close();
});

it('/v1/health says which check failed, but the why (with its server path) goes to the log only', async () => {
  const other = await startRegistry({});
  try {
    rmSync(join(other.dataDir, 'tmp'), { recursive: true });
    const r = await call(other.url, '/v1/health');
    expect(r.status).toBe(503);
    expect(r.json()).toMatchObject({ status: 'unavailable', checks: { database: 'ok', blobs: 'failed' }, error: { code: 'IQP_E_UNAVAILABLE' } });
    expect(r.body.toString('utf8')).not.toContain(other.dataDir);
    expect(r.body.toString('utf8')).not.toMatch(/ENOENT|\//);
    expect(other.logs.some((l) => l['level'] === 'error' && String(l['error']).includes(join(other.dataDir, 'tmp'))), 'the log has the details').toBe(true);
  } finally {
    await other.close();
  }
});

describe('X-Content-Type-Options: nosniff', () => {
  it('on every JSON answer: computed, cached (before Express), 304, errors', async () => {
    const manifest = '/v1/packs/resp.pack/1.0.0/manifest';
    const computed = await rawGet(reg.url, `${manifest}`);
    const cached = await rawGet(reg.url, manifest);
    const revalidated = await rawGet(reg.url, manifest, [`If-None-Match: ${cached.headers['etag']}`]);
    expect(revalidated.status).toBe(304);
    for (const [what, r] of [
      ['computed', computed],
      ['cached', cached],
      ['304', revalidated],
      ['health', await rawGet(reg.url, '/v1/health')],
      ['404', await rawGet(reg.url, '/v1/packs/no.such')],
      ['400', await rawGet(reg.url, '/v1/packs/available?app_version=x')],
      ['401', await rawGet(reg.url, '/v1/admin/keys')],
      ['download', await rawGet(reg.url, '/v1/packs/resp.pack/download?version=1.0.0')],
    ] as const) {
      expect(r.headers['x-content-type-options'], what).toBe('nosniff');
    }
  });
});

describe('wrong methods', () => {
  it('405 IQP_E_METHOD_NOT_ALLOWED with Allow on a known path, changing nothing; unknown paths stay 404', async () => {
    const audit = () => withDatabase(reg.dataDir, (db) => db.prepare('SELECT COUNT(*) FROM audit_log').pluck().get());
    const before = audit();
    for (const [method, path, allow] of [
      ['POST', '/v1/packs', 'GET, HEAD'],
      ['DELETE', '/v1/packs/resp.pack', 'GET, HEAD'],
      ['PUT', '/v1/packs/resp.pack/download', 'GET, HEAD'],
      ['DELETE', '/v1/admin/audit', 'GET, HEAD'],
      ['PATCH', '/v1/admin/keys', 'GET, HEAD, POST'],
      ['GET', '/v1/admin/packs', 'PUT'],
      ['POST', '/v1/health/', 'GET, HEAD'],
      ['DELETE', '/V1/KEYS', 'GET, HEAD'],
    ] as const) {
      const r = await call(reg.url, path, { method, token: reg.admin, ...(method === 'GET' ? {} : { json: {} }) });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(r.json().error.code).toBe('IQP_E_METHOD_NOT_ALLOWED');
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
    for (const [method, path] of [['GET', '/v1/nope'], ['POST', '/v1/packs/a/b/c/d'], ['DELETE', '/v2/packs']] as const) {
      const r = await call(reg.url, path, { method });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.headers.get('allow')).toBeNull();
    }
    expect(audit(), 'nothing was done').toBe(before);
  });
});

describe('metrics', () => {
  it('label every request with its full route, failures included', async () => {
    const count = async (route: string, status: string) => {
      const text = (await call(reg.url, '/v1/metrics')).body.toString('utf8');
      const line = text.split('\n').find((l) => l.startsWith(`iqp_http_requests_total{method="GET",route="${route}",status="${status}"}`));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const cases: [string, string, string, string | undefined][] = [
      ['/v1/admin/keys', '/v1/admin/keys', '401', undefined],
      ['/v1/admin/keys', '/v1/admin/keys', '403', reg.publisher],
      ['/v1/admin/keys', '/v1/admin/keys', '200', reg.admin],
      ['/v1/keys', '/v1/keys', '200', undefined],
      ['/v1/admin/audit?limit=0', '/v1/admin/audit', '400', reg.admin],
      ['/v1/packs/no.such', '/v1/packs/:id', '404', undefined],
      ['/v1/admin/releases/1', '/v1/admin/releases/:id', '404', reg.admin],
    ];
    for (const [path, route, status, token] of cases) {
      const before = await count(route, status);
      const r = await call(reg.url, path, token ? { token } : {});
      expect(r.status, path).toBe(Number(status));
      expect(await count(route, status), `${path} counted as ${route} ${status}`).toBe(before + 1);
    }
    const text = (await call(reg.url, '/v1/metrics')).body.toString('utf8');
    expect(text, 'no router-relative labels').not.toMatch(/route="\/(keys|audit|releases)/);
  });

  it('a wrong method on a known path is labelled with that path', async () => {
    const count = async () => Number(/iqp_http_requests_total\{method="POST",route="\/v1\/packs\/:id",status="405"\} (\d+)/.exec((await call(reg.url, '/v1/metrics')).body.toString('utf8'))?.[1] ?? 0);
    const before = await count();
    expect((await call(reg.url, '/v1/packs/resp.pack', { method: 'POST' })).status).toBe(405);
    expect(await count()).toBe(before + 1);
  });
});
