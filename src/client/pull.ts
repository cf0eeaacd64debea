/**
 * Pulling a pack: resolve the version, read its manifest, download to `.<file>.part` (resumable),
 * check size and SHA-256, verify the whole pack against trusted keys, and only then move it into
 * place. A pack that fails a check never appears at the final path. The registry is not trusted
 * with anything that reaches the disk: its versions must be semver before they name a file, and
 * its announced size must fit --max-size before a byte is downloaded.
 */
import { mkdir, rm } from 'node:fs/promises';
import { renameDurable } from '../atomic.js';
import { IqpError } from '../errors.js';
import { type Limits, DEFAULT_LIMITS, MiB } from '../pack/format.js';
import { parsePublicKey, type PublicKey } from '../pack/minisign.js';
import { verifyPackFile } from '../pack/verify.js';
import { downloadResumable, type DownloadHooks } from './download.js';
import { localCopy, packPaths } from './pack-file.js';
import { formatRef, listedVersions, newestUsable, type PackRef } from './refs.js';
import type { RegistryClient } from './registry.js';
import type { KeyList, ManifestResponse } from './types.js';

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
  /** False when the same pack was already at `path` (checked, and kept as it was). */
  readonly downloaded: boolean;
  /** True when another file was at `path` and the verified pack took its place. */
  readonly replaced: boolean;
  readonly resumed_from: number;
  readonly restarted: boolean;
}

const seg = encodeURIComponent;

/**
 * The largest pack file whose content could pass `limits`: the reader lets a pack expand to
 * maxContentBytes + 16 MiB (content, manifest, checksums, signature, tar framing), and zstd never
 * grows incompressible input by more than 1/256 (ZSTD_compressBound); 1/128 and 1 MiB leave room.
 */
export function maxPackBytes(limits: Limits): number {
  const expanded = limits.maxContentBytes + 16 * MiB;
  return expanded + Math.ceil(expanded / 128) + MiB;
}

/** Refuses, before a byte is downloaded, a pack announced larger than any pack within `limits` (--max-size). */
export function refuseOversized(pack: string, sizeBytes: number, limits: Limits = DEFAULT_LIMITS): void {
  const limit = maxPackBytes(limits);
  if (sizeBytes <= limit) return;
  throw new IqpError(
    'IQP_E_RESPONSE_TOO_LARGE',
    `The registry says ${pack} is ${sizeBytes} bytes; a pack within --max-size is at most ${limit}.`,
    { size_bytes: sizeBytes, limit },
    { hint: 'If the pack is really that large, raise --max-size (max_content_bytes); otherwise the registry is misbehaving.' },
  );
}

/** The exact version a ref means: itself, or the newest published non-deprecated one it allows. */
export async function resolveVersion(client: RegistryClient, ref: PackRef, onNote?: (message: string) => void): Promise<string> {
  if (ref.exact) return ref.spec!;
  const path = `/v1/packs/${seg(ref.id)}`;
  const { versions, ignored } = listedVersions(await client.json<unknown>({ method: 'GET', path }), client.describe('GET', path));
  const skipped = ignored === 0 ? '' : ` (ignored ${ignored} listed version${ignored === 1 ? '' : 's'} that ${ignored === 1 ? 'is' : 'are'} not semver)`;
  const best = newestUsable(versions, ref);
  if (!best) {
    throw new IqpError('IQP_E_NOT_FOUND', `No published, non-deprecated version of ${formatRef(ref)}${skipped}.`, {
      package_id: ref.id,
      ...(ignored ? { ignored_versions: ignored } : {}),
    });
  }
  if (ignored) onNote?.(`The registry listed versions of ${ref.id} that are not semver; ignored ${ignored}.`);
  return best.version;
}

