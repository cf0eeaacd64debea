/**
 * The registry's HTTP API on a real socket (startServer on 127.0.0.1:0 over a temp data dir):
 * discovery, manifests, caching, keys, audit, auth and the error contract (JSON `{error:{code,
 * message}}` for every failure, never HTML, never a stack trace).
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSignature, verify } from '../../src/pack/minisign.js';
import { validateManifest } from '../../src/pack/manifest.js';
import {
  buildTemplatePack,
  type BuiltPack,
  call,
  collectPages,
  errorCode,
  expectError,
  newKey,
  rawGet,
  rawRequest,
  sha256,
  startRegistry,
  tempDir,
  type TestKey,
  type TestRegistry,
  upload,
  withRegistry,
} from './helpers.js';

const EN = 'test.translation.en';
const AR = 'test.translation.ar';
const FOODS = 'test.dataset.en';
const DECK = 'test.deck.en';

let reg: TestRegistry;
let key: TestKey;
let work: string;
/** In publish order: 1.10.0 before 1.9.0 and 1.2.0, so neither publish time nor string order finds the newest. */
const published: BuiltPack[] = [];

async function publish(pack: BuiltPack): Promise<void> {
  const r = await upload(reg.url, reg.publisher, pack.path);
  expect(r.status, r.body.toString()).toBe(201);
  published.push(pack);
}

function packOf(id: string, version: string): BuiltPack {
  return published.find((p) => p.package_id === id && p.version === version)!;
}

async function available(query = ''): Promise<Record<string, string>> {
  const r = await call(reg.url, `/v1/packs/available${query}`);
  expect(r.status, r.body.toString()).toBe(200);
  return Object.fromEntries(r.json<{ packs: { package_id: string; version: string }[] }>().packs.map((p) => [p.package_id, p.version]));
}

/** The value of one sample in Prometheus text format (0 when absent). */
function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{` : `${name} `) && (!labels || l.slice(name.length).startsWith(`{${labels}}`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function metrics(): Promise<string> {
  const r = await call(reg.url, '/v1/metrics');
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return r.body.toString('utf8');
}

beforeAll(async () => {
  key = newKey();
  work = tempDir('iqp-http-packs-');
  reg = await startRegistry({ keys: [key] });
  const t = (version: string, extra: Record<string, string> = {}) => buildTemplatePack(work, key, { authored: { package_id: EN, version, ...extra } });
  const builds = await Promise.all([
    t('1.10.0'),
    t('1.9.0'),
    t('1.2.0'),
    t('2.0.0-beta.1'),
    t('1.11.0', { min_app_version: '5.0.0' }),
    buildTemplatePack(work, key, { authored: { package_id: AR, version: '1.0.0', language_code: 'ar' } }),
    buildTemplatePack(work, key, { template: 'dataset', authored: { package_id: FOODS, version: '1.0.0', min_app_version: '2.0.0' } }),
    buildTemplatePack(work, key, { template: 'deck', authored: { package_id: DECK, version: '1.0.0' } }),
    buildTemplatePack(work, key, { template: 'deck', authored: { package_id: DECK, version: '1.1.0' } }),
  ]);
  for (const pack of builds) await publish(pack);
});

afterAll(async () => {
  await reg?.close();
});

describe('health and metrics', () => {
  it('GET /v1/health answers ok with each check', async () => {
    const r = await call(reg.url, '/v1/health');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json()).toEqual({ status: 'ok', checks: { database: 'ok', blobs: 'ok' } });
  });

  it('GET /v1/metrics is Prometheus text with the named metrics, and the counts move', async () => {
    const before = await metrics();
    for (const name of ['iqp_http_requests_total', 'iqp_http_request_duration_seconds', 'iqp_download_bytes_total', 'iqp_uploads_total', 'iqp_upload_bytes_total', 'iqp_packs_stored']) {
      expect(before, name).toContain(`# TYPE ${name} `);
    }
    expect(metric(before, 'iqp_packs_stored')).toBe(published.length);
    expect(metric(before, 'iqp_uploads_total', 'result="created"')).toBe(published.length);

    const extra = await buildTemplatePack(work, key, { authored: { package_id: 'test.metrics', version: '1.0.0' } });
    await publish(extra);
    expect((await upload(reg.url, reg.publisher, extra.path)).status).toBe(200);
    const download = await call(reg.url, `/v1/packs/test.metrics/download?version=1.0.0`);
    expect(download.status).toBe(200);
    await call(reg.url, '/v1/health');

    await expect
      .poll(async () => {
        const after = await metrics();
        return {
          stored: metric(after, 'iqp_packs_stored'),
          created: metric(after, 'iqp_uploads_total', 'result="created"') - metric(before, 'iqp_uploads_total', 'result="created"'),
          identical: metric(after, 'iqp_uploads_total', 'result="identical"') - metric(before, 'iqp_uploads_total', 'result="identical"'),
          uploadBytes: metric(after, 'iqp_upload_bytes_total') - metric(before, 'iqp_upload_bytes_total'),
          downloaded: metric(after, 'iqp_download_bytes_total') - metric(before, 'iqp_download_bytes_total'),
          health: metric(after, 'iqp_http_requests_total', 'method="GET",route="/v1/health",status="200"') > 0,
        };
      })
      .toEqual({ stored: published.length, created: 1, identical: 1, uploadBytes: 2 * extra.size_bytes, downloaded: extra.size_bytes, health: true });
  });
});

