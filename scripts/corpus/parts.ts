/**
 * The building blocks of the bad-pack corpus: a good pack taken apart into its entries, and the
 * helpers that put (possibly broken) entries back together at each layer — raw tar blocks, zstd
 * frames, checksums and signatures — so each case breaks exactly one thing.
 */
import { createHash } from 'node:crypto';
import { Header, type HeaderData } from 'tar';
import zstd from 'zstd-napi';
import { ENTRY, packTrustedComment, serializeChecksums, ZSTD_DEFAULT_LEVEL } from '../../src/pack/format.js';
import { type SecretKey, sign } from '../../src/pack/minisign.js';
import { BLOCK, encodeFileHeader, END_OF_ARCHIVE, paddingFor } from '../../src/pack/tar.js';
import { ZstdCompressor } from '../../src/pack/zstd.js';

export interface Keys {
  readonly corpus: SecretKey;
  readonly other: SecretKey;
}

/** One tar entry as it is written: a 512-byte header and the bytes that follow it. */
export interface RawEntry {
  readonly header: Buffer;
  readonly data: Buffer;
}

/** A good pack, taken apart. `manifest` is the parsed manifest.json, for cloning and editing. */
export interface Base {
  readonly name: string;
  readonly pack: Buffer;
  readonly tar: Buffer;
  readonly manifestBytes: Buffer;
  readonly manifest: Record<string, unknown>;
  readonly content: Buffer;
  readonly signature: Buffer;
  readonly mtime: number;
  readonly keys: Keys;
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** Compresses like the writer does: one frame, content checksum, the default level; pieces are streamed in. */
export function zst(data: Buffer | readonly Buffer[]): Buffer {
  const chunks: Buffer[] = [];
  const c = new ZstdCompressor(ZSTD_DEFAULT_LEVEL, (chunk) => chunks.push(Buffer.from(chunk)));
  for (const piece of Buffer.isBuffer(data) ? [data] : data) c.write(piece);
  c.end();
  return Buffer.concat(chunks);
}

export function unzst(data: Buffer): Buffer {
  return zstd.decompress(data);
}

/** A ustar header made by node-tar with the writer's fixed metadata; `fields` may give any type, link or device. */
export function header(path: string, size: number, mtime: number, fields: Partial<HeaderData> = {}): Buffer {
  const block = Buffer.alloc(BLOCK);
  new Header({ path, mode: 0o644, uid: 0, gid: 0, size, mtime: new Date(mtime * 1000), type: 'File', uname: '', gname: '', ...fields }).encode(block, 0);
  return block;
}

/** Recomputes a raw header's checksum after its bytes were edited by hand. */
export function fixChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

export function fileEntry(path: string, data: Buffer, mtime: number): RawEntry {
  return { header: encodeFileHeader(path, data.length, mtime), data };
}

/** Entries back to back with their padding; no end-of-archive marker (add END_OF_ARCHIVE yourself). */
export function tarBody(entries: readonly RawEntry[]): Buffer {
  return Buffer.concat(entries.flatMap((e) => [e.header, e.data, Buffer.alloc(paddingFor(e.data.length))]));
}

export function tarOf(entries: readonly RawEntry[]): Buffer {
  return Buffer.concat([tarBody(entries), END_OF_ARCHIVE]);
}

/** Splits a raw tar into its entries (trusting it: only for the good packs we built). */
export function untar(tar: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  let off = 0;
  while (off + BLOCK <= tar.length) {
    const block = tar.subarray(off, off + BLOCK);
    if (block.every((b) => b === 0)) break;
    const h = new Header(block);
    const size = h.size ?? 0;
    entries.push({ header: Buffer.from(block), data: Buffer.from(tar.subarray(off + BLOCK, off + BLOCK + size)) });
    off += BLOCK + size + paddingFor(size);
  }
  return entries;
}

export function entryNamed(tar: Buffer, name: string): Buffer {
  const found = untar(tar).find((e) => new Header(e.header).path === name);
  if (!found) throw new Error(`the good pack has no ${name}`);
  return found.data;
}

export interface Seal {
  /** manifest.json exactly as it goes into the pack. */
  readonly manifestBytes: Buffer;
  readonly content?: Buffer;
  /** null: no signature entry. */
  readonly key?: SecretKey | null;
  readonly checksums?: Buffer;
  readonly signature?: Buffer;
}

/**
 * The four entries of a pack whose derived parts are recomputed: checksums.sha256 from the bytes
 * actually stored and a fresh signature over the stored manifest, so that a broken manifest or
 * content is what a reader trips over, not a stale hash or signature.
 */
export function sealedEntries(base: Base, seal: Seal): RawEntry[] {
  const content = seal.content ?? base.content;
  const checksums =
    seal.checksums ??
    serializeChecksums([
      { path: ENTRY.manifest, sha256: sha256(seal.manifestBytes) },
      { path: ENTRY.content, sha256: sha256(content) },
    ]);
  const key = seal.key === undefined ? base.keys.corpus : seal.key;
  let signature = seal.signature ?? null;
  if (!signature && key) {
    const named = namesOf(seal.manifestBytes) ?? { package_id: String(base.manifest['package_id']), version: String(base.manifest['version']) };
    const comment = packTrustedComment(named.package_id, named.version, sha256(seal.manifestBytes));
    signature = Buffer.from(sign(seal.manifestBytes, key, comment), 'utf8');
  }
  const entries = [
    fileEntry(ENTRY.manifest, seal.manifestBytes, base.mtime),
    fileEntry(ENTRY.content, content, base.mtime),
    fileEntry(ENTRY.checksums, checksums, base.mtime),
  ];
  if (signature) entries.push(fileEntry(ENTRY.signature, signature, base.mtime));
  return entries;
}

export function sealedPack(base: Base, seal: Seal): Buffer {
  return zst(tarOf(sealedEntries(base, seal)));
}

/** package_id and version of a manifest when they are readable strings, for the trusted comment. */
function namesOf(manifestBytes: Buffer): { package_id: string; version: string } | null {
  try {
    const m = JSON.parse(manifestBytes.toString('utf8')) as Record<string, unknown>;
    if (typeof m['package_id'] === 'string' && typeof m['version'] === 'string' && !/\s/.test(m['package_id'] + m['version'])) {
      return { package_id: m['package_id'], version: m['version'] };
    }
  } catch {
    // an unreadable manifest is signed with the good pack's names
  }
  return null;
}

/** The good manifest with `edit` applied, serialised like the writer (key order kept, 2-space indent, final newline). */
export function editedManifest(base: Base, edit: (m: Record<string, unknown>) => void): Buffer {
  const m = structuredClone(base.manifest);
  edit(m);
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`, 'utf8');
}

/** A deterministic byte stream (SHA-256 in counter mode) standing in for random data. */
export function pseudoRandom(seed: string, length: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < length; i++) out.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(out).subarray(0, length);
}
