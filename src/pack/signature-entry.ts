/**
 * The bytes of a pack's manifest.json and manifest.json.minisig, read from the file without hashing
 * or keeping any other entry: `iqp publish` sends the signature beside the upload so the registry
 * can check it as soon as the manifest arrives, although the entry itself comes last in the
 * archive, and holds the registry's answer to the manifest's package id and version.
 */
import { DEFAULT_LIMITS, ENTRY, type Limits } from './format.js';
import { checkEntryHeader, readFileChunks } from './reader.js';
import { TarReader, type TarEntry, type TarSink } from './tar.js';
import { decompressTo } from './zstd.js';

/** Keeps the manifest and signature entries only; every entry header still passes the reader's rules. */
class ManifestSignatureSink implements TarSink {
  readonly seen = new Set<string>();
  manifest: Buffer | null = null;
  signature: Buffer | null = null;
  #path = '';
  #lastOrder = -1;
  #keep: Buffer[] | null = null;

  constructor(private readonly limits: Limits) {}

  entry(entry: TarEntry): void {
    this.#lastOrder = checkEntryHeader(entry, this.seen, this.#lastOrder, this.limits);
    this.seen.add(entry.path);
    this.#path = entry.path;
    this.#keep = entry.path === ENTRY.signature || entry.path === ENTRY.manifest ? [] : null;
  }

  data(chunk: Buffer): void {
    // Copied: the decompressor reuses its output buffer.
    this.#keep?.push(Buffer.from(chunk));
  }

  entryEnd(): void {
    if (this.#keep && this.#path === ENTRY.signature) this.signature = Buffer.concat(this.#keep);
    else if (this.#keep) this.manifest = Buffer.concat(this.#keep);
    this.#keep = null;
  }
}

export interface ManifestAndSignature {
  /** manifest.json's bytes, or null when the pack has none. */
  readonly manifest: Buffer | null;
  /** manifest.json.minisig's bytes, or null for an unsigned pack. */
  readonly signature: Buffer | null;
}

/**
 * The exact bytes of manifest.json and manifest.json.minisig in the pack at `path`. Memory stays
 * bounded (the entries are at most limits.maxManifestBytes and limits.maxSignatureBytes); a
 * malformed archive throws the reader's error. Hashes and the manifest are not checked: the
 * registry does that.
 */
export async function readManifestAndSignature(path: string, limits: Limits = DEFAULT_LIMITS): Promise<ManifestAndSignature> {
  const sink = new ManifestSignatureSink(limits);
  const tar = new TarReader(sink, limits.maxTrailingZeroBytes);
  await decompressTo(readFileChunks(path), (chunk) => tar.write(chunk));
  tar.end();
  return { manifest: sink.manifest, signature: sink.signature };
}

/** The exact bytes of manifest.json.minisig in the pack at `path`, or null for an unsigned pack. */
export async function readSignatureEntry(path: string, limits: Limits = DEFAULT_LIMITS): Promise<Buffer | null> {
  return (await readManifestAndSignature(path, limits)).signature;
}