describe('GET /v1/packs/available', () => {
  it('lists the newest version of each pack by semver precedence, not by publish time or string order', async () => {
    expect(await available()).toEqual({ [EN]: '1.11.0', [AR]: '1.0.0', [FOODS]: '1.0.0', [DECK]: '1.1.0', 'test.metrics': '1.0.0' });
    expect(await available('?app_version=4.9.9')).toMatchObject({ [EN]: '1.10.0' });
  });

  it('leaves out versions whose min_app_version is above app_version (equal is fine)', async () => {
    const two = await available('?app_version=2.0.0');
    expect(two[EN]).toBe('1.10.0');
    expect(two[FOODS]).toBe('1.0.0');
    expect(await available('?app_version=1.5.0')).not.toHaveProperty(FOODS);
    expect((await available('?app_version=5.0.0'))[EN]).toBe('1.11.0');
  });

  it('filters by type and language', async () => {
    expect(await available('?type=translation')).toEqual({ [EN]: '1.11.0', [AR]: '1.0.0', 'test.metrics': '1.0.0' });
    expect(await available('?lang=ar')).toEqual({ [AR]: '1.0.0' });
    expect(await available('?type=translation&lang=ar')).toEqual({ [AR]: '1.0.0' });
    expect(await available('?type=dataset&app_version=1.0.0')).toEqual({});
    expect(await available('?type=nothing')).toEqual({});
  });

  it('includes prereleases only when asked', async () => {
    expect((await available('?prerelease=true'))[EN]).toBe('2.0.0-beta.1');
    expect((await available('?prerelease=true&app_version=2.0.0'))[EN]).toBe('2.0.0-beta.1');
    expect((await available('?prerelease=false'))[EN]).toBe('1.11.0');
  });

  it('describes each pack with its summary and absolute links', async () => {
    const r = await call(reg.url, '/v1/packs/available?lang=ar&app_version=1.0.0');
    const ar = packOf(AR, '1.0.0');
    expect(r.json()).toEqual({
      app_version: '1.0.0',
      packs: [
        {
          package_id: AR,
          version: '1.0.0',
          package_type: 'translation',
          language_code: 'ar',
          name: ar.manifest.name,
          description: ar.manifest.description,
          min_app_version: '1.0.0',
          size_bytes: ar.size_bytes,
          sha256: ar.sha256,
          signer_key_id: key.keyId,
          tables: ar.manifest.tables.map((t) => ({ name: t.name, row_count: t.row_count })),
          manifest_url: `${reg.url}/v1/packs/${AR}/1.0.0/manifest`,
          download_url: `${reg.url}/v1/packs/${AR}/download?version=1.0.0`,
        },
      ],
    });
  });

  it('refuses an app_version that is not semver, and repeated parameters', async () => {
    for (const q of ['?app_version=1.0', '?app_version=latest', '?app_version=v1.0.0']) {
      const r = await call(reg.url, `/v1/packs/available${q}`);
      expectError(r, 'IQP_E_INVALID_VERSION', q);
    }
    const twice = await call(reg.url, '/v1/packs/available?type=a&type=b');
    expectError(twice, 'IQP_E_INVALID_REQUEST');
    expect(twice.json().error.details).toMatchObject({ field: 'query.type' });
  });

  it('leaves out deprecated versions, falling back to the newest that is not', async () => {
    const dep = (version: string, message: string) =>
      call(reg.url, `/v1/admin/packs/${DECK}/${version}/deprecate`, { method: 'POST', token: reg.publisher, json: { message } });
    expect((await dep('1.1.0', 'Broken audio; use 1.0.0')).status).toBe(200);
    expect((await available())[DECK]).toBe('1.0.0');
    expect((await dep('1.0.0', 'Withdrawn')).status).toBe(200);
    expect(await available()).not.toHaveProperty(DECK);
    const versions = await call(reg.url, `/v1/packs/${DECK}`);
    expect(versions.json().versions.map((v: { version: string; status: string; deprecated_message: string | null }) => [v.version, v.status, v.deprecated_message])).toEqual([
      ['1.1.0', 'deprecated', 'Broken audio; use 1.0.0'],
      ['1.0.0', 'deprecated', 'Withdrawn'],
    ]);
    const undo = await dep('1.1.0', '');
    expect(undo.status).toBe(200);
    expect(undo.json()).toMatchObject({ version: '1.1.0', status: 'published', deprecated_message: null });
    expect((await available())[DECK]).toBe('1.1.0');
    const download = await call(reg.url, `/v1/packs/${DECK}/download`, { method: 'HEAD' });
    expect(download.headers.get('x-iqp-version'), 'the unversioned download follows').toBe('1.1.0');
  });
});

