/**
 * Full verification of a pack: everything readPack checks, then the signature against trusted keys,
 * then content.sqlite itself (integrity_check, and tables and row counts against the manifest).
 * The CLI's `iqp verify` and the registry's upload path both call verifyPack.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackTemp } from '../atomic.js';
import { IqpError } from '../errors.js';
import { ENTRY, type Limits, parsePackTrustedComment } from './format.js';
import { type PackContents, readFileChunks, readPack, signatureText } from './reader.js';
import { type PublicKey, parseSignature, verify as verifySignature } from './minisign.js';
import { describeContent } from './content.js';
import { checkRequirements } from './requirements.js';

export interface VerifyOptions {
  readonly trustedKeys: readonly PublicKey[];
  /** Accept a pack without a signature (everything else is still checked). */
  readonly allowUnsigned?: boolean;
  readonly limits?: Limits;
  /** Directory for the temporary copy of content.sqlite (default: the OS temp dir). */
  readonly tmpDir?: string;
}

export interface VerifyReport extends Omit<PackContents, 'contentPath'> {
  /** Key ID of the signer, or null for an unsigned pack accepted with allowUnsigned. */
  readonly signerKeyId: string | null;
}

export function checkSignature(contents: Pick<PackContents, 'manifest' | 'manifestBytes' | 'signature'>, options: VerifyOptions): string | null {
  if (contents.signature === null) {
    if (options.allowUnsigned) return null;
    throw new IqpError('IQP_E_PACK_UNSIGNED', `The pack has no ${ENTRY.signature}.`);
  }
  const parsed = parseSignature(contents.signature);
  if (options.trustedKeys.length === 0) {
    throw new IqpError('IQP_E_NO_TRUSTED_KEYS', `The pack is signed by key ${parsed.keyId}, and no public key was given to check it.`, {
      keyId: parsed.keyId,
    });
  }
  const { keyId, trustedComment } = verifySignature(contents.manifestBytes, parsed, options.trustedKeys);
  const claimed = parsePackTrustedComment(trustedComment);
  const manifestSha256 = createHash('sha256').update(contents.manifestBytes).digest('hex');
  const m = contents.manifest;
  if (!claimed || claimed.package_id !== m.package_id || claimed.version !== m.version || claimed.manifest_sha256 !== manifestSha256) {
    throw new IqpError('IQP_E_SIG_COMMENT_MISMATCH', `The signature's trusted comment (${JSON.stringify(trustedComment)}) does not name this manifest.`);
  }
  return keyId;
}

/** Verifies a pack file. Throws the first problem found as an IqpError. */
export async function verifyPackFile(path: string, options: VerifyOptions): Promise<VerifyReport> {
  return verifyPackStream(readFileChunks(path), options);
}

export async function verifyPackStream(source: AsyncIterable<Buffer>, options: VerifyOptions): Promise<VerifyReport> {
  const base = options.tmpDir ?? tmpdir();
  const dir = await mkdtemp(join(base, 'iqp-verify-')).catch((err: NodeJS.ErrnoException) => {
    throw new IqpError('IQP_E_IO', `Cannot create a temporary directory in ${base} (${err.code ?? err.message}); set TMPDIR to a writable directory.`);
  });
  const untrack = trackTemp(dir);
  try {
    const contentPath = join(dir, ENTRY.content);
    const contents = await readPack(source, { contentPath, ...(options.limits ? { limits: options.limits } : {}) });
    const signerKeyId = checkSignature(contents, options);
    checkContent(contentPath, contents);
    const { contentPath: _spilled, ...rest } = contents;
    return { ...rest, signerKeyId };
  } finally {
    await rm(dir, { recursive: true, force: true });
    untrack();
  }
}

/**
 * Verification in two passes, for a registry that has the compressed pack on disk as it arrives:
 * the first reads the stream with every check that needs no SQLite and checks the signature against
 * the trusted keys, writing nothing; only a pack signed by a trusted key is read a second time, from
 * `reread`, with content.sqlite written to a temporary file for integrity_check. The signature is
 * the last entry (docs/pack-format.md, 1.1), so a pack nobody trusts can cost decompression time
 * but never disk space or a look at its database. `reread` must give the same bytes as `source`;
 * the archive's SHA-256 is compared to be sure.
 */
export async function verifyPackStaged(
  source: AsyncIterable<Buffer>,
  reread: () => AsyncIterable<Buffer>,
  options: VerifyOptions & { readonly maxCompressionRatio?: number; readonly contentPath: string },
): Promise<VerifyReport> {
  const read = { ...(options.limits ? { limits: options.limits } : {}), ...(options.maxCompressionRatio !== undefined ? { maxCompressionRatio: options.maxCompressionRatio } : {}) };
  const first = await readPack(source, read);
  const signerKeyId = checkSignature(first, options);
  const second = await readPack(reread(), { ...read, contentPath: options.contentPath });
  if (second.archive.sha256 !== first.archive.sha256) {
    throw new IqpError('IQP_E_INTERNAL', `The staged copy of the upload (${second.archive.sha256}) differs from the bytes received (${first.archive.sha256}).`);
  }
  checkContent(options.contentPath, second);
  const { contentPath: _spilled, ...rest } = second;
  return { ...rest, signerKeyId };
}

/**
 * Verification in one pass, for a registry given the pack's signature beside the upload (the bytes
 * of its manifest.json.minisig): the signature is checked against the trusted keys as soon as
 * manifest.json has been read, so a pack nobody trusts is refused before any of its content is
 * decompressed. Then everything readPack checks, with content.sqlite written to
 * `contentPath` for integrity_check, and the pack's own signature entry must be `signature`, byte
 * for byte: what was checked is what is stored and served.
 */
export async function verifyPackSignedFirst(
  source: AsyncIterable<Buffer>,
  signature: Buffer,
  options: VerifyOptions & { readonly maxCompressionRatio?: number; readonly contentPath: string },
): Promise<VerifyReport> {
  const sent = signatureText(signature);
  let signerKeyId: string | null = null;
  const contents = await readPack(source, {
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.maxCompressionRatio !== undefined ? { maxCompressionRatio: options.maxCompressionRatio } : {}),
    contentPath: options.contentPath,
    onManifest: (manifest, manifestBytes) => {
      signerKeyId = checkSignature({ manifest, manifestBytes, signature: sent }, options);
    },
  });
  if (contents.signature !== sent) {
    throw new IqpError('IQP_E_SIG_INVALID', `The signature sent with the upload is not the pack’s ${ENTRY.signature}${contents.signature === null ? ' (the pack has none)' : ''}.`, undefined, {
      hint: 'Send the pack file as it was built and signed, with its own signature.',
    });
  }
  checkContent(options.contentPath, contents);
  const { contentPath: _spilled, ...rest } = contents;
  return { ...rest, signerKeyId };
}

function checkContent(contentPath: string, contents: PackContents): void {
  const actual = describeContent(contentPath, { integrity: true });
  checkRequirements(contents.manifest.package_type, actual);
  const declared = contents.manifest.tables;
  const same =
    actual.length === declared.length &&
    actual.every((t, i) => {
      const d = declared[i]!;
      return d.name === t.name && d.row_count === t.row_count && d.columns.join('\0') === t.columns.join('\0');
    });
  if (!same) {
    const names = (list: readonly { name: string; row_count: number }[]) => list.map((t) => `${t.name}(${t.row_count})`).join(', ');
    throw new IqpError('IQP_E_CONTENT_TABLES', `content.sqlite has ${names(actual) || 'no tables'}; the manifest says ${names(declared) || 'none'}.`);
  }
}
