/**
 * Release-manifest test vectors for client implementers (docs/client-verification.md): one signed
 * manifest per case, made from the fixed test keys (fixtures/keys) at a fixed time, and the answer a
 * client must give. Same inputs, same bytes: nothing here reads the clock or a random source
 * (Ed25519 signatures are deterministic), so the committed vectors can be compared with fresh ones.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode } from '../src/errors.js';
import { parseSecretKey, type SecretKey, sign } from '../src/pack/minisign.js';
import { type ReleaseArtifact, type ReleaseManifest, releaseTrustedComment, serializeReleaseManifest, signReleaseManifest } from '../src/pack/release-manifest.js';
import { PACKAGE_ROOT } from '../src/paths.js';

const KEYS_DIR = join(PACKAGE_ROOT, 'fixtures', 'keys');
const GOOD_PACK = join(PACKAGE_ROOT, 'fixtures', 'good', 'translation.iqp');
/** The key apps pin in these vectors (release.pub in the output); other.key is a key they do not pin. */
const PINNED = 'corpus';
const REGISTRY_ID = '5f0c3a1e9b7d4c28a6e1f2b3c4d5e6f7';
const OTHER_REGISTRY_ID = 'c0ffee00c0ffee00c0ffee00c0ffee00';
/** The device's clock for every vector; manifests are signed two weeks before. */
export const NOW = '2026-01-15T00:00:00Z';

/** What the client knows besides the registry's response. */
export interface VectorInputs {
  readonly channel: string;
  readonly app_version: string;
  readonly now: string;
  /** A registry id the app pins, or null (take the one the signed manifest names). */
  readonly registry_id: string | null;
  /** The release id asked for (GET /v1/releases/{id}/manifest); absent when asking for the latest. */
  readonly release_id?: number;
  /** The trust state before the pull: registry id → channel → the newest accepted manifest. */
  readonly trust: Record<string, Record<string, { sequence: number; manifest_sha256: string }>>;
}

export interface VectorExpect {
  readonly why: string;
  readonly inputs: VectorInputs;
  /** "ok", or the one error code a client must refuse the manifest with. */
  readonly expect: 'ok' | ErrorCode;
}

interface Vector extends VectorExpect {
  readonly name: string;
  readonly manifest_json: string;
  readonly signature: string;
}