/** The manifest's claims pull acts on, checked for shape before any of them is used. */
function checkAnnounced(manifest: ManifestResponse, what: string): ManifestResponse {
  const m = manifest as Partial<Record<keyof ManifestResponse, unknown>> | null;
  const bad = (field: string) => new IqpError('IQP_E_REGISTRY', `${what}: the answer has no usable ${field}.`, { field });
  if (typeof m !== 'object' || m === null) throw bad('manifest');
  if (!Number.isSafeInteger(m.size_bytes) || (m.size_bytes as number) < 0) throw bad('size_bytes');
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)) throw bad('sha256');
  if (typeof m.download_url !== 'string') throw bad('download_url');
  if (typeof m.signer_key_id !== 'string') throw bad('signer_key_id');
  return manifest;
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
  return { keys: (await registryPackKeys(client)).map((k) => parsePublicKey(k.public_key)), trust: 'registry' };
}

/** The registry's pack keys (GET /v1/keys), the answer checked for a keys list. Release keys sign release manifests, not packs. */
export async function registryPackKeys(client: RegistryClient): Promise<KeyList['keys']> {
  const listed = await client.json<KeyList>({ method: 'GET', path: '/v1/keys' });
  if (!Array.isArray(listed?.keys)) throw new IqpError('IQP_E_REGISTRY', `${client.describe('GET', '/v1/keys')}: the answer has no keys list.`);
  return listed.keys.filter((k) => (k.purpose ?? 'pack') === 'pack');
}

/** The whole-pack check; the file must also be the pack that was asked for. Returns the signer's key id. */
async function verifyAs(path: string, ref: PackRef, version: string, keys: readonly PublicKey[], limits: Limits | undefined): Promise<string> {
  const report = await verifyPackFile(path, { trustedKeys: keys, ...(limits ? { limits } : {}) });
  if (report.manifest.package_id !== ref.id || report.manifest.version !== version) {
    throw new IqpError('IQP_E_DOWNLOAD_MISMATCH', `Asked for ${ref.id}@${version}; the registry sent ${report.manifest.package_id}@${report.manifest.version}.`);
  }
  return report.signerKeyId!;
}

export async function pullPack(client: RegistryClient, options: PullOptions): Promise<PullResult> {
  const { ref } = options;
  const version = await resolveVersion(client, ref, options.onNote);
  const manifestPath = `/v1/packs/${seg(ref.id)}/${seg(version)}/manifest`;
  const manifest = checkAnnounced(await client.json<ManifestResponse>({ method: 'GET', path: manifestPath }), client.describe('GET', manifestPath));
  refuseOversized(`${ref.id}@${version}`, manifest.size_bytes, options.limits);
  const { keys, trust } = await trustedKeys(client, options.pinnedKeys, manifest.signer_key_id);
  const { final, part } = packPaths(options.outDir, ref.id, version);
  const expected = { size: manifest.size_bytes, sha256: manifest.sha256 };
  const facts = { path: final, package_id: ref.id, version, size_bytes: manifest.size_bytes, sha256: manifest.sha256, trust, deprecated_message: manifest.deprecated_message };

  await mkdir(options.outDir, { recursive: true });
  const present = await localCopy(final, expected);
  if (present === 'same') {
    // Checked like a download, but a failure leaves the file alone: it was there before this run.
    options.onVerify?.();
    const signer = await verifyAs(final, ref, version, keys, options.limits);
    await rm(part, { force: true });
    return { ...facts, signer_key_id: signer, downloaded: false, replaced: false, resumed_from: 0, restarted: false };
  }
  if (present === 'different') options.onNote?.(`${final} is not the pack the registry announces; it will be replaced once the download passes every check.`);

  const downloadUrl = client.url(manifest.download_url).toString();
  const { resumedFrom, restarted } = await downloadResumable(client, downloadUrl, part, expected, options);
  options.onVerify?.();
  let signer: string;
  try {
    signer = await verifyAs(part, ref, version, keys, options.limits);
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
  renameDurable(part, final);
  return { ...facts, signer_key_id: signer, downloaded: true, replaced: present === 'different', resumed_from: resumedFrom, restarted };
}
