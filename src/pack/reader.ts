/**
 * Reads a pack in one pass: zstd → strict tar → per-entry rules, hashing as bytes go by. Small
 * entries are kept (bounded by Limits); content.sqlite is only hashed, or spilled to a file when
 * the caller wants to open it. Nothing here trusts a size before checking it against a limit.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { IqpError } from '../errors.js';
import { DEFAULT_LIMITS, ENTRY, ENTRY_ORDER, type Limits, type Manifest, MiB, serializeChecksums } from './format.js';
import { parseManifest } from './manifest.js';
import { TarReader, type TarEntry } from './tar.js';
import { decompressTo } from './zstd.js';

export interface ReadOptions {
  readonly limits?: Limits;
  /** Write content.sqlite here while reading (for integrity checks); the caller removes it. */
  readonly contentPath?: string;
  /**
   * Refuse (IQP_E_CONTENT_TOO_LARGE) once the bytes decompressed so far exceed this many times the
   * compressed bytes read so far (and RATIO_FLOOR): the registry's guard against decompression
   * bombs that stay within every entry limit. Unset: no ratio limit (iqp verify, pull, inspect).
   */
  readonly maxCompressionRatio?: number;
  /**
   * Called once manifest.json is read and parsed, before any byte of content.sqlite is: a throw
   * here stops the read (the registry checks an upload's signature sent beside it, right here).
   */
  readonly onManifest?: (manifest: Manifest, manifestBytes: Buffer) => void;
}

/**
 * Output below which the ratio is not checked: a small pack's tar headers, padding and manifest
 * compress far better than its content, and 16 MiB is nothing to decompress or write.
 */
export const RATIO_FLOOR = 16 * MiB;

export interface EntryDigest {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface PackContents {
  readonly manifest: Manifest;
  readonly manifestBytes: Buffer;
  readonly entries: readonly EntryDigest[];
  /** The text of manifest.json.minisig, or null for an unsigned pack. */
  readonly signature: string | null;
  /** The compressed archive itself, as the registry and apps see it. */
  readonly archive: { readonly size_bytes: number; readonly sha256: string };
  readonly contentPath: string | null;
}

interface Collecting {
  entry: TarEntry;
  hash: Hash;
  keep: Buffer[] | null;
  received: number;
}

function unsafePath(path: string): boolean {
  return path.startsWith('/') || path.split('/').includes('..') || path.includes('\\') || path.includes('\0');
}

function entryLimit(path: string, limits: Limits): number {
  switch (path) {
    case ENTRY.manifest:
      return limits.maxManifestBytes;
    case ENTRY.checksums:
      return limits.maxChecksumsBytes;
    case ENTRY.signature:
      return limits.maxSignatureBytes;
    default:
      return limits.maxContentBytes;
  }
}

/**
 * The rules an entry's header must pass before any of its data is read: a safe path, a regular
 * file, a known name, once, in ENTRY_ORDER, within its size limit. Returns its place in ENTRY_ORDER.
 */
export function checkEntryHeader(entry: TarEntry, seen: { has(path: string): boolean }, lastOrder: number, limits: Limits): number {
  if (unsafePath(entry.path)) throw new IqpError('IQP_E_PACK_ENTRY_PATH', `Unsafe entry path: ${JSON.stringify(entry.path)}.`, { entry: entry.path });
  if (entry.type !== 'File') {
    throw new IqpError('IQP_E_PACK_ENTRY_TYPE', `Entry ${JSON.stringify(entry.path)} is a ${entry.type}, not a regular file.`, {
      entry: entry.path,
      type: entry.type,
    });
  }
  const order = ENTRY_ORDER.indexOf(entry.path);
  if (order < 0) throw new IqpError('IQP_E_PACK_ENTRY_UNEXPECTED', `Unexpected entry ${JSON.stringify(entry.path)}.`, { entry: entry.path });
  if (seen.has(entry.path)) throw new IqpError('IQP_E_PACK_ENTRY_DUPLICATE', `Entry ${entry.path} appears twice.`, { entry: entry.path });
  if (order < lastOrder) {
    throw new IqpError('IQP_E_PACK_ENTRY_ORDER', `Entry ${entry.path} comes after ${ENTRY_ORDER[lastOrder]}.`, { entry: entry.path });
  }
  const limit = entryLimit(entry.path, limits);
  if (entry.size > limit) {
    throw new IqpError('IQP_E_PACK_ENTRY_TOO_LARGE', `Entry ${entry.path} is ${entry.size} bytes; the limit is ${limit}.`, {
      entry: entry.path,
      size: entry.size,
      limit,
    });
  }
  return order;
}

class PackSink {
  readonly digests = new Map<string, EntryDigest>();
  readonly kept = new Map<string, Buffer>();
  manifest: Manifest | null = null;
  expanded = 0;
  #lastOrder = -1;
  #current: Collecting | null = null;
  #contentFd: number | null = null;

