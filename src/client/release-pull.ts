/**
 * `iqp pull --release`: the client side of signed releases, step by step as
 * docs/client-verification.md describes it. Nothing is moved into place and no trust state is
 * saved until every check of every artifact has passed.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import semver from 'semver';
import { renameDurable } from '../atomic.js';
import { IqpError } from '../errors.js';
import type { Limits } from '../pack/format.js';
import { parsePublicKey, type PublicKey } from '../pack/minisign.js';
import { type ReleaseManifest, verifyReleaseManifest } from '../pack/release-manifest.js';
import { verifyPackFile } from '../pack/verify.js';
import { downloadResumable, type DownloadHooks } from './download.js';
import { localCopy, packPaths } from './pack-file.js';
import { refuseOversized, registryPackKeys } from './pull.js';
import type { RegistryClient } from './registry.js';
import { ReleaseApi, type ReleaseManifestView } from './releases.js';
import { isBehind, type TrustStore } from './trust.js';

export interface ReleasePullOptions extends DownloadHooks {
  /** 'latest', or a release id. */
  readonly release: 'latest' | number;
  readonly channel: string;
  readonly appVersion: string | null;
  readonly releaseKeys: readonly PublicKey[];
  /** The registry id this client expects (pinned like a release key); null takes the one the signed manifest names. */
  readonly registryId?: string | null;
  readonly trust: TrustStore;
  readonly outDir: string;
  readonly now?: Date;
  /** --max-size: every pack the release lists must fit, checked before any is downloaded. */
  readonly limits?: Limits;
}

export interface ReleasePullResult {
  readonly registry_id: string;
  readonly release_id: number;
  readonly name: string;
  readonly channel: string;
  readonly sequence: number;
  readonly expires_at: string;
  readonly signer_key_id: string;
  readonly previous_sequence: number | null;
  /** Set when the registry says the release was withdrawn (pulled by id). */
  readonly deprecated_message: string | null;
  readonly packs: { role: string; package_id: string; version: string; path: string; sha256: string; size_bytes: number; downloaded: boolean }[];
}

export interface ManifestCheckOptions {
  readonly channel: string;
  readonly appVersion: string | null;
  readonly releaseKeys: readonly PublicKey[];
  readonly now: Date;
  /** A pinned registry id, or null to take the one the signed manifest names. */
  readonly registryId?: string | null;
  /** The release id asked for (GET /v1/releases/{id}/manifest), or null when asking for the latest. */
  readonly releaseId?: number | null;
  /** The trust state for a registry id on this channel: the newest manifest accepted, or null. */
  readonly last: (registryId: string) => { sequence: number; manifest_sha256: string } | null;
}

/** Steps 2-8: everything that can be decided from the manifest alone. */
export function checkReleaseManifest(
  view: Pick<ReleaseManifestView, 'manifest_json' | 'signature'>,
  options: ManifestCheckOptions,
): { manifest: ReleaseManifest; keyId: string; sha256: string } {
  if (options.releaseKeys.length === 0) {
    throw new IqpError('IQP_E_NO_TRUSTED_KEYS', 'No release key is pinned: pass --release-key FILE, or set trusted_release_keys (IQP_TRUSTED_RELEASE_KEYS).');
  }
  const { manifest, keyId } = verifyReleaseManifest(view.manifest_json, view.signature, options.releaseKeys);
  const sha256 = createHash('sha256').update(view.manifest_json, 'utf8').digest('hex');
  if (manifest.channel !== options.channel) {
    throw new IqpError('IQP_E_RELEASE_MANIFEST', `Asked for channel ${options.channel}; the signed manifest is for ${manifest.channel}.`);
  }
  if (options.registryId && manifest.registry_id !== options.registryId) {
    throw new IqpError('IQP_E_RELEASE_MANIFEST', `The signed manifest is from registry ${manifest.registry_id}; this client expects registry ${options.registryId}.`, {
      registry_id: manifest.registry_id,
      expected_registry_id: options.registryId,
    });
  }
  if (options.releaseId != null && manifest.release_id !== options.releaseId) {
    throw new IqpError('IQP_E_RELEASE_MANIFEST', `Asked for release ${options.releaseId}; the signed manifest is release ${manifest.release_id}'s.`, {
      release_id: manifest.release_id,
      expected_release_id: options.releaseId,
    });
  }
  if (Date.parse(manifest.expires_at) <= options.now.getTime()) {
    throw new IqpError('IQP_E_RELEASE_EXPIRED', `Release ${manifest.release_id}'s manifest (sequence ${manifest.sequence}) expired at ${manifest.expires_at}.`, {
      expires_at: manifest.expires_at,
    });
  }
  // Keyed by the signed registry id, so another address for the same registry shares the state.
  const last = options.last(manifest.registry_id);
  if (last && isBehind({ sequence: manifest.sequence, manifest_sha256: sha256 }, last)) {
    throw new IqpError(
      'IQP_E_RELEASE_ROLLBACK',
      `The registry serves sequence ${manifest.sequence} on ${manifest.channel}; this client already accepted sequence ${last.sequence}${manifest.sequence === last.sequence ? ' with other content' : ''}.`,
      { sequence: manifest.sequence, accepted_sequence: last.sequence },
    );
  }
  if (options.appVersion !== null && semver.gt(manifest.min_app_version, options.appVersion)) {
    throw new IqpError('IQP_E_RELEASE_MANIFEST', `Release ${manifest.release_id} needs app ${manifest.min_app_version}; this is ${options.appVersion}.`);
  }
  return { manifest, keyId, sha256 };
}

