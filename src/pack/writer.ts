/** Writes a pack archive: the four entries in order, as one zstd frame, atomically. */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { openAtomic } from '../atomic.js';
import { IqpError } from '../errors.js';
import { ENTRY, type Manifest, packTrustedComment, serializeChecksums, serializeManifest } from './format.js';
import { type SecretKey, sign } from './minisign.js';
import { encodeFileHeader, END_OF_ARCHIVE, paddingFor } from './tar.js';
import { ZstdCompressor } from './zstd.js';

export interface WriteInput {
  readonly manifest: Manifest;
  readonly contentPath: string;
  readonly secretKey: SecretKey | null;
  readonly level: number;
  /** Compression worker threads (default: one per core, see threads.ts); the bytes are the same for any number. */
  readonly threads?: number;
  readonly outPath: string;
  /** Awaited once the archive is complete and before it is committed: a rejection leaves no file. */
  readonly beforeCommit?: () => Promise<void>;
}

export interface WrittenPack {
  readonly path: string;
  readonly size_bytes: number;
  readonly sha256: string;
  readonly manifestSha256: string;
  readonly keyId: string | null;
}

export type ByteProgress = (done: number, total: number) => void;

const READ_SIZE = 1024 * 1024;

export async function writePack(input: WriteInput, onProgress: ByteProgress = () => {}): Promise<WrittenPack> {
  const { manifest } = input;
  const content = manifest.files.find((f) => f.path === ENTRY.content);
  if (!content) throw new IqpError('IQP_E_INTERNAL', 'The manifest lists no content.sqlite.');
  const manifestBytes = serializeManifest(manifest);
  const manifestSha256 = createHash('sha256').update(manifestBytes).digest('hex');
  const checksums = serializeChecksums([
    { path: ENTRY.manifest, sha256: manifestSha256 },
    { path: ENTRY.content, sha256: content.sha256 },
  ]);
  const signature = input.secretKey
    ? Buffer.from(sign(manifestBytes, input.secretKey, packTrustedComment(manifest.package_id, manifest.version, manifestSha256)), 'utf8')
    : null;
  const mtime = Math.floor(Date.parse(manifest.created_at) / 1000);

  const out = openAtomic(input.outPath);
  const archiveHash = createHash('sha256');
  let archiveSize = 0;
  const zstd = new ZstdCompressor(
    input.level,
    (chunk) => {
      archiveHash.update(chunk);
      archiveSize += chunk.length;
      out.write(chunk);
    },
    input.threads !== undefined ? { workers: input.threads } : {},
  );
  const smallEntry = (name: string, data: Buffer): void => {
    zstd.write(encodeFileHeader(name, data.length, mtime));
    zstd.write(data);
    zstd.write(Buffer.alloc(paddingFor(data.length)));
  };
  try {
    smallEntry(ENTRY.manifest, manifestBytes);
    zstd.write(encodeFileHeader(ENTRY.content, content.size_bytes, mtime));
    const contentHash = createHash('sha256');
    const fh = await open(input.contentPath, 'r');
    try {
      const buf = Buffer.allocUnsafe(READ_SIZE);
      let done = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, READ_SIZE, null);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        contentHash.update(chunk);
        zstd.write(chunk);
        done += bytesRead;
        onProgress(done, content.size_bytes);
      }
      // The file must not change between hashing and packing; a mismatch means it did.
      if (done !== content.size_bytes || contentHash.digest('hex') !== content.sha256) {
        throw new IqpError('IQP_E_CONTENT_INVALID', 'content.sqlite changed while it was being packed.');
      }
    } finally {
      await fh.close();
    }
    zstd.write(Buffer.alloc(paddingFor(content.size_bytes)));
    smallEntry(ENTRY.checksums, checksums);
    if (signature) smallEntry(ENTRY.signature, signature);
    zstd.write(END_OF_ARCHIVE);
    zstd.end();
    await input.beforeCommit?.();
    out.commit();
  } finally {
    out.abort();
  }
  return {
    path: input.outPath,
    size_bytes: archiveSize,
    sha256: archiveHash.digest('hex'),
    manifestSha256,
    keyId: input.secretKey?.keyId ?? null,
  };
}
