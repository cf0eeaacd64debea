/**
 * `iqp pull --release` against a registry that lies: a plain HTTP server on 127.0.0.1 serving
 * release manifests signed here with the fixed test keys (fixtures/keys: other.key is the release
 * key the client pins, corpus.key signed every pack in fixtures/good and fixtures/bad), and the
 * real bin/iqp. Every refusal exits as the catalog says and leaves the trust state and --out
 * exactly as they were.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey, parseSecretKey, type SecretKey } from '../../src/pack/minisign.js';
import { TrustStore } from '../../src/client/trust.js';
import { type ReleaseArtifact, type ReleaseManifest, signReleaseManifest } from '../../src/pack/release-manifest.js';
import { EPOCH, iqp, listTree, ROOT, type RunResult, tempDir } from '../e2e/helpers.js';
import { type FakeRegistry, fakeRegistry, sendJson } from './pull-registry.js';

const KEYS = join(ROOT, 'fixtures', 'keys');
const GOOD = join(ROOT, 'fixtures', 'good', 'translation.iqp');
const ID = 'example.translation.en';
const REGISTRY_ID = '5f0c3a1e9b7d4c28a6e1f2b3c4d5e6f7';
const packKey = parsePublicKey(readFileSync(join(KEYS, 'corpus.pub'), 'utf8'));
let releaseKey: SecretKey;
/** Another valid pack with the same id and version as GOOD (built now, so other bytes), signed by the same key. */
let rebuilt: Buffer;

beforeAll(async () => {
  releaseKey = await parseSecretKey(readFileSync(join(KEYS, 'other.key'), 'utf8'), null);
  const src = tempDir('iqp-release-pull-hostile-src-');
  const init = await iqp(['init', 'src', '--template', 'translation', '--id', ID, '-y'], { cwd: src });
  expect(init.code, init.stderr).toBe(0);
  const built = await iqp(['build', 'src', '--key', join(KEYS, 'corpus.key'), '--out', 'rebuilt.iqp'], { cwd: src, env: { SOURCE_DATE_EPOCH: EPOCH } });
  expect(built.code, built.stderr).toBe(0);
  rebuilt = readFileSync(join(src, 'rebuilt.iqp'));
  expect(rebuilt.equals(readFileSync(GOOD))).toBe(false);
});

/** The artifact a release lists for `bytes`, as `id`@`version` in `role`, signed by the corpus key. */
function artifact(role: string, bytes: Buffer, id = ID, version = '1.0.0'): ReleaseArtifact {
  return {
    role,
    package_id: id,
    version,
    size_bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    signer_key_id: packKey.keyId,
    download_path: `/v1/packs/${id}/download?version=${version}`,
  };
}

function release(releaseId: number, sequence: number, artifacts: ReleaseArtifact[]): ReleaseManifest {
  return {
    format: 2,
    kind: 'iqp-release',
    registry_id: REGISTRY_ID,
    release_id: releaseId,
    name: `r${releaseId}`,
    channel: 'stable',
    sequence,
    min_app_version: '1.0.0',
    notes: '',
    signed_at: '2026-01-01T00:00:00Z',
    expires_at: '2099-01-01T00:00:00Z',
    artifacts,
  };
}

interface Served {
  /** What GET /v1/releases/{id}/manifest answers for each id (signed with the release key). */
  readonly releases: Record<number, ReleaseManifest>;
  /** download_path → the bytes served there. */
  readonly files: Record<string, Buffer>;
  /** GET /v1/keys; by default the corpus key as the one pack key. */
  readonly keys?: unknown;
  /** Runs when a download is asked for, before it is answered. */
  readonly onDownload?: () => void;
  /** What GET /v1/releases/latest answers. */
  readonly latest?: unknown;
}

/** The registry's whole answer for a release (its summary beside the signed manifest), as the real one serves it; `tamper` edits the summary only. */
function servedView(m: ReleaseManifest, tamper: (view: Record<string, unknown>) => void = () => {}): Record<string, unknown> {
  const signed = signReleaseManifest(m, releaseKey);
  const view: Record<string, unknown> = {
    release_id: m.release_id,
    name: m.name,
    channel: m.channel,
    status: 'published',
    sequence: m.sequence,
    min_app_version: m.min_app_version,
    notes: m.notes,
    published_at: m.signed_at,
    expires_at: m.expires_at,
    deprecated_message: null,
    signer_key_id: parsePublicKey(readFileSync(join(KEYS, 'other.pub'), 'utf8')).keyId,
    registry_id: m.registry_id,
    manifest_json: signed.manifestJson,
    signature: signed.signature,
    artifacts: m.artifacts.map(({ download_path, ...a }) => ({ ...a, download_url: `http://127.0.0.1${download_path}`, manifest_url: `http://127.0.0.1/v1/packs/${a.package_id}/${a.version}/manifest` })),
  };
  tamper(view);
  return view;
}