/** The whole-pack check, and that the file is the pack the signed manifest lists, signed by the key it names. */
async function verifyArtifact(path: string, a: ReleaseManifest['artifacts'][number], packKeys: readonly PublicKey[], limits: Limits | undefined): Promise<void> {
  const report = await verifyPackFile(path, { trustedKeys: packKeys, ...(limits ? { limits } : {}) });
  if (report.manifest.package_id !== a.package_id || report.manifest.version !== a.version || report.signerKeyId !== a.signer_key_id) {
    throw new IqpError('IQP_E_DOWNLOAD_MISMATCH', `The release lists ${a.package_id}@${a.version} signed by ${a.signer_key_id}; the file is ${report.manifest.package_id}@${report.manifest.version} signed by ${report.signerKeyId}.`);
  }
}

export async function pullRelease(client: RegistryClient, options: ReleasePullOptions): Promise<ReleasePullResult> {
  const api = new ReleaseApi(client);
  const now = options.now ?? new Date();
  const view = options.release === 'latest' ? await api.latest(options.channel, options.appVersion) : await api.manifest(options.release);
  const lastFor = (registryId: string) => options.trust.get(registryId, options.channel, client.baseUrl);
  const { manifest, keyId, sha256 } = checkReleaseManifest(view, {
    channel: options.channel,
    appVersion: options.appVersion,
    releaseKeys: options.releaseKeys,
    now,
    registryId: options.registryId ?? null,
    releaseId: options.release === 'latest' ? null : options.release,
    last: lastFor,
  });
  const last = lastFor(manifest.registry_id);

  // Pack signatures: the registry's pack keys, but only those the signed manifest names.
  const named = new Set(manifest.artifacts.map((a) => a.signer_key_id));
  const packKeys = (await registryPackKeys(client)).filter((k) => named.has(k.key_id)).map((k) => parsePublicKey(k.public_key));

  // Every pack, before the first download: a release too large to take leaves nothing half-fetched.
  for (const a of manifest.artifacts) refuseOversized(`${a.package_id}@${a.version} (${a.role})`, a.size_bytes, options.limits);

  await mkdir(options.outDir, { recursive: true });
  const staged: { part: string; final: string; artifact: ReleaseManifest['artifacts'][number]; downloaded: boolean }[] = [];
  try {
    for (const a of manifest.artifacts) {
      const { final, part } = packPaths(options.outDir, a.package_id, a.version);
      // The same pack in two roles: fetched once, moved into place once.
      const earlier = staged.find((s) => s.final === final && s.artifact.sha256 === a.sha256);
      if (earlier) {
        staged.push({ part: final, final, artifact: a, downloaded: earlier.downloaded });
        continue;
      }
      // Already here from an earlier pull: keep it if it is exactly what the manifest signs, once it
      // passes the checks a download gets. A failure leaves it alone: it was there before this run.
      if ((await localCopy(final, { size: a.size_bytes, sha256: a.sha256 })) === 'same') {
        options.onVerify?.();
        await verifyArtifact(final, a, packKeys, options.limits);
        staged.push({ part: final, final, artifact: a, downloaded: false });
        continue;
      }
      await downloadResumable(client, client.url(a.download_path).toString(), part, { size: a.size_bytes, sha256: a.sha256 }, options);
      options.onVerify?.();
      try {
        await verifyArtifact(part, a, packKeys, options.limits);
      } catch (err) {
        await rm(part, { force: true });
        throw err;
      }
      staged.push({ part, final, artifact: a, downloaded: true });
    }
  } catch (err) {
    // Keep verified parts? No: a failed release pull leaves the folder as it was.
    for (const s of staged) if (s.part !== s.final) await rm(s.part, { force: true });
    throw err;
  }
  for (const s of staged) if (s.part !== s.final) renameDurable(s.part, s.final);
  const kept = options.trust.save(manifest.registry_id, options.channel, client.baseUrl, {
    sequence: manifest.sequence,
    manifest_sha256: sha256,
    expires_at: manifest.expires_at,
    release_id: manifest.release_id,
    accepted_at: now.toISOString(),
    accepted_from: client.baseUrl,
  });
  if (kept.manifest_sha256 !== sha256) {
    options.onNote?.(`Another pull accepted sequence ${kept.sequence} (release ${kept.release_id}) on ${options.channel} meanwhile; the trust state keeps it, so the next pull is checked against that.`);
  }
  return {
    registry_id: manifest.registry_id,
    release_id: manifest.release_id,
    name: manifest.name,
    channel: manifest.channel,
    sequence: manifest.sequence,
    expires_at: manifest.expires_at,
    signer_key_id: keyId,
    previous_sequence: last?.sequence ?? null,
    deprecated_message: view.status === 'deprecated' ? (view.deprecated_message ?? '') : null,
    packs: staged.map((s) => ({
      role: s.artifact.role,
      package_id: s.artifact.package_id,
      version: s.artifact.version,
      path: s.final,
      sha256: s.artifact.sha256,
      size_bytes: s.artifact.size_bytes,
      downloaded: s.downloaded,
    })),
  };
}