describe('versions and manifests', () => {
  it('GET /v1/packs/{id} lists every version, newest first by semver', async () => {
    const r = await call(reg.url, `/v1/packs/${EN}`);
    expect(r.status).toBe(200);
    const doc = r.json();
    expect(doc.package_id).toBe(EN);
    expect(doc.versions.map((v: { version: string }) => v.version)).toEqual(['2.0.0-beta.1', '1.11.0', '1.10.0', '1.9.0', '1.2.0']);
    const v = doc.versions.find((x: { version: string }) => x.version === '1.9.0');
    const p = packOf(EN, '1.9.0');
    expect(v).toMatchObject({ status: 'published', deprecated_message: null, min_app_version: '1.0.0', size_bytes: p.size_bytes, sha256: p.sha256, signer_key_id: key.keyId });
    expect(v.manifest_url).toBe(`${reg.url}/v1/packs/${EN}/1.9.0/manifest`);
  });

  it('GET /v1/packs lists pack ids with paging', async () => {
    const ids = (await collectPages<{ package_id: string }>(reg.url, '/v1/packs?limit=2', 'packs')).map((p) => p.package_id);
    expect(ids).toEqual([...new Set(published.map((p) => p.package_id))].sort());
    const en = (await call(reg.url, '/v1/packs?limit=500')).json().packs.find((p: { package_id: string }) => p.package_id === EN);
    expect(en.versions).toBe(5);
  });

  it('GET /v1/packs/{id}/{version}/manifest gives what a client needs to verify the pack offline', async () => {
    const p = packOf(EN, '1.9.0');
    const r = await call(reg.url, `/v1/packs/${EN}/1.9.0/manifest`);
    expect(r.status).toBe(200);
    const doc = r.json();
    expect(doc).toMatchObject({
      ...p.manifest,
      size_bytes: p.size_bytes,
      sha256: p.sha256,
      status: 'published',
      deprecated_message: null,
      signer_key_id: key.keyId,
      download_url: `${reg.url}/v1/packs/${EN}/download?version=1.9.0`,
    });
    expect(Date.parse(doc.published_at)).not.toBeNaN();
    // manifest_json is the exact signed text: the signature verifies over it with the registered key.
    const manifestBytes = Buffer.from(doc.manifest_json, 'utf8');
    expect(verify(manifestBytes, parseSignature(doc.signature), [key.secret])).toMatchObject({ keyId: key.keyId });
    expect(validateManifest(JSON.parse(doc.manifest_json))).toEqual(p.manifest);
    const bytes = await call(reg.url, new URL(doc.download_url).pathname + new URL(doc.download_url).search);
    expect(bytes.body.length).toBe(p.size_bytes);
    expect(sha256(bytes.body)).toBe(p.sha256);
    expect(bytes.body.equals(readFileSync(p.path))).toBe(true);
  });

  it('uses the configured public URL for links when one is set', async () => {
    await withRegistry({ keys: [key], config: { publicUrl: 'https://cdn.example.org/registry/' } }, async (other) => {
      await upload(other.url, other.publisher, packOf(AR, '1.0.0').path);
      const doc = (await call(other.url, `/v1/packs/${AR}/1.0.0/manifest`)).json();
      expect(doc.download_url).toBe(`https://cdn.example.org/registry/v1/packs/${AR}/download?version=1.0.0`);
    });
  });
});