function registry(served: Served): Promise<FakeRegistry> {
  return fakeRegistry((req, res) => {
    const url = req.url!;
    const asked = /^\/v1\/releases\/(\d+)\/manifest$/.exec(url);
    if (asked) {
      const m = served.releases[Number(asked[1])];
      if (!m) return sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'No such release.' } }, 404);
      const signed = signReleaseManifest(m, releaseKey);
      return sendJson(res, { release_id: m.release_id, status: 'published', deprecated_message: null, manifest_json: signed.manifestJson, signature: signed.signature });
    }
    if (url.startsWith('/v1/releases/latest?') && 'latest' in served) return sendJson(res, served.latest);
    if (url === '/v1/keys') {
      return sendJson(res, 'keys' in served ? served.keys : { keys: [{ key_id: packKey.keyId, name: 'corpus', purpose: 'pack', public_key: readFileSync(join(KEYS, 'corpus.pub'), 'utf8').split('\n')[1], added_at: '2026-01-01T00:00:00Z' }] });
    }
    served.onDownload?.();
    const bytes = served.files[url];
    if (!bytes) return sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'No such file.' } }, 404);
    res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
  });
}

/** A work folder with the pinned release key; --out is `out`, the trust state `trust.json`. */
function work(): string {
  const dir = tempDir('iqp-release-pull-hostile-');
  copyFileSync(join(KEYS, 'other.pub'), join(dir, 'release.pub'));
  return dir;
}

function pullRelease(reg: FakeRegistry, dir: string, id: number | 'latest', output: 'json' | 'human' = 'json', extra: readonly string[] = []): Promise<RunResult> {
  const args = ['pull', '--release', String(id), '--release-key', 'release.pub', '--trust-state', 'trust.json', '--out', 'out', '--registry', reg.url, ...extra];
  return iqp(output === 'json' ? [...args, '--json'] : args, {
    cwd: dir,
    env: { IQP_RETRY_BASE_MS: '1' },
  });
}

/** The trust state and every file in --out, byte for byte. */
function snapshot(dir: string): { trust: Buffer | null; out: Record<string, Buffer> } {
  const trustPath = join(dir, 'trust.json');
  const out = join(dir, 'out');
  const files = existsSync(out) ? listTree(out) : [];
  return { trust: existsSync(trustPath) ? readFileSync(trustPath) : null, out: Object.fromEntries(files.map((f) => [f, readFileSync(join(out, f))])) };
}

/** A refused pull: the error code and exit code, and nothing changed in the trust state or --out. */
async function expectRefused(reg: FakeRegistry, dir: string, id: number | 'latest', code: string, exit: number, extra: readonly string[] = []): Promise<RunResult> {
  const before = snapshot(dir);
  const r = await pullRelease(reg, dir, id, 'json', extra);
  expect(r.signal, r.stderr).toBeNull();
  expect(r.json().error?.code, r.stdout + r.stderr).toBe(code);
  expect(r.code).toBe(exit);
  expect(snapshot(dir), 'trust state and --out unchanged').toEqual(before);
  return r;
}

