/**
 * Bad input to the release endpoints: each answered with a clear 4xx and its code, and nothing
 * partly changed (the releases, their artifacts, profiles, channel sequences and the audit log
 * compared before and after, straight from registry.sqlite). Then who may do what.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { type BuiltPack, call, expectError, newKey, type Reply } from './helpers.js';
import { api, createRelease, draftWith, publishPack, publishRelease, type ReleaseJson, type ReleaseRegistry, startReleaseRegistry, unchanged } from './release-helpers.js';

let reg: ReleaseRegistry;
let pack: BuiltPack;
let deprecated: BuiltPack;
let draft: ReleaseJson;
let published: ReleaseJson;

beforeAll(async () => {
  reg = await startReleaseRegistry();
  pack = await publishPack(reg, 'bad.text', '1.0.0');
  deprecated = await publishPack(reg, 'bad.old', '1.0.0');
  expect((await api(reg, 'POST', `/v1/admin/packs/${deprecated.package_id}/1.0.0/deprecate`, { message: 'recalled' })).status).toBe(200);
  draft = await draftWith(reg, 'draft', { text: pack });
  published = await publishRelease(reg, (await draftWith(reg, 'published', { text: pack })).id);
});
afterAll(() => reg?.close());

/** The request is refused with `code` (and that code's HTTP status) and changes nothing. */
async function refused(code: ErrorCode, request: () => Promise<Reply>, what: string): Promise<Reply> {
  const reply = await unchanged(reg, request);
  expectError(reply, code, what);
  expect(reply.status, what).toBeGreaterThanOrEqual(400);
  expect(reply.status, what).toBeLessThan(500);
  return reply;
}

describe('attaching', () => {
  const attachTo = (id: number, body: Record<string, unknown>) => () => api(reg, 'POST', `/v1/admin/releases/${id}/artifacts`, body);

  it('refuses an unknown pack or version (404), a deprecated pack, a published release, and malformed fields', async () => {
    await refused('IQP_E_NOT_FOUND', attachTo(draft.id, { role: 'extra', package_id: 'no.such.pack', version: '1.0.0' }), 'unknown pack');
    await refused('IQP_E_NOT_FOUND', attachTo(draft.id, { role: 'extra', package_id: pack.package_id, version: '9.9.9' }), 'unpublished version');
    const dep = await refused('IQP_E_PACK_NOT_ATTACHABLE', attachTo(draft.id, { role: 'extra', package_id: deprecated.package_id, version: '1.0.0' }), 'deprecated pack');
    expect(dep.json().error.message).toContain('recalled');
    await refused('IQP_E_RELEASE_STATE', attachTo(published.id, { role: 'extra', package_id: pack.package_id, version: '1.0.0' }), 'published release');
    await refused('IQP_E_NOT_FOUND', attachTo(999_999, { role: 'text', package_id: pack.package_id, version: '1.0.0' }), 'unknown release');
    await refused('IQP_E_USAGE', attachTo(draft.id, { role: 'Not A Role', package_id: pack.package_id, version: '1.0.0' }), 'bad role');
    await refused('IQP_E_INVALID_REQUEST', attachTo(draft.id, { role: 'text', version: '1.0.0' }), 'no package_id');
    await refused('IQP_E_INVALID_VERSION', attachTo(draft.id, { role: 'text', package_id: pack.package_id, version: 'latest' }), 'bad version');
    await refused('IQP_E_USAGE', () => call(reg.url, `/v1/admin/releases/${draft.id}/artifacts`, { method: 'POST', token: reg.publisher, headers: { 'content-type': 'application/json' }, body: '{"role":' }), 'broken JSON');
    await refused('IQP_E_INVALID_REQUEST', () => api(reg, 'POST', `/v1/admin/releases/${draft.id}/artifacts`, ['text']), 'a JSON array');
  });

  it('refuses detaching from a published release or what is not attached', async () => {
    await refused('IQP_E_RELEASE_STATE', () => api(reg, 'DELETE', `/v1/admin/releases/${published.id}/artifacts/text/${pack.package_id}`), 'published');
    await refused('IQP_E_NOT_FOUND', () => api(reg, 'DELETE', `/v1/admin/releases/${draft.id}/artifacts/other/${pack.package_id}`), 'not attached');
  });
});

