/**
 * Packs the builder would refuse to make, for the hostile upload tests: a good template pack taken
 * apart with the bad-pack corpus's tools (scripts/corpus/parts.ts) and put back together with an
 * edited manifest, or with a content entry that is a decompression bomb, signed by any key.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ENTRY, packTrustedComment } from '../../src/pack/format.js';
import { sign } from '../../src/pack/minisign.js';
import { encodeFileHeader, END_OF_ARCHIVE } from '../../src/pack/tar.js';
import { ZstdCompressor } from '../../src/pack/zstd.js';
import { type Base, editedManifest, entryNamed, fileEntry, sealedPack, sha256, tarBody, unzst } from '../../scripts/corpus/parts.js';
import type { BuiltPack, TestKey } from '../server/helpers.js';

function baseOf(pack: BuiltPack, key: TestKey): Base {
  const bytes = readFileSync(pack.path);
  const tar = unzst(bytes);
  const manifestBytes = entryNamed(tar, ENTRY.manifest);
  return {
    name: pack.package_id,
    pack: bytes,
    tar,
    manifestBytes,
    manifest: JSON.parse(manifestBytes.toString('utf8')) as Record<string, unknown>,
    content: entryNamed(tar, ENTRY.content),
    signature: entryNamed(tar, ENTRY.signature),
    mtime: Math.floor(Date.parse(pack.manifest.created_at) / 1000),
    keys: { corpus: key.secret, other: key.secret },
  };
}

/** `pack` with its manifest edited, checksums recomputed and signed again by `key`. */
export function withEditedManifest(pack: BuiltPack, key: TestKey, edit: (m: Record<string, unknown>) => void): Buffer {
  const base = baseOf(pack, key);
  return sealedPack(base, { manifestBytes: editedManifest(base, edit) });
}

/**
 * A pack whose content.sqlite is `contentBytes` zeros, as one zstd stream of a few hundred KB:
 * the manifest declares that size and (unless `trueHash`) a wrong SHA-256, so a reader that
 * decompresses everything still refuses it, at the very end; signed by `key` (or unsigned).
 * Zeros are compressed once per 64 MiB and the frame repeated: readers decode concatenated frames.
 */
export function zeroBomb(pack: BuiltPack, key: TestKey | null, contentBytes: number, options: { trueHash?: boolean } = {}): Buffer {
  const base = baseOf(pack, key ?? ({ secret: null } as never));
  const piece = 64 * 1024 * 1024;
  if (contentBytes % piece !== 0) throw new Error('contentBytes must be a multiple of 64 MiB');
  const zeroPiece = Buffer.alloc(piece);
  let contentSha = '0'.repeat(64);
  if (options.trueHash) {
    const h = createHash('sha256');
    for (let i = 0; i < contentBytes / piece; i++) h.update(zeroPiece);
    contentSha = h.digest('hex');
  }
  const manifestBytes = editedManifest(base, (m) => {
    (m['files'] as Record<string, unknown>[])[0] = { path: ENTRY.content, size_bytes: contentBytes, sha256: contentSha };
  });
  const head = fileEntry(ENTRY.manifest, manifestBytes, base.mtime);
  const checksums = Buffer.from(`${sha256(manifestBytes)}  ${ENTRY.manifest}\n${contentSha}  ${ENTRY.content}\n`);
  const tail = [fileEntry(ENTRY.checksums, checksums, base.mtime)];
  if (key) {
    const comment = packTrustedComment(String(base.manifest['package_id']), String(base.manifest['version']), sha256(manifestBytes));
    tail.push(fileEntry(ENTRY.signature, Buffer.from(sign(manifestBytes, key.secret, comment), 'utf8'), base.mtime));
  }
  const frame = (data: Buffer): Buffer => {
    const out: Buffer[] = [];
    const c = new ZstdCompressor(1, (chunk) => out.push(Buffer.from(chunk)), { workers: 1 });
    c.write(data);
    c.end();
    return Buffer.concat(out);
  };
  const zeros = frame(zeroPiece);
  return Buffer.concat([
    frame(Buffer.concat([tarBody([head]), encodeFileHeader(ENTRY.content, contentBytes, base.mtime)])),
    ...Array.from({ length: contentBytes / piece }, () => zeros),
    frame(Buffer.concat([tarBody(tail), END_OF_ARCHIVE])),
  ]);
}