function manifest(overrides: Partial<ReleaseManifest> = {}): ReleaseManifest {
  const pack = readFileSync(GOOD_PACK);
  return {
    format: 2,
    kind: 'iqp-release',
    registry_id: REGISTRY_ID,
    release_id: 7,
    name: '2026.01',
    channel: 'stable',
    sequence: 5,
    min_app_version: '1.0.0',
    notes: 'test vector',
    signed_at: '2026-01-01T00:00:00Z',
    expires_at: '2026-02-01T00:00:00Z',
    artifacts: [
      {
        role: 'translation',
        package_id: 'example.translation.en',
        version: '1.0.0',
        size_bytes: pack.length,
        sha256: createHash('sha256').update(pack).digest('hex'),
        signer_key_id: '',
        download_path: '/v1/packs/example.translation.en/download?version=1.0.0',
      },
    ],
    ...overrides,
  };
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function vectors(keys: { pinned: SecretKey; other: SecretKey }): Vector[] {
  const base = (o: Partial<ReleaseManifest> = {}) => {
    const m = manifest(o);
    return { ...m, artifacts: m.artifacts.map((a) => ({ ...a, signer_key_id: keys.pinned.keyId })) };
  };
  const signed = (m: ReleaseManifest, key = keys.pinned) => {
    const s = signReleaseManifest(m, key);
    return { manifest_json: s.manifestJson, signature: s.signature };
  };
  const inputs = (o: Partial<VectorInputs> = {}): VectorInputs => ({ channel: 'stable', app_version: '1.4.0', now: NOW, registry_id: null, trust: {}, ...o });
  const good = signed(base());
  // One more artifact beside the good manifest's own, made from it by `edit`.
  const withSecond = (edit: Partial<ReleaseArtifact>) => {
    const m = base();
    return signed({ ...m, artifacts: [...m.artifacts, { ...m.artifacts[0]!, ...edit }] });
  };

  // Tampered: the bytes differ from what was signed (another pack's hash), the signature is the original's.
  const tampered = good.manifest_json.replace(/"sha256": "[0-9a-f]{64}"/, `"sha256": "${'e'.repeat(64)}"`);

  // Format 1 (before registry ids): canonical format 1 bytes, validly signed; clients refuse them.
  const { registry_id: _id, ...v1 } = { ...base(), format: 1 };
  const v1Bytes = Buffer.from(`${JSON.stringify(v1, null, 2)}\n`, 'utf8');
  const v1Signature = sign(v1Bytes, keys.pinned, releaseTrustedComment(base(), sha256(v1Bytes.toString('utf8'))), `release manifest signature from iqp key ${keys.pinned.keyId}`);

  return [
    { name: 'good', why: 'A valid manifest, first pull: accept it.', ...good, inputs: inputs(), expect: 'ok' },
    {
      name: 'good-newer-than-trust',
      why: 'A higher sequence than the trust state holds for this registry: accept it.',
      ...good,
      inputs: inputs({ trust: { [REGISTRY_ID]: { stable: { sequence: 4, manifest_sha256: 'a'.repeat(64) } } } }),
      expect: 'ok',
    },
    {
      name: 'good-same-manifest-again',
      why: 'The very manifest already accepted (same sequence, same SHA-256): accept it.',
      ...good,
      inputs: inputs({ trust: { [REGISTRY_ID]: { stable: { sequence: 5, manifest_sha256: sha256(good.manifest_json) } } } }),
      expect: 'ok',
    },
    {
      name: 'good-pinned-registry',
      why: 'The app pins the registry id the manifest names: accept it.',
      ...good,
      inputs: inputs({ registry_id: REGISTRY_ID }),
      expect: 'ok',
    },
    {
      name: 'good-other-registry-state',
      why: 'The trust state holds a higher sequence for another registry only: it does not apply.',
      ...good,
      inputs: inputs({ trust: { [OTHER_REGISTRY_ID]: { stable: { sequence: 40, manifest_sha256: 'a'.repeat(64) } } } }),
      expect: 'ok',
    },
    {
      name: 'expired',
      why: 'expires_at is before the device clock (a frozen or replayed manifest).',
      ...signed(base({ expires_at: '2026-01-10T00:00:00Z' })),
      inputs: inputs(),
      expect: 'IQP_E_RELEASE_EXPIRED',
    },
    {
      name: 'rollback',
      why: 'Sequence 5 when the trust state for this registry and channel already holds 6.',
      ...good,
      inputs: inputs({ trust: { [REGISTRY_ID]: { stable: { sequence: 6, manifest_sha256: 'a'.repeat(64) } } } }),
      expect: 'IQP_E_RELEASE_ROLLBACK',
    },
    {
      name: 'rollback-same-sequence-other-bytes',
      why: 'The accepted sequence again, but other bytes than the manifest accepted with it.',
      ...good,
      inputs: inputs({ trust: { [REGISTRY_ID]: { stable: { sequence: 5, manifest_sha256: 'a'.repeat(64) } } } }),
      expect: 'IQP_E_RELEASE_ROLLBACK',
    },
    {
      name: 'wrong-channel',
      why: 'A beta manifest served to a client that asked for stable.',
      ...signed(base({ channel: 'beta' })),
      inputs: inputs(),
      expect: 'IQP_E_RELEASE_MANIFEST',
    },
    {
      name: 'wrong-key',
      why: 'Signed by a release key the app does not pin (fixtures/keys/other.key).',
      ...signed(base(), keys.other),
      inputs: inputs(),
      expect: 'IQP_E_SIG_UNTRUSTED_KEY',
    },
    {
      name: 'tampered',
      why: 'An artifact’s sha256 changed after signing; the signature is over the original bytes.',
      manifest_json: tampered,
      signature: good.signature,
      inputs: inputs(),
      expect: 'IQP_E_SIG_INVALID',
    },
    {
      name: 'wrong-registry-id',
      why: 'Validly signed, but for another registry than the one the app pins.',
      ...signed(base({ registry_id: OTHER_REGISTRY_ID })),
      inputs: inputs({ registry_id: REGISTRY_ID }),
      expect: 'IQP_E_RELEASE_MANIFEST',
    },
    {
      name: 'wrong-release-id',
      why: 'Validly signed, but release 7 served when the app asked for release 8 by id.',
      ...good,
      inputs: inputs({ release_id: 8 }),
      expect: 'IQP_E_RELEASE_MANIFEST',
    },
    {
      name: 'good-same-pack-two-roles',
      why: 'The same pack (same id, version, size, SHA-256, signer and path) in two roles: accept it; it is one file.',
      ...withSecond({ role: 'reference' }),
      inputs: inputs(),
      expect: 'ok',
    },
    {
      name: 'duplicate-pack-version',
      why: 'The same package_id@version twice with different SHA-256s: both would be saved as one file, the second over the first after it was checked.',
      ...withSecond({ role: 'reference', sha256: 'f'.repeat(64) }),
      inputs: inputs(),
      expect: 'IQP_E_RELEASE_MANIFEST',
    },
    {
      name: 'duplicate-role-package',
      why: 'The same role and package_id twice (a release has one version of a pack per role).',
      ...withSecond({ version: '1.0.1', download_path: '/v1/packs/example.translation.en/download?version=1.0.1' }),
      inputs: inputs(),
      expect: 'IQP_E_RELEASE_MANIFEST',
    },
    {
      name: 'format-1',
      why: 'A format 1 manifest (signed before registries had ids): no registry id to key rollback protection by.',
      manifest_json: v1Bytes.toString('utf8'),
      signature: v1Signature,
      inputs: inputs(),
      expect: 'IQP_E_RELEASE_MANIFEST',
    },
  ];
}

/** Writes `<out>/`: release.pub, and per vector `<name>.json` (what the registry serves) and `<name>.expect.json`. */
export async function generateReleaseVectors(outDir: string): Promise<string[]> {
  const load = (name: string) => parseSecretKey(readFileSync(join(KEYS_DIR, `${name}.key`), 'utf8'), null);
  const all = vectors({ pinned: await load(PINNED), other: await load('other') });
  // A sanity check on the generator itself: the good manifest is canonical.
  serializeReleaseManifest(JSON.parse(all[0]!.manifest_json) as ReleaseManifest);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'release.pub'), readFileSync(join(KEYS_DIR, `${PINNED}.pub`)));
  for (const v of all) {
    writeFileSync(join(outDir, `${v.name}.json`), `${JSON.stringify({ manifest_json: v.manifest_json, signature: v.signature }, null, 2)}\n`);
    const expect: VectorExpect = { why: v.why, inputs: v.inputs, expect: v.expect };
    writeFileSync(join(outDir, `${v.name}.expect.json`), `${JSON.stringify(expect, null, 2)}\n`);
  }
  return all.map((v) => v.name);
}