  constructor(
    private readonly limits: Limits,
    private readonly contentPath: string | undefined,
    private readonly onManifest: ReadOptions['onManifest'],
  ) {}

  entry(entry: TarEntry): void {
    this.#lastOrder = checkEntryHeader(entry, this.digests, this.#lastOrder, this.limits);
    if (this.onManifest && this.manifest === null && entry.path !== ENTRY.manifest) {
      // What onManifest checks must come before anything else is read: a pack without its manifest
      // first is malformed anyway (missing or out of order), and is refused here, unread.
      throw new IqpError('IQP_E_PACK_ENTRY_ORDER', `Entry ${entry.path} comes before ${ENTRY.manifest}, which must be the first entry.`, { entry: entry.path });
    }
    const declared = this.manifest?.files.find((f) => f.path === entry.path);
    if (declared && declared.size_bytes !== entry.size) {
      throw new IqpError('IQP_E_PACK_SIZE_MISMATCH', `${entry.path} is ${entry.size} bytes; the manifest says ${declared.size_bytes}.`, {
        entry: entry.path,
      });
    }
    this.expanded += entry.size;
    if (this.expanded > this.limits.maxContentBytes + 16 * MiB) {
      throw new IqpError('IQP_E_PACK_TOO_LARGE', `The pack expands to more than ${this.limits.maxContentBytes} bytes.`);
    }
    const isContent = entry.path === ENTRY.content;
    if (isContent && this.contentPath) this.#contentFd = openSync(this.contentPath, 'w', 0o600);
    this.#current = { entry, hash: createHash('sha256'), keep: isContent ? null : [], received: 0 };
  }

