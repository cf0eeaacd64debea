/**
 * Signed release manifests: what one app version downloads, signed by a release manager on their
 * own machine (the registry stores and serves the signature but never holds the key). A per-channel
 * `sequence` that only grows defeats rollback; `expires_at` defeats freeze (see
 * docs/client-verification.md). Canonical bytes, like pack manifests, so signatures are stable.
 */
import { createHash } from 'node:crypto';
import { IqpError } from '../errors.js';
import { isSemver } from './manifest.js';
import { type PublicKey, type SecretKey, parseSignature, sign, verify } from './minisign.js';

/**
 * 2 added `registry_id`. Parsers refuse unknown members (canonical form), so the field needed a new
 * format; format 1 manifests (no registry id) are refused, as a client could not key its rollback
 * protection by registry for them: the release manager re-signs (`iqp release resign`).
 */
export const RELEASE_MANIFEST_FORMAT = 2;

/** A registry id: 128 random bits in lowercase hex (server/stores/sqlite/migrations.ts, version 3). */
export const REGISTRY_ID = /^[0-9a-f]{32}$/;

/** What validating a release found, as the registry answers it and the CLI prints it. */
export interface ValidationIssue {
  readonly code: string;
  readonly role?: string;
  readonly artifact?: string;
  readonly message: string;
}

export interface ValidationReport {
  readonly ok: boolean;
  readonly failures: readonly ValidationIssue[];
  readonly warnings: readonly ValidationIssue[];
}

export interface ReleaseArtifact {
  role: string;
  package_id: string;
  version: string;
  size_bytes: number;
  sha256: string;
  signer_key_id: string;
  /** Path on the registry, relative so that a proxy or CDN in front does not break the signature. */
  download_path: string;
}

export interface ReleaseManifest {
  format: 2;
  kind: 'iqp-release';
  /** The registry the release was published on, whatever address serves it. */
  registry_id: string;
  release_id: number;
  name: string;
  channel: string;
  sequence: number;
  min_app_version: string;
  notes: string;
  signed_at: string;
  expires_at: string;
  artifacts: ReleaseArtifact[];
}

/** The part the registry derives from its database; the signer adds sequence and times. */
export type ReleaseManifestBody = Omit<ReleaseManifest, 'sequence' | 'signed_at' | 'expires_at'>;