describe('iqp pull --release against a registry that lies', () => {
  it('refuses a keys answer without a keys list as the registry’s fault (IQP_E_REGISTRY), as a single-pack pull does', async () => {
    const good = readFileSync(GOOD);
    const a = artifact('text', good);
    for (const keys of [{}, { keys: 'none' }, null]) {
      const reg = await registry({ releases: { 7: release(7, 1, [a]) }, files: { [a.download_path]: good }, keys });
      const r = await expectRefused(reg, work(), 7, 'IQP_E_REGISTRY', 3);
      expect(r.json().error.message).toContain('/v1/keys');
    }
  });

  it('refuses another release’s signed manifest served for the id asked for (IQP_E_RELEASE_MANIFEST)', async () => {
    const good = readFileSync(GOOD);
    const a = artifact('text', good);
    // Release 8, validly signed and newer, served as release 7.
    const r8 = release(8, 2, [a]);
    const reg = await registry({ releases: { 7: r8, 8: r8 }, files: { [a.download_path]: good } });
    const dir = work();
    const r = await expectRefused(reg, dir, 7, 'IQP_E_RELEASE_MANIFEST', 1);
    expect(r.json().error.details).toEqual({ release_id: 8, expected_release_id: 7 });
    expect(reg.hits.filter((h) => h.includes('/download'))).toEqual([]);
    const ok = await pullRelease(reg, dir, 8);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.json()).toMatchObject({ release_id: 8, sequence: 2 });
  });

  it('refuses a manifest listing one package_id@version twice with other bytes, before downloading anything (IQP_E_RELEASE_MANIFEST)', async () => {
    // Both packs verify; saved under one name, the second would replace the first after its check.
    const good = readFileSync(GOOD);
    const first = artifact('reference', good);
    const second = { ...artifact('text', rebuilt), download_path: '/v1/elsewhere' };
    const reg = await registry({ releases: { 7: release(7, 1, [first, second]) }, files: { [first.download_path]: good, [second.download_path]: rebuilt } });
    const r = await expectRefused(reg, work(), 7, 'IQP_E_RELEASE_MANIFEST', 1);
    expect(r.json().error.message).toContain(`${ID}@1.0.0`);
    expect(r.json().error.details).toMatchObject({ package_id: ID, version: '1.0.0' });
    expect(reg.hits.filter((h) => !h.includes('/v1/releases/'))).toEqual([]);
  });

  it.each([
    ['a pack whose content.sqlite does not match its manifest', 'IQP_E_CONTENT_TABLES', () => readFileSync(join(ROOT, 'fixtures', 'bad', 'content-row-count-wrong.iqp')), ID],
    ['a good pack listed under another package id', 'IQP_E_DOWNLOAD_MISMATCH', () => readFileSync(GOOD), 'example.other'],
  ])('checks a pack already in --out with the signed SHA-256 as it checks a download: %s (%s)', async (_what, code, bytes, id) => {
    const pack = bytes();
    const a = artifact('text', pack, id);
    const reg = await registry({ releases: { 7: release(7, 1, [a]) }, files: { [a.download_path]: pack } });
    const dir = work();
    await expectRefused(reg, dir, 7, code, 1);
    expect(reg.hits.filter((h) => h.includes('/download'))).toHaveLength(1);
    // The same bytes already there (the very file the release signs): refused the same way, and left as it was.
    mkdirSync(join(dir, 'out'), { recursive: true });
    writeFileSync(join(dir, 'out', `${id}-1.0.0.iqp`), pack);
    await expectRefused(reg, dir, 7, code, 1);
    expect(reg.hits.filter((h) => h.includes('/download'))).toHaveLength(1);
  });

  it('refuses a release listing a pack larger than --max-size allows, or than any pack can be, before downloading any (IQP_E_RESPONSE_TOO_LARGE)', async () => {
    const good = readFileSync(GOOD);
    const small = artifact('text', good);
    for (const [size, extra] of [
      [1e12, []],
      [40 * 1024 * 1024, ['--max-size', String(1024 * 1024)]],
    ] as const) {
      // The large pack comes second: the first must not be fetched either.
      const large = { ...artifact('audio', rebuilt, 'example.audio'), size_bytes: size };
      const reg = await registry({ releases: { 7: release(7, 1, [small, large]) }, files: { [small.download_path]: good, [large.download_path]: rebuilt } });
      const r = await expectRefused(reg, work(), 7, 'IQP_E_RESPONSE_TOO_LARGE', 3, extra);
      expect(r.json().error.message).toContain('example.audio@1.0.0');
      expect(r.json().error.details.size_bytes).toBe(size);
      expect(reg.hits.filter((h) => h.includes('/download'))).toEqual([]);
    }
    // Within the limit, the same flag takes the release.
    const reg = await registry({ releases: { 7: release(7, 1, [small]) }, files: { [small.download_path]: good } });
    const ok = await pullRelease(reg, work(), 7, 'json', ['--max-size', String(1024 * 1024)]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  });

  it('release latest checks the signed manifest with a pinned release key, refuses a summary that differs from it, and says when it checked nothing', async () => {
    const good = readFileSync(GOOD);
    const m = release(7, 3, [artifact('text', good)]);
    const latest = (reg: FakeRegistry, extra: string[]) => iqp(['release', 'latest', '--registry', reg.url, '--json', ...extra], { cwd: work() });
    const pinned = ['--release-key', 'release.pub'];

    const honest = await registry({ releases: {}, files: {}, latest: servedView(m) });
    const checked = await latest(honest, pinned);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.json()).toMatchObject({ release_id: 7, sequence: 3, signature_checked: true, checked_with_key: parsePublicKey(readFileSync(join(KEYS, 'other.pub'), 'utf8')).keyId });
    const unchecked = await latest(honest, []);
    expect(unchecked.json()).toMatchObject({ release_id: 7, signature_checked: false, checked_with_key: null });
    const human = await iqp(['release', 'latest', '--registry', honest.url], { cwd: work() });
    expect(human.stdout).toContain('signature NOT checked');

    for (const tamper of [
      (v: Record<string, unknown>) => (v['sequence'] = 4),
      (v: Record<string, unknown>) => (v['expires_at'] = '2100-01-01T00:00:00Z'),
      (v: Record<string, unknown>) => ((v['artifacts'] as { sha256: string }[])[0]!.sha256 = 'f'.repeat(64)),
    ]) {
      const lying = await registry({ releases: {}, files: {}, latest: servedView(m, tamper) });
      const r = await latest(lying, pinned);
      expect(r.json().error?.code, r.stdout + r.stderr).toBe('IQP_E_RELEASE_MANIFEST');
      expect(r.code).toBe(1);
    }
    // A manifest signed by a key that is not pinned.
    const other = await registry({ releases: {}, files: {}, latest: servedView(m) });
    const dir = work();
    copyFileSync(join(KEYS, 'corpus.pub'), join(dir, 'not-release.pub'));
    const r = await iqp(['release', 'latest', '--registry', other.url, '--json', '--release-key', 'not-release.pub'], { cwd: dir });
    expect(r.json().error?.code).toBe('IQP_E_SIG_UNTRUSTED_KEY');
  });

  it('keeps a good pack already in --out, checked, without downloading it', async () => {
    const good = readFileSync(GOOD);
    const a = artifact('text', good);
    const reg = await registry({ releases: { 7: release(7, 1, [a]) }, files: { [a.download_path]: good } });
    const dir = work();
    mkdirSync(join(dir, 'out'));
    writeFileSync(join(dir, 'out', `${ID}-1.0.0.iqp`), good);
    const r = await pullRelease(reg, dir, 7);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json().packs).toMatchObject([{ role: 'text', downloaded: false }]);
    expect(reg.hits.filter((h) => h.includes('/download'))).toEqual([]);
    expect(readFileSync(join(dir, 'out', `${ID}-1.0.0.iqp`)).equals(good)).toBe(true);
  });

  it('never lowers the trust state another pull saved while this one downloaded', async () => {
    const good = readFileSync(GOOD);
    const a = artifact('text', good);
    const dir = work();
    const trust = new TrustStore(join(dir, 'trust.json'));
    const newer = { sequence: 15, manifest_sha256: 'f'.repeat(64), expires_at: '2099-01-01T00:00:00Z', release_id: 9, accepted_at: '2026-01-01T00:00:00.000Z' };
    // This pull checks sequence 12 against an empty trust state; another pull saves 15 while it downloads.
    const reg = await registry({ releases: { 7: release(7, 12, [a]) }, files: { [a.download_path]: good }, onDownload: () => trust.save(REGISTRY_ID, 'stable', 'http://other.example', newer) });
    const r = await pullRelease(reg, dir, 7, 'human');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Pulled release 7 (r7) from stable: sequence 12,');
    expect(JSON.parse(readFileSync(trust.path, 'utf8')).registries).toEqual({ [REGISTRY_ID]: { stable: newer } });
    expect(r.stderr).toContain('Another pull accepted sequence 15 (release 9) on stable meanwhile');
    expect(listTree(join(dir, 'out'))).toEqual([`${ID}-1.0.0.iqp`]);
  });

  it('takes the same pack in two roles: one file, downloaded once', async () => {
    const good = readFileSync(GOOD);
    const text = artifact('text', good);
    const reg = await registry({ releases: { 7: release(7, 1, [artifact('reference', good), text]) }, files: { [text.download_path]: good } });
    const dir = work();
    const r = await pullRelease(reg, dir, 7);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json().packs.map((p: { role: string; downloaded: boolean }) => [p.role, p.downloaded])).toEqual([
      ['reference', true],
      ['text', true],
    ]);
    expect(reg.hits.filter((h) => h.includes('/download'))).toHaveLength(1);
    expect(listTree(join(dir, 'out'))).toEqual([`${ID}-1.0.0.iqp`]);
  });
});