describe('body size', () => {
  it('reads release bodies up to 1 MiB (signed manifests of big releases), refusing larger ones with 413', async () => {
    // Past the 64 KiB other admin routes take: judged by the service (not a manifest), not by size.
    const big = { manifest_json: `{"pad":"${'x'.repeat(200 * 1024)}"}`, signature: 'x' };
    const read = await unchanged(reg, () => api(reg, 'POST', `/v1/admin/releases/${draft.id}/publish`, big));
    expect(read.status, read.body.toString('utf8').slice(0, 200)).not.toBe(413);
    expect(read.status).toBeGreaterThanOrEqual(400);
    const huge = { manifest_json: 'x'.repeat(1024 * 1024 + 1), signature: 'x' };
    await refused('IQP_E_UPLOAD_TOO_LARGE', () => api(reg, 'POST', `/v1/admin/releases/${draft.id}/publish`, huge), 'over 1 MiB');
  });
});

describe('creating', () => {
  const create = (body: Record<string, unknown>) => () => api(reg, 'POST', '/v1/admin/releases', { name: 'new', channel: 'stable', min_app_version: '1.0.0', roles: ['text'], ...body });

  it('refuses an unknown channel, a malformed min_app_version, a taken name, and missing or bad fields', async () => {
    await refused('IQP_E_CHANNEL_UNKNOWN', create({ channel: 'nope' }), 'unknown channel');
    await refused('IQP_E_INVALID_REQUEST', create({ channel: undefined }), 'no channel');
    for (const v of ['1.0', 'v1.0.0', '']) await refused('IQP_E_INVALID_VERSION', create({ min_app_version: v }), `min_app_version ${JSON.stringify(v)}`);
    await refused('IQP_E_INVALID_REQUEST', create({ min_app_version: 1 }), 'min_app_version not a string');
    await refused('IQP_E_RELEASE_EXISTS', create({ name: 'draft' }), 'taken name');
    await refused('IQP_E_NOT_FOUND', create({ profile: 'no-such-profile' }), 'unknown profile');
    await refused('IQP_E_USAGE', create({ roles: [] }), 'no roles');
    await refused('IQP_E_USAGE', create({ roles: ['Text'] }), 'bad role');
    await refused('IQP_E_USAGE', create({ name: '' }), 'empty name');
    await refused('IQP_E_USAGE', create({ name: 'x'.repeat(101) }), 'long name');
    await refused('IQP_E_INVALID_REQUEST', create({ notes: 42 }), 'notes not a string');
  });
});

