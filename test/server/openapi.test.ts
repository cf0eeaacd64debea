/**
 * docs/openapi.json is the HTTP contract (DESIGN.md, "Contracts that must not drift"). These tests
 * hold it to the code: it is valid OpenAPI 3.1 with valid JSON Schemas; it lists exactly the routes
 * and methods the Express routers register; its error-code enum is src/errors.ts's catalog; and
 * what the real server answers (status, documented headers, body) matches it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { openApiDocument, renderOpenApi } from '../../scripts/openapi.js';
import { pluginRouteGroups } from '../../server/plugins/openapi.js';
import { CORE_ROUTES } from '../../src/api/core/index.js';
import { CATALOG } from '../../src/errors.js';
import { buildPack } from '../../src/pack/build.js';
import { formatPublicKeyFile, generateKeyPair } from '../../src/pack/minisign.js';
import { signReleaseManifest, type ReleaseManifestBody } from '../../src/pack/release-manifest.js';
import { readSource } from '../../src/pack/source.js';
import {
  ajv,
  deref,
  escapePointer,
  expectConforms,
  expectErrorBody,
  type IntrospectableRouter,
  isCatchAll,
  type Json,
  METHODS,
  operations,
  pkg,
  registeredRoutes,
  ROOT,
  SPEC_FILE,
  schemaAt,
  sendTo,
  spec,
  toOpenApiPath,
} from './openapi-helpers.js';

// ---------- the running server ----------

let server: RunningServer;
let work: string;
let adminToken: string;
let publisherToken: string;
let packBytes: Buffer;
let publicKeyFile: string;
let firstPublish: Response;
let firstPublishBody: string;
const PACK_ID = 'example.dataset.foods';
const PACK_VERSION = '1.0.0';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

const send = (method: string, path: string, init: RequestInit = {}) => sendTo(server.url, method, path, init);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'iqp-openapi-'));
  // The document lists the built-in plugins' routes, so the registry it is held to runs them.
  const dataDir = join(work, 'data');
  mkdirSync(dataDir);
  writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ plugins: { auth: { enabled: true, source: 'builtin', required: true }, sync: { enabled: true, source: 'builtin', required: true } } }));
  server = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {}, { validateResponses: true });
  expect(server.plugins!.status().loaded.map((p) => p.id)).toEqual(expect.arrayContaining(['auth', 'sync']));
  const tokens = server.registry.services.tokens;
  adminToken = (await tokens.create('admin', 'openapi-admin', 'test')).token;
  publisherToken = (await tokens.create('publisher', 'openapi-publisher', 'test')).token;

  const key = generateKeyPair();
  publicKeyFile = formatPublicKeyFile(key);
  const out = join(work, 'pack.iqp');
  await buildPack({ source: await readSource(join(ROOT, 'templates', 'dataset')), secretKey: key, level: 3, outPath: out, createdAt: new Date('2026-01-01T00:00:00Z') });
  packBytes = readFileSync(out);

  const added = await send('POST', '/v1/admin/keys', {
    headers: { ...auth(adminToken), 'content-type': 'application/json' },
    body: JSON.stringify({ public_key: publicKeyFile, name: 'openapi' }),
  });
  expectConforms('post', '/v1/admin/keys', added.res, added.body);
  expect(added.res.status).toBe(201);
  const published = await send('PUT', '/v1/admin/packs', { headers: { ...auth(publisherToken), 'content-type': 'application/octet-stream' }, body: packBytes });
  firstPublish = published.res;
  firstPublishBody = published.body;
});

afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

// ---------- (a) a valid OpenAPI 3.1 document ----------

describe('docs/openapi.json is valid OpenAPI 3.1', () => {
  it('passes the OpenAPI 3.1 schema', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(spec));
    expect(result.errors, JSON.stringify(result.errors, null, 2)).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('the validator does reject a broken document (so the check above means something)', async () => {
    const broken = structuredClone(spec);
    delete broken['paths']['/v1/health']['get']['responses'];
    broken['paths']['/v1/keys']['get']['parameters'] = [{ name: 'x', in: 'body' }];
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('states the package version and licence', () => {
    expect(spec['openapi']).toMatch(/^3\.1\.\d+$/);
    expect(spec['info']['version']).toBe(pkg.version);
    expect(spec['info']['license']['identifier']).toBe(pkg.license);
  });

  it('every schema in it compiles as strict JSON Schema 2020-12', () => {
    const pointers: string[] = Object.keys(spec['components']['schemas']).map((n) => `/components/schemas/${escapePointer(n)}`);
    const collect = (node: unknown, pointer: string, inSchema: boolean): void => {
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node as Json)) {
        const p = `${pointer}/${escapePointer(k)}`;
        if (k === 'schema' && !inSchema) pointers.push(p);
        else collect(v, p, inSchema || k === 'schema' || k === 'schemas');
      }
    };
    collect(spec['paths'], '/paths', false);
    collect(spec['components'], '/components', false);
    expect(pointers.length).toBeGreaterThan(50);
    for (const p of pointers) expect(() => schemaAt(p), p).not.toThrow();
  });

  it('has unique operationIds, declares every path parameter, and names the role of every admin operation', async () => {
    const pluginPrefixes = (await pluginRouteGroups()).map((g) => g.prefix);
    expect(pluginPrefixes).toEqual(expect.arrayContaining(['/v1/auth', '/v1/sync']));
    const ids = new Set<string>();
    for (const { path, method, op, pointer } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(typeof op['operationId'], where).toBe('string');
      expect(ids.has(op['operationId'] as string), `${where}: duplicate operationId`).toBe(false);
      ids.add(op['operationId'] as string);
      const declared = ((op['parameters'] ?? []) as unknown[])
        .map((p, i) => deref(p, `${pointer}/parameters/${i}`).node)
        .filter((p) => p['in'] === 'path')
        .map((p) => p['name'] as string)
        .sort();
      const inTemplate = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
      expect(declared, `${where}: path parameters`).toEqual(inTemplate);
      const security = op['security'] as Json[] | undefined;
      if (pluginPrefixes.some((p) => path.startsWith(`${p}/`))) {
        // A plugin's route: public, or a signed-in user's (an API token's role on a plugin route is the plugin's business).
        if (security) {
          expect(security, where).toEqual([{ bearer: ['user'] }]);
          expect(Object.keys(op['responses'] as Json), where).toEqual(expect.arrayContaining(['401', '403']));
        }
        expect(Object.keys(op['responses'] as Json), `${where}: a plugin that failed to start answers 503`).toContain('503');
      } else if (path.startsWith('/v1/admin/')) {
        expect(security, `${where}: admin operations need a bearer token`).toHaveLength(1);
        const roles = security![0]!['bearer'] as string[];
        expect(roles.length, where).toBe(1);
        expect(['admin', 'publisher']).toContain(roles[0]);
        expect(op['description'] as string, `${where}: the description names the role`).toContain(`**${roles[0]}**`);
        expect(Object.keys(op['responses'] as Json), where).toEqual(expect.arrayContaining(['401', '403']));
      } else {
        expect(security, `${where}: public operations need no token`).toBeUndefined();
      }
    }
  });

  it('declares the manifest as docs/schemas/manifest.schema.json does (descriptions aside)', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'docs', 'schemas', 'manifest.schema.json'), 'utf8')) as Json;
    const schemas = spec['components']['schemas'] as Json;
    const semverRef = { $ref: '#/components/schemas/Semver' };
    const packageIdRef = JSON.stringify({ $ref: '#/components/schemas/PackageId' });
    // Descriptions differ on purpose; TypeBox spells a const with its type too; PackageId is a component.
    const text = (node: unknown): string => JSON.stringify(node, (k, v) => (k === 'description' ? undefined : v && typeof v === 'object' && 'const' in v ? { const: v.const } : v));
    const packageId = text(schemas['PackageId']);
    const plain = (node: unknown): unknown => JSON.parse(text(node).replaceAll(JSON.stringify({ $ref: '#/$defs/semver' }), JSON.stringify(semverRef)).replaceAll(packageIdRef, packageId));
    expect(plain(schemas['Manifest']['properties'])).toEqual(plain(manifest['properties']));
    expect([...(schemas['Manifest']['required'] as string[])].sort()).toEqual([...(manifest['required'] as string[])].sort());
    expect(schemas['Manifest']['additionalProperties']).toBe(false);
    expect(plain(schemas['Semver'])).toEqual(plain(manifest['$defs']['semver']));
    expect(plain(schemas['PackageId'])).toEqual(plain(manifest['properties']['package_id']));
  });

  it('is what scripts/openapi.ts generates from the route declarations (regenerate: npm run build && node dist/scripts/openapi.js)', async () => {
    expect(readFileSync(SPEC_FILE, 'utf8')).toBe(await renderOpenApi());
  });

  it('takes plugin route groups under their prefix, and refuses a route declared twice', () => {
    const extra = { prefix: '/v1/example', routes: [{ id: 'example.ping', method: 'GET', path: '/ping', summary: 'Ping', auth: 'user', responses: { 204: { description: 'Pong.' } } }] as const };
    const doc = openApiDocument([...CORE_ROUTES, extra], { version: pkg.version }) as Json;
    expect(doc['paths']['/v1/example/ping']['get']).toMatchObject({ operationId: 'example.ping', tags: ['example'], security: [{ bearer: ['user'] }] });
    expect(Object.keys(doc['paths']['/v1/example/ping']['get']['responses'])).toEqual(['204', '401', '403', '500']);
    expect(() => openApiDocument([...CORE_ROUTES, { prefix: '/v1', routes: [CORE_ROUTES[0]!.routes[0]!] }], { version: pkg.version })).toThrow(/declared twice/);
  });
});

// ---------- (b) routes: the spec and the app agree ----------

describe('the spec lists exactly the routes the app serves', () => {
  it('every registered route and method is in the spec, and nothing else is', () => {
    const routes = registeredRoutes(server.registry.app.router as unknown as IntrospectableRouter);
    expect(routes.length).toBeGreaterThan(10);
    const fromApp = routes.map((r) => `${r.path} ${r.explicit.join(',')}`).sort();
    const fromSpec = Object.entries(spec['paths'] as Json)
      .map(([path, item]) => `${path} ${METHODS.filter((m) => (item as Json)[m]).sort().join(',')}`)
      .sort();
    expect(fromSpec).toEqual(fromApp);
    // The spec's note that every GET also answers HEAD, and nothing else is implied.
    for (const r of routes) {
      const implied = r.explicit.includes('get') ? [...new Set([...r.explicit, 'head'])].sort() : r.explicit;
      expect(r.answered, r.path).toEqual(implied);
    }
  });

  it('every path and method in the spec reaches a route on the running server', async () => {
    const samples: Record<string, string> = { id: PACK_ID, version: PACK_VERSION, keyId: '0123456789ABCDEF', role: 'data', packageId: PACK_ID, name: 'core' };
    const ops = operations();
    expect(ops.length).toBeGreaterThan(10);
    for (const { path, method } of ops) {
      const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => {
        const value = samples[name];
        if (value === undefined) throw new Error(`no sample value for path parameter ${name}`);
        return encodeURIComponent(value);
      });
      // No token: admin routes answer 401 without side effects.
      const { res, body } = await send(method.toUpperCase(), url);
      const where = `${method.toUpperCase()} ${url} → ${res.status} ${body.slice(0, 200)}`;
      if (method === 'head') expect(res.status, where).not.toBe(404); // no body to tell a catch-all by
      else expect(isCatchAll(res, body), where).toBe(false);
    }
  });

  it('the catch-all is what unknown paths get (404)', async () => {
    for (const [method, path] of [['GET', '/v1/nope'], ['POST', '/v1/packs/a/b/c/d'], ['DELETE', '/v2/packs']] as const) {
      const { res, body } = await send(method, path);
      expect(isCatchAll(res, body), `${method} ${path}`).toBe(true);
      expectErrorBody(res, body);
    }
  });

  it('a known path under a method it does not take is 405 with Allow, as components/responses/MethodNotAllowed says', async () => {
    const response = '/components/responses/MethodNotAllowed';
    const validateBody = schemaAt(`${response}/content/application~1json/schema`);
    const validateAllow = schemaAt('/components/headers/Allow/schema');
    for (const [method, path] of [['POST', '/v1/packs'], ['DELETE', '/v1/admin/audit'], ['PUT', `/v1/packs/${PACK_ID}/download`]] as const) {
      const { res, body } = await send(method, path);
      expect(res.status, `${method} ${path}`).toBe(405);
      expectErrorBody(res, body);
      expect(validateBody(JSON.parse(body)), ajv.errorsText(validateBody.errors)).toBe(true);
      const allow = res.headers.get('allow')!;
      expect(validateAllow(allow), `Allow: ${allow}`).toBe(true);
      // The methods it lists are the spec's for that path (GET implies HEAD).
      const specPath = toOpenApiPath(path === '/v1/packs' || path === '/v1/admin/audit' ? path : '/v1/packs/:id/download');
      const listed = METHODS.filter((m) => (spec['paths'][specPath] as Json)[m]).map((m) => m.toUpperCase());
      const implied = [...new Set(listed.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])))].sort();
      expect(allow.split(', ')).toEqual(implied);
    }
  });
});


// ---------- (c) error codes ----------

describe('error codes', () => {
  const codes = spec['components']['schemas']['ErrorCode']['enum'] as string[];

  it('the spec\'s ErrorCode enum is exactly src/errors.ts\'s catalog', () => {
    expect(new Set(codes).size).toBe(codes.length);
    expect([...codes].sort()).toEqual(Object.keys(CATALOG).sort());
  });

  it('every code a response narrows to exists and has that response\'s HTTP status', () => {
    const check = (response: Json, status: string, where: string) => {
      const schema = response['content']?.['application/json']?.['schema'] as Json | undefined;
      const narrowed = schema?.['properties']?.['error']?.['properties']?.['code']?.['enum'] as string[] | undefined;
      if (!narrowed) return;
      for (const code of narrowed) {
        expect(codes, `${where}: ${code}`).toContain(code);
        expect(CATALOG[code as keyof typeof CATALOG].http, `${where}: ${code}`).toBe(Number(status));
      }
    };
    let checked = 0;
    for (const { path, method, op, pointer } of operations()) {
      for (const [status, raw] of Object.entries(op['responses'] as Json)) {
        check(deref(raw, `${pointer}/responses/${status}`).node, status, `${method.toUpperCase()} ${path} ${status}`);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});

// ---------- (d) the running app's responses match the schemas ----------

describe('responses match the spec', () => {
  it('health', async () => {
    const { res, body } = await send('GET', '/v1/health');
    expect(res.status).toBe(200);
    expect(expectConforms('get', '/v1/health', res, body)).toMatchObject({ status: 'ok' });
  });

  it('publish (201, then 200 identical), and the refusals', async () => {
    expect(firstPublish.status, firstPublishBody).toBe(201);
    expect(expectConforms('put', '/v1/admin/packs', firstPublish, firstPublishBody)).toMatchObject({ result: 'created', package_id: PACK_ID });
    const again = await send('PUT', '/v1/admin/packs', { headers: { ...auth(publisherToken), 'content-type': 'application/vnd.iqp.pack+zstd' }, body: packBytes });
    expect(again.res.status).toBe(200);
    expect(expectConforms('put', '/v1/admin/packs', again.res, again.body)).toMatchObject({ result: 'identical' });

    const anonymous = await send('PUT', '/v1/admin/packs', { body: packBytes });
    expect(anonymous.res.status).toBe(401);
    expectConforms('put', '/v1/admin/packs', anonymous.res, anonymous.body);
    const badToken = await send('PUT', '/v1/admin/packs', { headers: auth('iqp_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), body: packBytes });
    expect(badToken.res.headers.get('www-authenticate')).toContain('invalid_token');
    expectConforms('put', '/v1/admin/packs', badToken.res, badToken.body);
    const wrongType = await send('PUT', '/v1/admin/packs', { headers: { ...auth(publisherToken), 'content-type': 'text/plain' }, body: packBytes });
    expect(wrongType.res.status).toBe(415);
    expectConforms('put', '/v1/admin/packs', wrongType.res, wrongType.body);
    const garbage = await send('PUT', '/v1/admin/packs', { headers: auth(publisherToken), body: Buffer.from('not a pack') });
    expect(garbage.res.status).toBe(422);
    expectConforms('put', '/v1/admin/packs', garbage.res, garbage.body);
  });

  it('discovery: available, packs, versions, keys, with ETag revalidation', async () => {
    const available = await send('GET', '/v1/packs/available?app_version=1.0.0');
    expect(available.res.status).toBe(200);
    const list = expectConforms('get', '/v1/packs/available', available.res, available.body)!;
    expect(list['packs']).toHaveLength(1);
    const summary = list['packs'][0] as Json;
    expect(summary['download_url']).toBe(`${server.url}/v1/packs/${PACK_ID}/download?version=${PACK_VERSION}`);

    const revalidated = await send('GET', '/v1/packs/available?app_version=1.0.0', { headers: { 'if-none-match': available.res.headers.get('etag')! } });
    expect(revalidated.res.status).toBe(304);
    expectConforms('get', '/v1/packs/available', revalidated.res, revalidated.body);

    for (const [url, specPath] of [
      ['/v1/packs/available?app_version=not-semver', '/v1/packs/available'],
      ['/v1/packs/available?type=a&type=b', '/v1/packs/available'],
      ['/v1/packs?limit=0', '/v1/packs'],
      ['/v1/packs?cursor=', '/v1/packs'],
      ['/v1/packs/no.such.pack', '/v1/packs/{id}'],
      ['/v1/packs/%E0', '/v1/packs/{id}'],
    ] as const) {
      const { res, body } = await send('GET', url);
      expect([400, 404], url).toContain(res.status);
      expectConforms('get', specPath, res, body);
    }

    for (const [url, specPath] of [
      ['/v1/packs?limit=1', '/v1/packs'],
      [`/v1/packs/${PACK_ID}`, '/v1/packs/{id}'],
      ['/v1/keys', '/v1/keys'],
    ] as const) {
      const { res, body } = await send('GET', url);
      expect(res.status, url).toBe(200);
      expectConforms('get', specPath, res, body);
    }
  });

  it('manifest: the served manifest, its signed manifest_json, 304 and 404', async () => {
    const { res, body } = await send('GET', `/v1/packs/${PACK_ID}/${PACK_VERSION}/manifest`);
    expect(res.status).toBe(200);
    const served = expectConforms('get', '/v1/packs/{id}/{version}/manifest', res, body)!;
    const validateManifest = schemaAt('/components/schemas/Manifest');
    expect(validateManifest(JSON.parse(served['manifest_json'] as string)), ajv.errorsText(validateManifest.errors)).toBe(true);
    expect(served['sha256']).toBe(createHash('sha256').update(packBytes).digest('hex'));

    const again = await send('GET', `/v1/packs/${PACK_ID}/${PACK_VERSION}/manifest`, { headers: { 'if-none-match': res.headers.get('etag')! } });
    expect(again.res.status).toBe(304);
    expectConforms('get', '/v1/packs/{id}/{version}/manifest', again.res, again.body);
    const missing = await send('GET', `/v1/packs/${PACK_ID}/9.9.9/manifest`);
    expect(missing.res.status).toBe(404);
    expectConforms('get', '/v1/packs/{id}/{version}/manifest', missing.res, missing.body);
  });

  it('download: whole, range, resume with If-Range, multi-range, 304, 416, HEAD', async () => {
    const path = '/v1/packs/{id}/download';
    const versioned = `/v1/packs/${PACK_ID}/download?version=${PACK_VERSION}`;
    const sha = createHash('sha256').update(packBytes).digest('hex');
    const size = packBytes.length;

    const whole = await send('GET', versioned);
    expect(whole.res.status).toBe(200);
    expectConforms('get', path, whole.res, whole.body);
    expect(whole.bytes.equals(packBytes)).toBe(true);
    expect(whole.res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = whole.res.headers.get('etag')!;
    expect(etag).toBe(`"${sha}"`);

    const unversioned = await send('HEAD', `/v1/packs/${PACK_ID}/download`);
    expect(unversioned.res.status).toBe(200);
    expectConforms('head', path, unversioned.res, unversioned.body);
    expect(unversioned.res.headers.get('cache-control')).toBe('public, no-cache');
    expect(unversioned.res.headers.get('x-iqp-version')).toBe(PACK_VERSION);
    expect(unversioned.res.headers.get('content-length')).toBe(String(size));

    // Resume as the spec describes: Range from what we have, If-Range with the strong ETag.
    const first = await send('GET', versioned, { headers: { range: 'bytes=0-99' } });
    expect(first.res.status).toBe(206);
    expectConforms('get', path, first.res, first.body);
    expect(first.res.headers.get('content-range')).toBe(`bytes 0-99/${size}`);
    const rest = await send('GET', versioned, { headers: { range: 'bytes=100-', 'if-range': etag } });
    expect(rest.res.status).toBe(206);
    expectConforms('get', path, rest.res, rest.body);
    const joined = Buffer.concat([first.bytes, rest.bytes]);
    expect(createHash('sha256').update(joined).digest('hex')).toBe(rest.res.headers.get('x-iqp-sha256'));

    const fullFileRequests: Record<string, string>[] = [{ range: 'bytes=100-', 'if-range': `"${'0'.repeat(64)}"` }, { range: 'bytes=0-9,20-29' }, { range: 'items=0-9' }];
    for (const headers of fullFileRequests) {
      const full = await send('GET', versioned, { headers });
      expect(full.res.status, JSON.stringify(headers)).toBe(200);
      expectConforms('get', path, full.res, full.body);
      expect(full.bytes.length).toBe(size);
    }

    const notModified = await send('GET', versioned, { headers: { 'if-none-match': etag, range: 'bytes=0-9' } });
    expect(notModified.res.status).toBe(304);
    expectConforms('get', path, notModified.res, notModified.body);

    for (const method of ['get', 'head'] as const) {
      const beyond = await send(method.toUpperCase(), versioned, { headers: { range: `bytes=${size}-` } });
      expect(beyond.res.status).toBe(416);
      expect(beyond.res.headers.get('content-range')).toBe(`bytes */${size}`);
      expectConforms(method, path, beyond.res, beyond.body);
      const badVersion = await send(method.toUpperCase(), `/v1/packs/${PACK_ID}/download?version=1.0`);
      expect(badVersion.res.status).toBe(400);
      expectConforms(method, path, badVersion.res, badVersion.body);
      const unknown = await send(method.toUpperCase(), '/v1/packs/no.such.pack/download');
      expect(unknown.res.status).toBe(404);
      expectConforms(method, path, unknown.res, unknown.body);
    }
  });

  it('admin: keys, audit, deprecation, roles', async () => {
    const keys = await send('GET', '/v1/admin/keys', { headers: auth(adminToken) });
    expect(keys.res.status).toBe(200);
    expectConforms('get', '/v1/admin/keys', keys.res, keys.body);

    const readd = await send('POST', '/v1/admin/keys', { headers: { ...auth(adminToken), 'content-type': 'application/json' }, body: JSON.stringify({ public_key: publicKeyFile }) });
    expect(readd.res.status).toBe(200);
    expect(expectConforms('post', '/v1/admin/keys', readd.res, readd.body)).toMatchObject({ status: 'exists' });
    const invalid = await send('POST', '/v1/admin/keys', { headers: { ...auth(adminToken), 'content-type': 'application/json' }, body: JSON.stringify({ public_key: 'nope' }) });
    expect(invalid.res.status).toBe(400);
    expectConforms('post', '/v1/admin/keys', invalid.res, invalid.body);
    const forbidden = await send('POST', '/v1/admin/keys', { headers: { ...auth(publisherToken), 'content-type': 'application/json' }, body: '{}' });
    expect(forbidden.res.status).toBe(403);
    expectConforms('post', '/v1/admin/keys', forbidden.res, forbidden.body);

    const audit = await send('GET', '/v1/admin/audit?limit=2', { headers: auth(adminToken) });
    expect(audit.res.status).toBe(200);
    expect(expectConforms('get', '/v1/admin/audit', audit.res, audit.body)!['paging']).toMatchObject({ limit: 2, has_more: true });
    const badCursor = await send('GET', '/v1/admin/audit?cursor=%2A', { headers: auth(adminToken) });
    expect(badCursor.res.status).toBe(400);
    expectConforms('get', '/v1/admin/audit', badCursor.res, badCursor.body);

    const noKey = await send('DELETE', '/v1/admin/keys/0123456789ABCDEF', { headers: auth(adminToken) });
    expect(noKey.res.status).toBe(404);
    expectConforms('delete', '/v1/admin/keys/{keyId}', noKey.res, noKey.body);

    const deprecatePath = '/v1/admin/packs/{id}/{version}/deprecate';
    const url = `/v1/admin/packs/${PACK_ID}/${PACK_VERSION}/deprecate`;
    const json = { ...auth(publisherToken), 'content-type': 'application/json' };
    const deprecated = await send('POST', url, { headers: json, body: JSON.stringify({ message: 'Use 2.0.0.' }) });
    expect(deprecated.res.status).toBe(200);
    expect(expectConforms('post', deprecatePath, deprecated.res, deprecated.body)).toMatchObject({ status: 'deprecated', deprecated_message: 'Use 2.0.0.' });
    const restored = await send('POST', url, { headers: json, body: JSON.stringify({ message: '' }) });
    expect(expectConforms('post', deprecatePath, restored.res, restored.body)).toMatchObject({ status: 'published', deprecated_message: null });
    for (const [target, body] of [[`/v1/admin/packs/${PACK_ID}/1.0/deprecate`, '{}'], [url, '{"message": 1}'], [url, '{not json'], [url, '[]']] as const) {
      const bad = await send('POST', target, { headers: json, body });
      expect(bad.res.status, `${target} ${body}`).toBe(400);
      expectConforms('post', deprecatePath, bad.res, bad.body);
    }
    const tooLarge = await send('POST', url, { headers: json, body: JSON.stringify({ message: 'x'.repeat(70 * 1024) }) });
    expect(tooLarge.res.status).toBe(413);
    expectConforms('post', deprecatePath, tooLarge.res, tooLarge.body);
    const unknownPack = await send('POST', `/v1/admin/packs/no.such.pack/${PACK_VERSION}/deprecate`, { headers: json, body: '{"message":"x"}' });
    expect(unknownPack.res.status).toBe(404);
    expectConforms('post', deprecatePath, unknownPack.res, unknownPack.body);
  });

  it('releases: profile, draft, attach, validate, sign, publish, latest, deprecate', async () => {
    const admin = { ...auth(adminToken), 'content-type': 'application/json' };
    const manager = { ...auth(publisherToken), 'content-type': 'application/json' };
    const releaseKey = generateKeyPair();
    const keyAdded = await send('POST', '/v1/admin/keys', { headers: admin, body: JSON.stringify({ public_key: formatPublicKeyFile(releaseKey), purpose: 'release' }) });
    expect(keyAdded.res.status).toBe(201);
    expect(expectConforms('post', '/v1/admin/keys', keyAdded.res, keyAdded.body)!['key']).toMatchObject({ purpose: 'release' });
    const publicKeys = await send('GET', '/v1/keys');
    expect(expectConforms('get', '/v1/keys', publicKeys.res, publicKeys.body)!['keys']).toHaveLength(2);

    const profile = await send('PUT', '/v1/admin/release-profiles/core', { headers: manager, body: JSON.stringify({ roles: ['data'], description: 'The data pack.' }) });
    expect(profile.res.status).toBe(200);
    expectConforms('put', '/v1/admin/release-profiles/{name}', profile.res, profile.body);
    const badProfile = await send('PUT', '/v1/admin/release-profiles/Core', { headers: manager, body: JSON.stringify({ roles: [] }) });
    expect(badProfile.res.status).toBe(400);
    expectConforms('put', '/v1/admin/release-profiles/{name}', badProfile.res, badProfile.body);
    const profiles = await send('GET', '/v1/admin/release-profiles', { headers: manager });
    expectConforms('get', '/v1/admin/release-profiles', profiles.res, profiles.body);

    const draftBody = JSON.stringify({ name: '2026.11', channel: 'stable', min_app_version: '1.0.0', profile: 'core' });
    const created = await send('POST', '/v1/admin/releases', { headers: manager, body: draftBody });
    expect(created.res.status, created.body).toBe(201);
    const id = expectConforms('post', '/v1/admin/releases', created.res, created.body)!['id'] as number;
    for (const [body, status] of [[draftBody, 409], [JSON.stringify({ name: 'x', channel: 'nope', min_app_version: '1.0.0', roles: ['data'] }), 400], [JSON.stringify({ name: 'y', channel: 'stable', min_app_version: '1.0.0', profile: 'none' }), 404]] as const) {
      const refused = await send('POST', '/v1/admin/releases', { headers: manager, body });
      expect(refused.res.status, body).toBe(status);
      expectConforms('post', '/v1/admin/releases', refused.res, refused.body);
    }

    const artifacts = `/v1/admin/releases/${id}/artifacts`;
    const attached = await send('POST', artifacts, { headers: manager, body: JSON.stringify({ role: 'data', package_id: PACK_ID, version: PACK_VERSION }) });
    expect(attached.res.status, attached.body).toBe(201);
    expectConforms('post', '/v1/admin/releases/{id}/artifacts', attached.res, attached.body);
    const noPack = await send('POST', artifacts, { headers: manager, body: JSON.stringify({ role: 'extra', package_id: 'no.such.pack', version: '1.0.0' }) });
    expect(noPack.res.status).toBe(404);
    expectConforms('post', '/v1/admin/releases/{id}/artifacts', noPack.res, noPack.body);
    const typo = await send('POST', artifacts, { headers: manager, body: JSON.stringify({ role: 'dta', package_id: PACK_ID, version: PACK_VERSION }) });
    expect(typo.res.status).toBe(422);
    expectConforms('post', '/v1/admin/releases/{id}/artifacts', typo.res, typo.body);

    const report = await send('POST', `/v1/admin/releases/${id}/validate`, { headers: auth(publisherToken) });
    expect(expectConforms('post', '/v1/admin/releases/{id}/validate', report.res, report.body)).toMatchObject({ ok: true });
    const toSign = await send('GET', `/v1/admin/releases/${id}/manifest-body`, { headers: auth(publisherToken) });
    const { body: manifestBody, next_sequence } = expectConforms('get', '/v1/admin/releases/{id}/manifest-body', toSign.res, toSign.body) as { body: ReleaseManifestBody; next_sequence: number };
    const now = Date.now();
    const signed = signReleaseManifest(
      { ...manifestBody, sequence: next_sequence, signed_at: new Date(now).toISOString(), expires_at: new Date(now + 86_400_000).toISOString() },
      releaseKey,
    );
    const publishUrl = `/v1/admin/releases/${id}/publish`;
    const forged = await send('POST', publishUrl, { headers: manager, body: JSON.stringify({ manifest_json: signed.manifestJson, signature: 'not a signature' }) });
    expect(forged.res.status).toBe(422);
    expectConforms('post', '/v1/admin/releases/{id}/publish', forged.res, forged.body);
    const published = await send('POST', publishUrl, { headers: manager, body: JSON.stringify({ manifest_json: signed.manifestJson, signature: signed.signature }) });
    expect(published.res.status, published.body).toBe(200);
    expect(expectConforms('post', '/v1/admin/releases/{id}/publish', published.res, published.body)).toMatchObject({ status: 'published', sequence: next_sequence });
    const twice = await send('POST', publishUrl, { headers: manager, body: JSON.stringify({ manifest_json: signed.manifestJson, signature: signed.signature }) });
    expect(twice.res.status).toBe(409);
    expectConforms('post', '/v1/admin/releases/{id}/publish', twice.res, twice.body);
    const detach = await send('DELETE', `${artifacts}/data/${PACK_ID}`, { headers: auth(publisherToken) });
    expect(detach.res.status).toBe(409);
    expectConforms('delete', '/v1/admin/releases/{id}/artifacts/{role}/{packageId}', detach.res, detach.body);

    const latest = await send('GET', '/v1/releases/latest?app_version=1.0.0');
    expect(latest.res.status, latest.body).toBe(200);
    const served = expectConforms('get', '/v1/releases/latest', latest.res, latest.body)!;
    const validateRelease = schemaAt('/components/schemas/ReleaseManifest');
    expect(validateRelease(JSON.parse(served['manifest_json'] as string)), ajv.errorsText(validateRelease.errors)).toBe(true);
    expect(served['artifacts'][0]['download_url']).toBe(`${server.url}/v1/packs/${PACK_ID}/download?version=${PACK_VERSION}`);
    for (const [url, status] of [['/v1/releases/latest?channel=nope', 400], ['/v1/releases/latest?channel=beta', 404], ['/v1/releases/latest?app_version=x', 400]] as const) {
      const r = await send('GET', url);
      expect(r.res.status, url).toBe(status);
      expectConforms('get', '/v1/releases/latest', r.res, r.body);
    }
    const byId = await send('GET', `/v1/releases/${id}/manifest`);
    expect(byId.res.status).toBe(200);
    expectConforms('get', '/v1/releases/{id}/manifest', byId.res, byId.body);
    const notAnId = await send('GET', '/v1/releases/abc/manifest');
    expect(notAnId.res.status).toBe(404);
    expectConforms('get', '/v1/releases/{id}/manifest', notAnId.res, notAnId.body);
    const channels = await send('GET', '/v1/channels');
    expectConforms('get', '/v1/channels', channels.res, channels.body);

    const list = await send('GET', '/v1/admin/releases?channel=stable&status=published', { headers: auth(publisherToken) });
    expect(expectConforms('get', '/v1/admin/releases', list.res, list.body)!['releases']).toHaveLength(1);
    const badStatus = await send('GET', '/v1/admin/releases?status=gone', { headers: auth(publisherToken) });
    expect(badStatus.res.status).toBe(400);
    expectConforms('get', '/v1/admin/releases', badStatus.res, badStatus.body);
    const one = await send('GET', `/v1/admin/releases/${id}`, { headers: auth(publisherToken) });
    expectConforms('get', '/v1/admin/releases/{id}', one.res, one.body);
    const missing = await send('GET', '/v1/admin/releases/999999', { headers: auth(publisherToken) });
    expect(missing.res.status).toBe(404);
    expectConforms('get', '/v1/admin/releases/{id}', missing.res, missing.body);

    // A second release, withdrawn with a rollback to the first in one request.
    const next = await send('POST', '/v1/admin/releases', { headers: manager, body: JSON.stringify({ name: '2026.12', channel: 'stable', min_app_version: '1.0.0', profile: 'core' }) });
    const nextId = (JSON.parse(next.body) as { id: number }).id;
    await send('POST', `/v1/admin/releases/${nextId}/artifacts`, { headers: manager, body: JSON.stringify({ role: 'data', package_id: PACK_ID, version: PACK_VERSION }) });
    const signNow = async (releaseId: number) => {
      const fetched = await send('GET', `/v1/admin/releases/${releaseId}/manifest-body`, { headers: auth(publisherToken) });
      const { body: b, next_sequence: n } = JSON.parse(fetched.body) as { body: ReleaseManifestBody; next_sequence: number };
      return signReleaseManifest({ ...b, sequence: n, signed_at: new Date(now).toISOString(), expires_at: new Date(now + 86_400_000).toISOString() }, releaseKey);
    };
    const nextSigned = await signNow(nextId);
    expect((await send('POST', `/v1/admin/releases/${nextId}/publish`, { headers: manager, body: JSON.stringify({ manifest_json: nextSigned.manifestJson, signature: nextSigned.signature }) })).res.status).toBe(200);
    const back = await signNow(id);
    const rollbackUrl = `/v1/admin/releases/${nextId}/deprecate`;
    const refusedRollback = await send('POST', rollbackUrl, { headers: manager, body: JSON.stringify({ message: 'Bad.', rollback_to: { release_id: id, manifest_json: back.manifestJson, signature: 'not a signature' } }) });
    expect(refusedRollback.res.status).toBe(422);
    expectConforms('post', '/v1/admin/releases/{id}/deprecate', refusedRollback.res, refusedRollback.body);
    const rolledBack = await send('POST', rollbackUrl, { headers: manager, body: JSON.stringify({ message: 'Bad.', rollback_to: { release_id: id, manifest_json: back.manifestJson, signature: back.signature } }) });
    expect(rolledBack.res.status, rolledBack.body).toBe(200);
    expect(expectConforms('post', '/v1/admin/releases/{id}/deprecate', rolledBack.res, rolledBack.body)).toMatchObject({ deprecated: { id: nextId }, rolled_back_to: { id } });

    const deprecateUrl = `/v1/admin/releases/${id}/deprecate`;
    const blank = await send('POST', deprecateUrl, { headers: manager, body: '{"message":" "}' });
    expect(blank.res.status).toBe(400);
    expectConforms('post', '/v1/admin/releases/{id}/deprecate', blank.res, blank.body);
    const deprecated = await send('POST', deprecateUrl, { headers: manager, body: '{"message":"Withdrawn."}' });
    expect(expectConforms('post', '/v1/admin/releases/{id}/deprecate', deprecated.res, deprecated.body)).toMatchObject({ status: 'deprecated' });
    const again = await send('POST', deprecateUrl, { headers: manager, body: '{"message":"Withdrawn."}' });
    expect(again.res.status).toBe(409);
    expectConforms('post', '/v1/admin/releases/{id}/deprecate', again.res, again.body);
    const resign = await send('POST', `/v1/admin/releases/${id}/resign`, { headers: manager, body: JSON.stringify({ manifest_json: signed.manifestJson, signature: signed.signature }) });
    expect(resign.res.status).toBe(409);
    expectConforms('post', '/v1/admin/releases/{id}/resign', resign.res, resign.body);
  });

  it('metrics', async () => {
    const { res, body } = await send('GET', '/v1/metrics');
    expect(res.status).toBe(200);
    expectConforms('get', '/v1/metrics', res, body);
    expect(body).toContain('iqp_http_requests_total');
  });
});