describe('JSON caching', () => {
  it('serves an ETag, answers 304 to If-None-Match, and a publish changes the answer', async () => {
    const path = '/v1/packs/available?type=translation';
    const first = await call(reg.url, path);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await call(reg.url, path);
    expect(again.headers.get('etag')).toBe(etag);
    expect(again.body.equals(first.body)).toBe(true);

    const notModified = await rawGet(reg.url, path, [`If-None-Match: ${etag}`]);
    expect(notModified.status).toBe(304);
    expect(notModified.body.length).toBe(0);
    expect(notModified.headers['etag']).toBe(etag);
    expect((await rawGet(reg.url, path, [`If-None-Match: "other", W/${etag}`])).status, 'weak comparison').toBe(304);
    expect((await rawGet(reg.url, path, ['If-None-Match: "other"'])).status).toBe(200);

    await publish(await buildTemplatePack(work, key, { authored: { package_id: EN, version: '1.12.0' } }));
    const changed = await rawGet(reg.url, path, [`If-None-Match: ${etag}`]);
    expect(changed.status).toBe(200);
    expect(changed.headers['etag']).not.toBe(etag);
    expect(JSON.parse(changed.body.toString()).packs.find((p: { package_id: string }) => p.package_id === EN).version).toBe('1.12.0');
  });

  it('HEAD gives the headers of GET without a body', async () => {
    const get = await rawGet(reg.url, `/v1/packs/${AR}`);
    const head = await rawGet(reg.url, `/v1/packs/${AR}`, [], 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['etag']).toBe(get.headers['etag']);
    expect(head.headers['content-length']).toBe(String(get.body.length));
  });
});

describe('keys', () => {
  it('GET /v1/keys lists the registered public keys without a token', async () => {
    const r = await call(reg.url, '/v1/keys');
    expect(r.status).toBe(200);
    expect(r.json().keys).toEqual([{ key_id: key.keyId, name: `test ${key.keyId}`, purpose: 'pack', public_key: key.publicKeyFile, added_at: expect.any(String) }]);
  });

  it('admins add (201, then 200 exists) and remove keys (204, then 404); a key change shows at once', async () => {
    const extra = newKey();
    const before = await call(reg.url, '/v1/keys');
    const add = await call(reg.url, '/v1/admin/keys', { method: 'POST', token: reg.admin, json: { public_key: extra.publicKeyFile, name: 'extra' } });
    expect(add.status).toBe(201);
    expect(add.json()).toMatchObject({ status: 'created', key: { key_id: extra.keyId, name: 'extra' } });
    const again = await call(reg.url, '/v1/admin/keys', { method: 'POST', token: reg.admin, json: { public_key: extra.publicKeyFile } });
    expect(again.status).toBe(200);
    expect(again.json().status).toBe('exists');
    const listed = await call(reg.url, '/v1/keys', { headers: { 'if-none-match': before.headers.get('etag')! } });
    expect(listed.status).toBe(200);
    expect(listed.json().keys.map((k: { key_id: string }) => k.key_id)).toContain(extra.keyId);
    expect((await call(reg.url, `/v1/admin/keys/${extra.keyId}`, { method: 'DELETE', token: reg.admin })).status).toBe(204);
    const gone = await call(reg.url, `/v1/admin/keys/${extra.keyId}`, { method: 'DELETE', token: reg.admin });
    expectError(gone, 'IQP_E_NOT_FOUND');
    expect((await call(reg.url, '/v1/keys')).json().keys.map((k: { key_id: string }) => k.key_id)).not.toContain(extra.keyId);
    const admin = await call(reg.url, '/v1/admin/keys', { token: reg.admin });
    expect(admin.json().keys.map((k: { key_id: string }) => k.key_id)).toEqual([key.keyId]);
  });

  it('refuses a body that is not a public key', async () => {
    // The body's shape is the route's schema (IQP_E_INVALID_REQUEST naming the field); whether the text is a key, the service's rule.
    for (const [json, code, field] of [
      [{}, 'IQP_E_INVALID_REQUEST', 'body.public_key'],
      [{ public_key: 42 }, 'IQP_E_INVALID_REQUEST', 'body.public_key'],
      [{ public_key: key.publicKeyFile, name: 7 }, 'IQP_E_INVALID_REQUEST', 'body.name'],
      [{ public_key: key.publicKeyFile, purpose: 'both' }, 'IQP_E_INVALID_REQUEST', 'body.purpose'],
      [[], 'IQP_E_INVALID_REQUEST', 'body'],
      [{ public_key: 'not a key' }, 'IQP_E_KEY_INVALID', undefined],
    ] as const) {
      const r = await call(reg.url, '/v1/admin/keys', { method: 'POST', token: reg.admin, json });
      expect(r.status, JSON.stringify(json)).toBe(400);
      expect(errorCode(r), JSON.stringify(json)).toBe(code);
      if (field) expect(r.json().error.details.field, JSON.stringify(json)).toBe(field);
    }
  });
});