describe('publishing and deprecating', () => {
  it('refuses publishing twice, publishing an invalid release, deprecating a draft or without a message', async () => {
    const resend = await call(reg.url, `/v1/releases/${published.id}/manifest`);
    const { manifest_json, signature } = resend.json();
    await refused('IQP_E_RELEASE_STATE', () => api(reg, 'POST', `/v1/admin/releases/${published.id}/publish`, { manifest_json, signature }), 'publishing twice');
    const empty = await createRelease(reg, { name: 'empty', roles: ['text'] });
    const invalid = await refused('IQP_E_RELEASE_INVALID', () => api(reg, 'POST', `/v1/admin/releases/${empty.id}/publish`, { manifest_json, signature }), 'invalid');
    expect(invalid.json().error.details.failures).toEqual([expect.objectContaining({ code: 'role_missing', role: 'text' })]);
    await refused('IQP_E_RELEASE_STATE', () => api(reg, 'POST', `/v1/admin/releases/${draft.id}/deprecate`, { message: 'no' }), 'deprecating a draft');
    await refused('IQP_E_INVALID_REQUEST', () => api(reg, 'POST', `/v1/admin/releases/${published.id}/deprecate`, {}), 'no message');
    await refused('IQP_E_USAGE', () => api(reg, 'POST', `/v1/admin/releases/${published.id}/deprecate`, { message: '   ' }), 'blank message');
    await refused('IQP_E_NOT_FOUND', () => api(reg, 'POST', '/v1/admin/releases/999999/deprecate', { message: 'x' }), 'unknown release');
    await refused('IQP_E_NOT_FOUND', () => api(reg, 'GET', '/v1/admin/releases/abc'), 'not an id');
    await refused('IQP_E_NOT_FOUND', () => call(reg.url, `/v1/releases/${draft.id}/manifest`), 'a draft has no manifest');
  });

  it('refuses bad profiles', async () => {
    await refused('IQP_E_USAGE', () => api(reg, 'PUT', '/v1/admin/release-profiles/Bad Name', { roles: ['text'] }), 'name');
    await refused('IQP_E_USAGE', () => api(reg, 'PUT', '/v1/admin/release-profiles/ok', { roles: [] }), 'no roles');
    await refused('IQP_E_INVALID_REQUEST', () => api(reg, 'PUT', '/v1/admin/release-profiles/ok', { roles: 'text' }), 'roles not a list');
  });
});

describe('auth', () => {
  const endpoints: [string, string, unknown?][] = [
    ['POST', '/v1/admin/releases', { name: 'x', channel: 'stable', min_app_version: '1.0.0', roles: ['text'] }],
    ['GET', '/v1/admin/releases'],
    ['GET', '/v1/admin/releases/1'],
    ['POST', '/v1/admin/releases/1/artifacts', { role: 'text', package_id: 'bad.text', version: '1.0.0' }],
    ['DELETE', '/v1/admin/releases/1/artifacts/text/bad.text'],
    ['POST', '/v1/admin/releases/1/validate'],
    ['GET', '/v1/admin/releases/1/manifest-body'],
    ['POST', '/v1/admin/releases/1/publish', {}],
    ['POST', '/v1/admin/releases/1/resign', {}],
    ['POST', '/v1/admin/releases/2/deprecate', { message: 'x' }],
    ['GET', '/v1/admin/release-profiles'],
    ['PUT', '/v1/admin/release-profiles/p', { roles: ['text'] }],
  ];

  it('answers 401 without a token, with an unknown token and with a revoked one, on every admin release endpoint', async () => {
    const revoked = await reg.running.registry.services.tokens.create('publisher', 'soon revoked', 'test');
    await reg.running.registry.services.tokens.revoke(revoked.record.id, 'test');
    for (const [method, path, json] of endpoints) {
      for (const [token, what] of [[null, 'no token'], ['iqp_not-a-real-token', 'unknown token'], [revoked.token, 'revoked token']] as const) {
        const r = await refused('IQP_E_UNAUTHORIZED', () => api(reg, method, path, json, token), `${method} ${path} with ${what}`);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
  });

  it('lets publisher and admin tokens manage releases, but only admin register release keys; apps read without a token', async () => {
    expect((await api(reg, 'POST', '/v1/admin/releases', { name: 'by-admin', channel: 'stable', min_app_version: '1.0.0', roles: ['text'] }, reg.admin)).status).toBe(201);
    expect((await api(reg, 'POST', '/v1/admin/releases', { name: 'by-publisher', channel: 'stable', min_app_version: '1.0.0', roles: ['text'] })).status).toBe(201);
    const key = newKey();
    await refused('IQP_E_FORBIDDEN', () => api(reg, 'POST', '/v1/admin/keys', { public_key: key.publicKeyFile, purpose: 'release' }), 'publisher adds a release key');
    expect((await call(reg.url, '/v1/releases/latest')).status).toBe(200);
    expect((await call(reg.url, `/v1/releases/${published.id}/manifest`)).status).toBe(200);
    expect((await call(reg.url, '/v1/channels')).json()).toMatchObject({ channels: ['stable', 'beta', 'nightly'] });
  });
});