export function serializeReleaseManifest(m: ReleaseManifest): Buffer {
  const ordered: ReleaseManifest = {
    format: m.format,
    kind: m.kind,
    registry_id: m.registry_id,
    release_id: m.release_id,
    name: m.name,
    channel: m.channel,
    sequence: m.sequence,
    min_app_version: m.min_app_version,
    notes: m.notes,
    signed_at: m.signed_at,
    expires_at: m.expires_at,
    artifacts: [...m.artifacts]
      .sort((a, b) => (a.role === b.role ? (a.package_id < b.package_id ? -1 : 1) : a.role < b.role ? -1 : 1))
      .map((a) => ({
        role: a.role,
        package_id: a.package_id,
        version: a.version,
        size_bytes: a.size_bytes,
        sha256: a.sha256,
        signer_key_id: a.signer_key_id,
        download_path: a.download_path,
      })),
  };
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`, 'utf8');
}

export function releaseTrustedComment(m: ReleaseManifest, manifestSha256: string): string {
  return `iqp-release release_id=${m.release_id} channel=${m.channel} sequence=${m.sequence} expires_at=${m.expires_at} manifest_sha256=${manifestSha256}`;
}

const COMMENT = /^iqp-release release_id=(\d+) channel=(\S+) sequence=(\d+) expires_at=(\S+) manifest_sha256=([0-9a-f]{64})$/;

function fail(message: string, details?: Record<string, unknown>): never {
  throw new IqpError('IQP_E_RELEASE_MANIFEST', message, details);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;

/**
 * A release has one pack per role and package id (the registry's key for an artifact). The same
 * package_id@version may fill several roles, but it is one file (<id>-<version>.iqp): every
 * artifact naming it must describe the same pack, or a client would save two packs under one name,
 * the second over the first after the first was checked.
 */
function refuseDuplicates(artifacts: readonly ReleaseArtifact[]): void {
  const roles = new Set<string>();
  const packs = new Map<string, ReleaseArtifact>();
  for (const a of artifacts) {
    const role = JSON.stringify([a.role, a.package_id]);
    if (roles.has(role)) fail(`The release manifest lists ${a.package_id} twice in role ${a.role}.`, { role: a.role, package_id: a.package_id });
    roles.add(role);
    const pack = `${a.package_id}@${a.version}`;
    const earlier = packs.get(pack);
    if (!earlier) {
      packs.set(pack, a);
      continue;
    }
    const differs = (['size_bytes', 'sha256', 'signer_key_id', 'download_path'] as const).filter((k) => earlier[k] !== a[k]);
    if (differs.length > 0) {
      fail(`The release manifest lists ${pack} in roles ${earlier.role} and ${a.role} with different ${differs.join(', ')}: they would be saved as one file.`, {
        package_id: a.package_id,
        version: a.version,
        roles: [earlier.role, a.role],
      });
    }
  }
}

/** Structural check of a parsed release manifest (the shape a client must see before trusting anything in it). */
export function parseReleaseManifest(bytes: Buffer): ReleaseManifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    fail(`The release manifest is not valid JSON: ${(err as Error).message}`);
  }
  const m = value as ReleaseManifest;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('The release manifest must be a JSON object.');
  if (m.kind !== 'iqp-release') fail('Not an iqp release manifest.');
  if ((m.format as number) === 1) fail('A format 1 release manifest (signed before registries had ids): the release manager re-signs it with this iqp (iqp release resign).');
  if (m.format !== RELEASE_MANIFEST_FORMAT) fail(`Not a format ${RELEASE_MANIFEST_FORMAT} iqp release manifest.`);
  if (typeof m.registry_id !== 'string' || !REGISTRY_ID.test(m.registry_id)) fail('registry_id must be 32 lowercase hex digits.');
  if (!Number.isSafeInteger(m.release_id) || m.release_id < 1) fail('release_id must be a positive integer.');
  if (!Number.isSafeInteger(m.sequence) || m.sequence < 1) fail('sequence must be a positive integer.');
  if (typeof m.name !== 'string' || typeof m.channel !== 'string' || typeof m.notes !== 'string') fail('name, channel and notes must be strings.');
  if (!isSemver(m.min_app_version)) fail('min_app_version must be semver.');
  for (const t of [m.signed_at, m.expires_at]) if (typeof t !== 'string' || !RFC3339.test(t) || Number.isNaN(Date.parse(t))) fail('signed_at and expires_at must be RFC 3339 UTC times.');
  if (!Array.isArray(m.artifacts)) fail('artifacts must be a list.');
  for (const a of m.artifacts) {
    if (
      typeof a !== 'object' || a === null ||
      typeof a.role !== 'string' || typeof a.package_id !== 'string' || !isSemver(a.version) ||
      !Number.isSafeInteger(a.size_bytes) || a.size_bytes < 1 ||
      typeof a.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(a.sha256) ||
      typeof a.signer_key_id !== 'string' || typeof a.download_path !== 'string' || !a.download_path.startsWith('/')
    ) {
      fail('An artifact of the release manifest is malformed.');
    }
  }
  refuseDuplicates(m.artifacts);
  if (!serializeReleaseManifest(m).equals(bytes)) fail('The release manifest is not in canonical form.');
  return m;
}

export function signReleaseManifest(m: ReleaseManifest, key: SecretKey): { manifestJson: string; signature: string } {
  const bytes = serializeReleaseManifest(m);
  const sha = createHash('sha256').update(bytes).digest('hex');
  return { manifestJson: bytes.toString('utf8'), signature: sign(bytes, key, releaseTrustedComment(m, sha), `release manifest signature from iqp key ${key.keyId}`) };
}

/**
 * Verifies a release manifest's signature against trusted release keys and that the trusted
 * comment names exactly this manifest. Freshness (expiry, sequence) is the caller's policy.
 */
export function verifyReleaseManifest(manifestJson: string, signature: string, trusted: readonly PublicKey[]): { manifest: ReleaseManifest; keyId: string } {
  const bytes = Buffer.from(manifestJson, 'utf8');
  const parsedSig = parseSignature(signature);
  const { keyId, trustedComment } = verify(bytes, parsedSig, trusted);
  const manifest = parseReleaseManifest(bytes);
  const c = COMMENT.exec(trustedComment);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (
    !c ||
    Number(c[1]) !== manifest.release_id ||
    c[2] !== manifest.channel ||
    Number(c[3]) !== manifest.sequence ||
    c[4] !== manifest.expires_at ||
    c[5] !== sha
  ) {
    throw new IqpError('IQP_E_SIG_COMMENT_MISMATCH', 'The release signature’s trusted comment does not name this manifest.');
  }
  return { manifest, keyId };
}
