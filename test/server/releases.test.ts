/**
 * The release lifecycle over HTTP (startServer on 127.0.0.1:0, a real SQLite file): profiles,
 * create, attach, validate, sign on the client, publish, show, list, manifest, latest, deprecate;
 * every validation failure and warning; and the checks a signed manifest must pass on publish,
 * each refusal leaving the database as it was.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyReleaseManifest } from '../../src/pack/release-manifest.js';
import { parsePublicKey } from '../../src/pack/minisign.js';
import { type BuiltPack, expectError, newKey, registerKey, tempDir, type TestKey } from './helpers.js';
import {
  api,
  attach,
  buildReleasePack,
  channelSequence,
  createRelease,
  deprecateRelease,
  draftWith,
  postSigned,
  publishPack,
  publishRelease,
  releaseAudit,
  type ReleaseRegistry,
  signRelease,
  startReleaseRegistry,
  unchanged,
  uploadPack,
} from './release-helpers.js';

// The packs are built once; every test gets a fresh registry holding them, so each passes alone
// and in any order (sequences, listings and audit trails start empty).
let packKey: TestKey;
let built: BuiltPack[];
let reg: ReleaseRegistry;
let text10: BuiltPack;
let text11: BuiltPack;
let audio: BuiltPack;
let deck: BuiltPack;

beforeAll(async () => {
  packKey = newKey();
  const dir = tempDir('iqp-release-fixture-packs-');
  built = await Promise.all([
    buildReleasePack(dir, packKey, 'rel.text', '1.0.0'),
    buildReleasePack(dir, packKey, 'rel.text', '1.1.0'),
    buildReleasePack(dir, packKey, 'rel.audio', '1.0.0'),
    buildReleasePack(dir, packKey, 'rel.deck', '1.0.0', '3.0.0'),
    buildReleasePack(dir, packKey, 'rel.old', '1.0.0'),
  ]);
});
beforeEach(async () => {
  reg = await startReleaseRegistry({ packKey });
  for (const pack of built) await uploadPack(reg, pack);
  [text10, text11, audio, deck] = built as [BuiltPack, BuiltPack, BuiltPack, BuiltPack];
  const old = built[4]!;
  const dep = await api(reg, 'POST', `/v1/admin/packs/${old.package_id}/${old.version}/deprecate`, { message: 'superseded' });
  expect(dep.status, dep.body.toString()).toBe(200);
});
afterEach(() => reg?.close());

const codes = (issues: { code: string }[]) => issues.map((i) => i.code).sort();

describe('the lifecycle', () => {
  it('profile → create → attach → validate → publish → show/list/manifest/latest → deprecate, each step audited', async () => {
    const profile = await api(reg, 'PUT', '/v1/admin/release-profiles/app', { roles: ['text', 'audio'], description: 'the app' });
    expect(profile.status, profile.body.toString()).toBe(200);
    expect((await api(reg, 'GET', '/v1/admin/release-profiles')).json().profiles).toEqual([expect.objectContaining({ name: 'app', roles: ['audio', 'text'], description: 'the app' })]);

    const created = await createRelease(reg, { name: '2026.11', profile: 'app', notes: 'November', min_app_version: '1.2.0' });
    expect(created).toMatchObject({ status: 'draft', channel: 'stable', required_roles: ['audio', 'text'], profile: 'app', sequence: null, artifacts: [] });
    const first = await api(reg, 'POST', `/v1/admin/releases/${created.id}/artifacts`, { role: 'text', package_id: text11.package_id, version: text11.version });
    expect(first.status).toBe(201);
    const again = await api(reg, 'POST', `/v1/admin/releases/${created.id}/artifacts`, { role: 'text', package_id: text11.package_id, version: text11.version });
    expect(again.status, 'attaching the same artifact again is not a change').toBe(200);
    await attach(reg, created.id, 'audio', audio.package_id, audio.version);

    const report = await api(reg, 'POST', `/v1/admin/releases/${created.id}/validate`);
    expect(report.json()).toEqual({ ok: true, failures: [], warnings: [] });
    const published = await publishRelease(reg, created.id);
    expect(published).toMatchObject({ status: 'published', sequence: 1, signer_key_id: reg.releaseKey.keyId, published_by: expect.stringContaining('test-publisher') });
    expect((await api(reg, 'GET', `/v1/admin/releases/${created.id}`)).json()).toEqual(published);
    const listed = (await api(reg, 'GET', '/v1/admin/releases?status=published')).json();
    expect(listed.releases.map((r: { id: number }) => r.id)).toEqual([created.id]);

    const manifest = (await api(reg, 'GET', `/v1/releases/${created.id}/manifest`, undefined, null)).json();
    const latest = (await api(reg, 'GET', '/v1/releases/latest?channel=stable&app_version=1.2.0', undefined, null)).json();
    expect(latest).toEqual(manifest);
    const { manifest: signed, keyId } = verifyReleaseManifest(latest.manifest_json, latest.signature, [parsePublicKey(reg.releaseKey.publicKeyFile)]);
    expect(keyId).toBe(reg.releaseKey.keyId);
    expect(signed).toMatchObject({ release_id: created.id, name: '2026.11', channel: 'stable', sequence: 1, notes: 'November', min_app_version: '1.2.0' });
    expect(latest.artifacts.map((a: { role: string; sha256: string; size_bytes: number; download_url: string }) => [a.role, a.sha256, a.size_bytes, a.download_url])).toEqual([
      ['audio', audio.sha256, audio.size_bytes, `${reg.url}/v1/packs/rel.audio/download?version=1.0.0`],
      ['text', text11.sha256, text11.size_bytes, `${reg.url}/v1/packs/rel.text/download?version=1.1.0`],
    ]);

    const deprecated = await deprecateRelease(reg, created.id, 'bad audio');
    expect(deprecated).toMatchObject({ status: 'deprecated', deprecated_message: 'bad audio', sequence: 1 });
    expectError(await api(reg, 'GET', '/v1/releases/latest?channel=stable', undefined, null), 'IQP_E_NOT_FOUND');
    expect((await api(reg, 'GET', `/v1/releases/${created.id}/manifest`, undefined, null)).json()).toMatchObject({ status: 'deprecated', deprecated_message: 'bad audio' });
    expect(releaseAudit(reg, created.id).map((e) => e.action)).toEqual([
      'release.create',
      'release.attach',
      'release.attach',
      'release.validate',
      'release.publish',
      'release.deprecate',
    ]);
  });
});

describe('validation', () => {
  it('reports every failure and warning by code, and publishing is refused with the failures, changing nothing', async () => {
    const r = await createRelease(reg, { name: 'invalid', roles: ['text', 'audio', 'deck', 'legacy'], min_app_version: '2.0.0' });
    await attach(reg, r.id, 'text', text10.package_id, text10.version); // newer_version: 1.1.0 exists
    await attach(reg, r.id, 'text', audio.package_id, audio.version); // role_duplicate; audio role stays empty: role_missing
    await attach(reg, r.id, 'deck', deck.package_id, deck.version); // min_app_version: needs 3.0.0
    await attach(reg, r.id, 'bonus', text11.package_id, text11.version, true); // role_not_required
    // A pack deprecated after it was attached (attaching it now is refused, see the bad-input tests).
    const late = await publishPack(reg, 'rel.late', '1.0.0');
    await attach(reg, r.id, 'legacy', late.package_id, late.version);
    expect((await api(reg, 'POST', `/v1/admin/packs/${late.package_id}/${late.version}/deprecate`, { message: 'recalled' })).status).toBe(200);

    const report = (await api(reg, 'POST', `/v1/admin/releases/${r.id}/validate`)).json();
    expect(report.ok).toBe(false);
    expect(codes(report.failures)).toEqual(['min_app_version', 'pack_deprecated', 'role_duplicate', 'role_missing']);
    expect(report.failures.find((f: { code: string }) => f.code === 'role_missing')).toMatchObject({ role: 'audio' });
    expect(report.failures.find((f: { code: string }) => f.code === 'min_app_version')).toMatchObject({ role: 'deck', artifact: 'rel.deck@1.0.0' });
    expect(codes(report.warnings)).toEqual(['newer_version', 'role_not_required']);
    expect(report.warnings.find((w: { code: string }) => w.code === 'newer_version')).toMatchObject({ artifact: 'rel.text@1.0.0' });

    const signed = await signRelease(reg, r.id);
    const refused = await unchanged(reg, () => postSigned(reg, r.id, signed));
    expectError(refused, 'IQP_E_RELEASE_INVALID');
    expect(codes(refused.json().error.details.failures)).toEqual(['min_app_version', 'pack_deprecated', 'role_duplicate', 'role_missing']);
    expect((await api(reg, 'GET', `/v1/admin/releases/${r.id}`)).json()).toMatchObject({ status: 'draft', sequence: null });
  });

  it('passes once fixed, warnings alone do not block publishing', async () => {
    const r = await draftWith(reg, 'fixed', { text: text10, audio });
    await attach(reg, r.id, 'bonus', deck.package_id, deck.version, true);
    const before = await api(reg, 'POST', `/v1/admin/releases/${r.id}/validate`);
    expect(codes(before.json().failures)).toEqual(['min_app_version']);
    expect((await api(reg, 'DELETE', `/v1/admin/releases/${r.id}/artifacts/bonus/rel.deck`)).status).toBe(200);
    const report = (await api(reg, 'POST', `/v1/admin/releases/${r.id}/validate`)).json();
    expect(report).toMatchObject({ ok: true, failures: [] });
    expect(codes(report.warnings)).toEqual(['newer_version']);
    expect(await publishRelease(reg, r.id)).toMatchObject({ status: 'published' });
  });

  it('warns no_release_keys on a registry without release keys, where publishing is refused as untrusted', async () => {
    const bare = await startReleaseRegistry({ releaseKey: false });
    try {
      const pack = await publishPack(bare, 'rel.text', '1.0.0');
      const r = await draftWith(bare, 'keyless', { text: pack });
      const report = (await api(bare, 'POST', `/v1/admin/releases/${r.id}/validate`)).json();
      expect(report).toMatchObject({ ok: true, failures: [] });
      expect(codes(report.warnings)).toEqual(['no_release_keys']);
      const signed = await signRelease(bare, r.id);
      expectError(await unchanged(bare, () => postSigned(bare, r.id, signed)), 'IQP_E_SIG_UNTRUSTED_KEY');
    } finally {
      await bare.close();
    }
  });
});

describe('the signed manifest on publish', () => {
  it('refuses a wrong key, a tampered manifest, other artifacts, a wrong sequence, an expired manifest; then accepts the right one', async () => {
    const r = await draftWith(reg, 'signed', { text: text11, audio });
    const stranger = newKey();
    const packPurpose = newKey();
    await registerKey(reg.url, reg.admin, packPurpose, 'pack');
    // A release already published on the channel, so that there is a used sequence to refuse.
    await publishRelease(reg, (await draftWith(reg, 'earlier', { text: text10 })).id);
    const next = channelSequence(reg, 'stable') + 1;
    const refuse = async (code: Parameters<typeof expectError>[1], signed: { manifest_json: string; signature: string }, what: string) =>
      expectError(await unchanged(reg, () => postSigned(reg, r.id, signed)), code, what);

    await refuse('IQP_E_SIG_UNTRUSTED_KEY', await signRelease(reg, r.id, { key: stranger }), 'a key the registry does not know');
    await refuse('IQP_E_SIG_UNTRUSTED_KEY', await signRelease(reg, r.id, { key: packPurpose }), 'a pack-signing key');
    await refuse('IQP_E_SIG_UNTRUSTED_KEY', await signRelease(reg, r.id, { key: reg.packKey }), 'the pack key');
    const good = await signRelease(reg, r.id);
    const tampered = good.manifest_json.replace('"notes": ""', '"notes": "x"');
    expect(tampered).not.toBe(good.manifest_json);
    await refuse('IQP_E_SIG_INVALID', { ...good, manifest_json: tampered }, 'tampered manifest');
    const other = await signRelease(reg, r.id, { body: (b) => ({ ...b, artifacts: b.artifacts.map((a) => (a.role === 'text' ? { ...a, version: '1.0.0', sha256: text10.sha256 } : a)) }) });
    await refuse('IQP_E_RELEASE_MANIFEST', other, 'other artifacts');
    await refuse('IQP_E_RELEASE_MANIFEST', await signRelease(reg, r.id, { body: (b) => ({ ...b, artifacts: b.artifacts.slice(1) }) }), 'fewer artifacts');
    await refuse('IQP_E_RELEASE_MANIFEST', await signRelease(reg, r.id, { body: (b) => ({ ...b, channel: 'beta' }) }), 'another channel');
    const ahead = await unchanged(reg, async () => postSigned(reg, r.id, await signRelease(reg, r.id, { sequence: next + 1 })));
    expectError(ahead, 'IQP_E_RELEASE_SEQUENCE');
    expect(ahead.json().error.details).toMatchObject({ next_sequence: next });
    expect(next, 'one release published on stable before').toBe(2);
    await refuse('IQP_E_RELEASE_SEQUENCE', await signRelease(reg, r.id, { sequence: next - 1 }), 'a used sequence');
    await refuse('IQP_E_RELEASE_EXPIRED', await signRelease(reg, r.id, { expiresAt: new Date(Date.now() - 1000) }), 'expired');
    expectError(await unchanged(reg, () => api(reg, 'POST', `/v1/admin/releases/${r.id}/publish`, { manifest_json: good.manifest_json })), 'IQP_E_INVALID_REQUEST', 'no signature');

    const published = (await postSigned(reg, r.id, good)).json();
    expect(published).toMatchObject({ status: 'published', sequence: next, signer_key_id: reg.releaseKey.keyId });
    expect(channelSequence(reg, 'stable')).toBe(next);
    expectError(await unchanged(reg, () => postSigned(reg, r.id, good)), 'IQP_E_RELEASE_STATE', 'publishing twice');
  });

  it('re-signs a published release with the next sequence and a later expiry; a stale sequence is refused', async () => {
    const r = await draftWith(reg, 'resigned', { text: text11 });
    const first = await publishRelease(reg, r.id);
    const stale = await signRelease(reg, r.id, { sequence: first.sequence! });
    expectError(await unchanged(reg, () => postSigned(reg, r.id, stale, 'resign')), 'IQP_E_RELEASE_SEQUENCE');
    const later = new Date(Date.now() + 90 * 86_400_000);
    const resigned = await publishRelease(reg, r.id, 'resign', { expiresAt: later });
    expect(resigned).toMatchObject({ status: 'published', sequence: first.sequence! + 1, published_at: first['published_at'] });
    expect(Date.parse(resigned.expires_at!)).toBeGreaterThan(Date.parse(first.expires_at!));
    expect(releaseAudit(reg, r.id).filter((e) => e.action === 'release.resign')).toEqual([
      { action: 'release.resign', details: expect.objectContaining({ before: expect.objectContaining({ sequence: first.sequence }), after: expect.objectContaining({ sequence: first.sequence! + 1 }) }) },
    ]);
    const draft = await draftWith(reg, 'not-yet', { text: text11 });
    expectError(await unchanged(reg, async () => postSigned(reg, draft.id, await signRelease(reg, draft.id), 'resign')), 'IQP_E_RELEASE_STATE');
  });

  it('refuses to re-sign a release that no longer validates (a pack deprecated since it was published)', async () => {
    const pack = await publishPack(reg, 'rel.resign-me', '1.0.0');
    const r = await draftWith(reg, 'resign-invalid', { text: pack });
    await publishRelease(reg, r.id);
    const dep = await api(reg, 'POST', `/v1/admin/packs/${pack.package_id}/${pack.version}/deprecate`, { message: 'bad audio' });
    expect(dep.status).toBe(200);
    const reply = await unchanged(reg, async () => postSigned(reg, r.id, await signRelease(reg, r.id), 'resign'));
    expectError(reply, 'IQP_E_RELEASE_INVALID');
    expect(reply.json().error.details.failures.map((f: { code: string }) => f.code)).toEqual(['pack_deprecated']);
  });
});