describe('audit log', () => {
  it('pages newest first with opaque cursors and filters by actor and target', async () => {
    const all = (await call(reg.url, '/v1/admin/audit?limit=500', { token: reg.admin })).json().entries as { id: number; actor: string; target: string; action: string }[];
    expect(all.length).toBeGreaterThan(10);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));
    expect(all.filter((e) => e.action === 'pack.publish').map((e) => e.target)).toContain(`${EN}@1.10.0`);

    const paged = await collectPages<{ id: number }>(reg.url, '/v1/admin/audit?limit=3', 'entries', reg.admin);
    expect(paged.map((e) => e.id)).toEqual(all.map((e) => e.id));
    const first = await call(reg.url, '/v1/admin/audit?limit=3', { token: reg.admin });
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.json().paging.next_cursor, 'cursors are opaque, not ids').not.toMatch(/^\d+$/);

    const publisherActor = all.find((e) => e.action === 'pack.publish')!.actor;
    const byActor = (await call(reg.url, `/v1/admin/audit?limit=500&actor=${encodeURIComponent(publisherActor)}`, { token: reg.admin })).json().entries;
    expect(byActor.length).toBeGreaterThan(0);
    expect(byActor.every((e: { actor: string }) => e.actor === publisherActor)).toBe(true);
    const byTarget = (await call(reg.url, `/v1/admin/audit?target=${encodeURIComponent(`${DECK}@1.1.0`)}`, { token: reg.admin })).json().entries;
    expect(byTarget.map((e: { action: string }) => e.action)).toEqual(['pack.undeprecate', 'pack.deprecate', 'pack.publish']);
  });

  it('ignores query parameters the route does not declare, even repeated or odd ones', async () => {
    const plain = await call(reg.url, '/v1/admin/audit?limit=2', { token: reg.admin });
    const noisy = await call(reg.url, '/v1/admin/audit?limit=2&unknown=1&unknown=2&%E0=x&limit_=9', { token: reg.admin });
    expect(noisy.status, noisy.body.toString('utf8')).toBe(200);
    expect(noisy.json()).toEqual(plain.json());
  });

  it('refuses bad paging parameters with 400: malformed ones by the schema, foreign cursors by the store', async () => {
    const packsCursor = (await call(reg.url, '/v1/packs?limit=1')).json().paging.next_cursor;
    for (const q of ['limit=0', 'limit=501', 'limit=abc', 'limit=-1', 'limit=05', 'limit=1&limit=2', 'cursor=']) {
      const r = await call(reg.url, `/v1/admin/audit?${q}`, { token: reg.admin });
      expectError(r, 'IQP_E_INVALID_REQUEST', q);
      expect(r.json().error.details.field, q).toBe(`query.${q.split('=')[0]}`);
    }
    for (const q of ['cursor=nonsense', `cursor=${encodeURIComponent(packsCursor)}`]) {
      expectError(await call(reg.url, `/v1/admin/audit?${q}`, { token: reg.admin }), 'IQP_E_USAGE', q);
    }
  });
});

