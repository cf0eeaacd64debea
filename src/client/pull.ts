/**
 * Pulling a pack: resolve the version, read its manifest, download to `.<file>.part` (resumable),
 * check size and SHA-256, verify the whole pack against trusted keys, and only then move it into
 * place. A pack that fails a check never appears at the final path.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { renameDurable } from '../atomic.js';
import { IqpError } from '../errors.js';
import { type Limits, packFileName } from '../pack/format.js';
import { parsePublicKey, type PublicKey } from '../pack/minisign.js';
import { verifyPackFile } from '../pack/verify.js';
import { downloadResumable, type DownloadHooks } from './download.js';
import { formatRef, newestUsable, type PackRef } from './refs.js';
import type { RegistryClient } from './registry.js';
import type { KeyList, ManifestResponse, PackVersions } from './types.js';

export interface PullOptions extends DownloadHooks {
  readonly ref: PackRef;
  readonly outDir: string;
  /** Keys pinned by the user; empty: trust the registry's own publisher keys (GET /v1/keys). */
  readonly pinnedKeys: readonly PublicKey[];
  readonly limits?: Limits;
}

export interface PullResult {
  readonly path: string;
  readonly package_id: string;
  readonly version: string;
  readonly size_bytes: number;
  readonly sha256: string;
  readonly signer_key_id: string;
  /** Where the trusted keys came from. */
  readonly trust: 'pinned' | 'registry';
  readonly deprecated_message: string | null;
  readonly resumed_from: number;
  readonly restarted: boolean;
}

const seg = encodeURIComponent;

/** The exact version a ref means: itself, or the newest published non-deprecated one it allows. */
export async function resolveVersion(client: RegistryClient, ref: PackRef): Promise<string> {
  if (ref.exact) return ref.spec!;
  const listed = await client.json<PackVersions>({ method: 'GET', path: `/v1/packs/${seg(ref.id)}` });
  const best = newestUsable(listed.versions, ref);
  if (!best) throw new IqpError('IQP_E_NOT_FOUND', `No published, non-deprecated version of ${formatRef(ref)}.`, { package_id: ref.id });
  return best.version;
}

async function trustedKeys(client: RegistryClient, pinned: readonly PublicKey[], signer: string): Promise<{ keys: readonly PublicKey[]; trust: PullResult['trust'] }> {
  if (pinned.length > 0) {
    // Refuse before downloading anything: the pack cannot verify against keys that are not its signer's.
    if (!pinned.some((k) => k.keyId === signer)) {
      throw new IqpError('IQP_E_SIG_UNTRUSTED_KEY', `The registry says the pack is signed by key ${signer}; the pinned keys are ${pinned.map((k) => k.keyId).join(', ')}.`, {
        keyId: signer,
      });
    }
    return { keys: pinned, trust: 'pinned' };
  }
  const listed = await client.json<KeyList>({ method: 'GET', path: '/v1/keys' });
  // Release keys sign release manifests, not packs.
  const packKeys = listed.keys.filter((k) => (k.purpose ?? 'pack') === 'pack');
  return { keys: packKeys.map((k) => parsePublicKey(k.public_key)), trust: 'registry' };
}

export async function pullPack(client: RegistryClient, options: PullOptions): Promise<PullResult> {
  const { ref } = options;
  const version = await resolveVersion(client, ref);
  const manifest = await client.json<ManifestResponse>({ method: 'GET', path: `/v1/packs/${seg(ref.id)}/${seg(version)}/manifest` });
  const { keys, trust } = await trustedKeys(client, options.pinnedKeys, manifest.signer_key_id);

  await mkdir(options.outDir, { recursive: true });
  const fileName = packFileName(ref.id, version);
  const partPath = join(options.outDir, `.${fileName}.part`);
  const finalPath = join(options.outDir, fileName);
  const downloadUrl = client.url(manifest.download_url).toString();
  const { resumedFrom, restarted } = await downloadResumable(client, downloadUrl, partPath, { size: manifest.size_bytes, sha256: manifest.sha256 }, options);

  options.onVerify?.();
  let signer: string;
  try {
    const report = await verifyPackFile(partPath, { trustedKeys: keys, ...(options.limits ? { limits: options.limits } : {}) });
    if (report.manifest.package_id !== ref.id || report.manifest.version !== version) {
      throw new IqpError('IQP_E_DOWNLOAD_MISMATCH', `Asked for ${ref.id}@${version}; the registry sent ${report.manifest.package_id}@${report.manifest.version}.`);
    }
    signer = report.signerKeyId!;
  } catch (err) {
    await rm(partPath, { force: true });
    throw err;
  }
  renameDurable(partPath, finalPath);
  return {
    path: finalPath,
    package_id: ref.id,
    version,
    size_bytes: manifest.size_bytes,
    sha256: manifest.sha256,
    signer_key_id: signer,
    trust,
    deprecated_message: manifest.deprecated_message,
    resumed_from: resumedFrom,
    restarted,
  };
}