  data(chunk: Buffer): void {
    const cur = this.#current!;
    cur.hash.update(chunk);
    cur.received += chunk.length;
    if (cur.keep) cur.keep.push(Buffer.from(chunk));
    else if (this.#contentFd !== null) writeSync(this.#contentFd, chunk);
  }

  entryEnd(entry: TarEntry): void {
    const cur = this.#current!;
    this.#current = null;
    const sha256 = cur.hash.digest('hex');
    this.digests.set(entry.path, { path: entry.path, size: entry.size, sha256 });
    if (cur.keep) this.kept.set(entry.path, Buffer.concat(cur.keep));
    if (this.#contentFd !== null) {
      // No fsync: the copy is read back by this process and removed, never needed after a crash.
      closeSync(this.#contentFd);
      this.#contentFd = null;
    }
    if (entry.path === ENTRY.manifest) {
      const bytes = this.kept.get(ENTRY.manifest)!;
      this.manifest = parseManifest(bytes);
      this.onManifest?.(this.manifest, bytes);
    }
  }

  close(): void {
    if (this.#contentFd !== null) closeSync(this.#contentFd);
    this.#contentFd = null;
  }
}

/** 256 KiB: larger reads are no faster here, and each MiB of buffer is a MiB of verify's peak RSS. */
const READ_SIZE = 256 * 1024;

/**
 * A file's bytes as chunks of one reused buffer: each chunk is valid only until the next one is
 * asked for, which is how readPack consumes them (decompressed and hashed before it reads on).
 * A fresh buffer per chunk (as fs read streams give) leaves tens of MiB of garbage behind on a
 * large pack before the garbage collector notices, and memory would then grow with the pack.
 */
export async function* readFileChunks(path: string): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_SIZE);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, READ_SIZE, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** Stops a read once what was wanted has been seen. */
class Seen extends Error {}

/**
 * Whether the file at `path` begins as a pack does: zstd data whose archive opens with a valid
 * header for manifest.json. Reads only that far; says nothing of the rest (a damaged pack is still
 * a pack: `iqp build` may replace it). Errors other than the file's format (permissions) are thrown.
 */
export async function startsLikePack(path: string): Promise<boolean> {
  let first: string | null = null;
  const tar = new TarReader(
    {
      entry(entry) {
        first = entry.path;
        throw new Seen();
      },
      data() {},
      entryEnd() {},
    },
    0,
  );
  try {
    await decompressTo(readFileChunks(path), (chunk) => tar.write(chunk));
  } catch (err) {
    if (!(err instanceof Seen) && !(err instanceof IqpError)) throw err;
  }
  return first === ENTRY.manifest;
}

/** The .minisig entry as text: strictly UTF-8, so what is checked is what minisign would read. */
export function signatureText(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new IqpError('IQP_E_SIG_MALFORMED', 'manifest.json.minisig is not valid UTF-8.');
  }
}

/** Reads and checks everything that needs no key and no SQLite: structure, manifest, sizes, hashes. */
export async function readPack(source: AsyncIterable<Buffer>, options: ReadOptions = {}): Promise<PackContents> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const sink = new PackSink(limits, options.contentPath, options.onManifest);
  const tar = new TarReader(sink, limits.maxTrailingZeroBytes);
  const archiveHash = createHash('sha256');
  let archiveSize = 0;
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      archiveHash.update(chunk);
      archiveSize += chunk.length;
      yield chunk;
    }
  }
  const ratio = options.maxCompressionRatio;
  let decompressed = 0;
  const write = (chunk: Buffer): void => {
    decompressed += chunk.length;
    if (ratio !== undefined && decompressed > RATIO_FLOOR && decompressed > ratio * archiveSize) {
      throw new IqpError('IQP_E_CONTENT_TOO_LARGE', `The pack expands to more than ${ratio} times the ${archiveSize} compressed bytes read so far.`, {
        max_compression_ratio: ratio,
        compressed_bytes: archiveSize,
        decompressed_bytes: decompressed,
      });
    }
    tar.write(chunk);
  };
  try {
    await decompressTo(hashed(), write);
    tar.end();
  } finally {
    sink.close();
  }
  return finish(sink, { size_bytes: archiveSize, sha256: archiveHash.digest('hex') }, options.contentPath ?? null);
}

function finish(sink: PackSink, archive: PackContents['archive'], contentPath: string | null): PackContents {
  for (const required of [ENTRY.manifest, ENTRY.content, ENTRY.checksums]) {
    if (!sink.digests.has(required)) throw new IqpError('IQP_E_PACK_ENTRY_MISSING', `The pack has no ${required}.`, { entry: required });
  }
  const manifest = sink.manifest!;
  const manifestDigest = sink.digests.get(ENTRY.manifest)!;
  for (const file of manifest.files) {
    const actual = sink.digests.get(file.path)!;
    if (actual.size !== file.size_bytes) {
      throw new IqpError('IQP_E_PACK_SIZE_MISMATCH', `${file.path} is ${actual.size} bytes; the manifest says ${file.size_bytes}.`, { entry: file.path });
    }
    if (actual.sha256 !== file.sha256) {
      throw new IqpError('IQP_E_PACK_HASH_MISMATCH', `${file.path} has SHA-256 ${actual.sha256}; the manifest says ${file.sha256}.`, {
        entry: file.path,
      });
    }
  }
  const expected = serializeChecksums([manifestDigest, ...manifest.files.map((f) => sink.digests.get(f.path)!)].map((d) => ({ path: d.path, sha256: d.sha256 })));
  if (!sink.kept.get(ENTRY.checksums)!.equals(expected)) {
    throw new IqpError('IQP_E_PACK_CHECKSUMS', 'checksums.sha256 does not list the SHA-256 of manifest.json and content.sqlite as sha256sum prints them.');
  }
  const signature = sink.kept.get(ENTRY.signature);
  return {
    manifest,
    manifestBytes: sink.kept.get(ENTRY.manifest)!,
    entries: ENTRY_ORDER.filter((p) => sink.digests.has(p)).map((p) => sink.digests.get(p)!),
    signature: signature ? signatureText(signature) : null,
    archive,
    contentPath,
  };
}