describe('authentication and roles', () => {
  it('without a token: 401 with WWW-Authenticate: Bearer', async () => {
    for (const [method, path] of [
      ['PUT', '/v1/admin/packs'],
      ['POST', `/v1/admin/packs/${EN}/1.9.0/deprecate`],
      ['GET', '/v1/admin/keys'],
      ['POST', '/v1/admin/keys'],
      ['DELETE', `/v1/admin/keys/${key.keyId}`],
      ['GET', '/v1/admin/audit'],
    ] as const) {
      const r = await call(reg.url, path, { method });
      expectError(r, 'IQP_E_UNAUTHORIZED', `${method} ${path}`);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="iqp"');
    }
    const basic = await call(reg.url, '/v1/admin/audit', { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
  });

  it('with an unknown, malformed or revoked token: 401 invalid_token', async () => {
    const { token, record } = await reg.running.registry.services.tokens.create('admin', 'soon revoked', 'test');
    expect((await call(reg.url, '/v1/admin/audit', { token })).status).toBe(200);
    await reg.running.registry.services.tokens.revoke(record.id, 'test');
    const unknown = `iqp_${'0'.repeat(12)}_${'A'.repeat(43)}`;
    for (const t of [token, unknown, 'nonsense', `${reg.admin}x`]) {
      const r = await call(reg.url, '/v1/admin/audit', { token: t });
      expectError(r, 'IQP_E_UNAUTHORIZED', t);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="iqp", error="invalid_token"');
    }
  });

  it('a publisher token on an admin-only route: 403; on publisher routes it works, and so does an admin token', async () => {
    for (const [method, path] of [
      ['GET', '/v1/admin/keys'],
      ['GET', '/v1/admin/audit'],
      ['DELETE', `/v1/admin/keys/${key.keyId}`],
    ] as const) {
      const r = await call(reg.url, path, { method, token: reg.publisher });
      expectError(r, 'IQP_E_FORBIDDEN', `${method} ${path}`);
    }
    const add = await call(reg.url, '/v1/admin/keys', { method: 'POST', token: reg.publisher, json: { public_key: newKey().publicKeyFile } });
    expect(add.status).toBe(403);
    expect((await call(reg.url, '/v1/keys')).json().keys, 'the refused key was not added').toHaveLength(1);
    const byAdmin = await upload(reg.url, reg.admin, packOf(AR, '1.0.0').path);
    expect(byAdmin.status).toBe(200);
  });
});

describe('errors are JSON, never HTML, never a stack trace', () => {
  it('unknown packs, versions and routes: 404 IQP_E_NOT_FOUND', async () => {
    for (const path of [
      '/v1/packs/no.such.pack',
      `/v1/packs/${EN}/9.9.9/manifest`,
      '/v1/packs/no.such.pack/1.0.0/manifest',
      '/v1/packs/no.such.pack/download',
      `/v1/packs/${EN}/download?version=9.9.9`,
      '/nope',
      '/',
      '/v1',
      '/v2/packs',
      '/v1/packs/a/b/c/d',
    ]) {
      const r = await call(reg.url, path);
      expectError(r, 'IQP_E_NOT_FOUND', path);
      expect(r.headers.get('cache-control'), path).toBe('no-store');
    }
    const dep = await call(reg.url, `/v1/admin/packs/${EN}/9.9.9/deprecate`, { method: 'POST', token: reg.publisher, json: { message: 'x' } });
    expectError(dep, 'IQP_E_NOT_FOUND');
  });

  it('wrong methods get a JSON error', async () => {
    for (const [method, path] of [
      ['POST', '/v1/health'],
      ['DELETE', '/v1/packs/available'],
      ['PUT', `/v1/packs/${EN}`],
      ['PATCH', '/v1/admin/packs'],
      ['POST', `/v1/packs/${EN}/download`],
    ] as const) {
      const r = await call(reg.url, path, { method, token: reg.admin, json: {} });
      expect([404, 405], `${method} ${path}`).toContain(r.status);
      expect(['IQP_E_NOT_FOUND', 'IQP_E_METHOD_NOT_ALLOWED']).toContain(errorCode(r));
    }
  });

  it('malformed and oversized JSON bodies: 400 and 413, as JSON', async () => {
    const deprecate = `/v1/admin/packs/${EN}/1.9.0/deprecate`;
    for (const body of ['{', '{"message": }', 'null', '"just a string"', '\u0000\u0001', '{"message": "x"']) {
      const r = await call(reg.url, deprecate, { method: 'POST', token: reg.publisher, body, headers: { 'content-type': 'application/json' } });
      expectError(r, 'IQP_E_USAGE', JSON.stringify(body));
    }
    const wrongType = await call(reg.url, deprecate, { method: 'POST', token: reg.publisher, json: { message: 42 } });
    expect(wrongType.status).toBe(400);
    const huge = await call(reg.url, deprecate, { method: 'POST', token: reg.publisher, json: { message: 'x'.repeat(200_000) } });
    expectError(huge, 'IQP_E_UPLOAD_TOO_LARGE');
    const charset = await call(reg.url, deprecate, { method: 'POST', token: reg.publisher, body: '{}', headers: { 'content-type': 'application/json; charset=klingon' } });
    expect(charset.status).toBeGreaterThanOrEqual(400);
    expect(charset.status).toBeLessThan(500);
    errorCode(charset);
    expect((await call(reg.url, `/v1/packs/${EN}/1.9.0/manifest`)).json().status, 'nothing was deprecated').toBe('published');
  });

  it('bad versions and malformed paths: 400', async () => {
    const badVersion = await call(reg.url, `/v1/packs/${EN}/download?version=latest`);
    expectError(badVersion, 'IQP_E_INVALID_VERSION');
    const dep = await call(reg.url, `/v1/admin/packs/${EN}/one/deprecate`, { method: 'POST', token: reg.publisher, json: { message: 'x' } });
    expectError(dep, 'IQP_E_INVALID_VERSION');
    const encoded = await rawGet(reg.url, '/v1/packs/%E0%A4%A/1.0.0/manifest');
    expect(encoded.status).toBe(400);
    expect(encoded.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(encoded.body.toString()).error.code).toBe('IQP_E_USAGE');
  });

  it('a raw request with a broken body never gets HTML or a stack trace', async () => {
    const r = await rawRequest(
      reg.url,
      `POST /v1/admin/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reg.admin}\r\nContent-Type: application/json\r\nContent-Length: 5`,
      Buffer.from('{"a":'),
    );
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body.toString()).not.toMatch(/<html|<pre|\bat \S+:\d+/i);
    expect(reg.logs.filter((l) => l['level'] === 'error'), 'no request failed on the server side').toEqual([]);
  });
});

describe('storage faults', () => {
  it('a stored pack whose blob has gone answers 5xx (not the client’s fault), without server paths', async () => {
    await withRegistry({ keys: [key] }, async (other) => {
      const pack = packOf(AR, '1.0.0');
      expect((await upload(other.url, other.publisher, pack.path)).status).toBe(201);
      rmSync(join(other.dataDir, 'blobs', 'sha256', pack.sha256.slice(0, 2), pack.sha256));
      const r = await call(other.url, `/v1/packs/${AR}/download?version=1.0.0`);
      expectError(r, 'IQP_E_UNAVAILABLE');
      expect(r.body.toString(), 'no server path in the answer').not.toContain(other.dataDir);
      expect(other.logs.some((l) => l['level'] === 'error' && String(l['cause']).includes(pack.sha256)), 'the log has the details').toBe(true);
      expect(r.headers.get('content-disposition'), 'the error is no attachment').toBeNull();
      expect((await call(other.url, `/v1/packs/${AR}/1.0.0/manifest`)).status).toBe(200);
    });
  });

  it('health answers 503 with the failing check while the blob store is unusable, and uploads fail as 5xx', async () => {
    await withRegistry({ keys: [key] }, async (other) => {
      rmSync(join(other.dataDir, 'tmp'), { recursive: true });
      const health = await call(other.url, '/v1/health');
      expect(health.status).toBe(503);
      expect(health.json()).toMatchObject({ status: 'unavailable', checks: { database: 'ok', blobs: 'failed' }, error: { code: 'IQP_E_UNAVAILABLE' } });
      const r = await upload(other.url, other.publisher, packOf(AR, '1.0.0').path);
      expectError(r, 'IQP_E_IO');
      expect(r.body.toString()).not.toContain(other.dataDir);
      expect(other.logs.some((l) => l['level'] === 'error' && String(l['error']).includes('ENOENT')), 'the log has the details').toBe(true);
      mkdirSync(join(other.dataDir, 'tmp'));
      expect((await call(other.url, '/v1/health')).status).toBe(200);
      expect((await upload(other.url, other.publisher, packOf(AR, '1.0.0').path)).status).toBe(201);
    });
  });
});
