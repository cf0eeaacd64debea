/**
 * The bytes of a pack's manifest.json.minisig, read from the file without hashing or keeping any
 * other entry: `iqp publish` sends them beside the upload so the registry can check the signature
 * as soon as the manifest arrives, although the entry itself comes last in the archive.
 */
import { DEFAULT_LIMITS, ENTRY, type Limits } from './format.js';
import { checkEntryHeader, readFileChunks } from './reader.js';
import { TarReader, type TarEntry, type TarSink } from './tar.js';
import { decompressTo } from './zstd.js';

/** Keeps the signature entry only; every entry header still passes the reader's rules. */
class SignatureSink implements TarSink {
  readonly seen = new Set<string>();
  signature: Buffer | null = null;
  #lastOrder = -1;
  #keep: Buffer[] | null = null;

  constructor(private readonly limits: Limits) {}

  entry(entry: TarEntry): void {
    this.#lastOrder = checkEntryHeader(entry, this.seen, this.#lastOrder, this.limits);
    this.seen.add(entry.path);
    this.#keep = entry.path === ENTRY.signature ? [] : null;
  }

  data(chunk: Buffer): void {
    // Copied: the decompressor reuses its output buffer.
    this.#keep?.push(Buffer.from(chunk));
  }

  entryEnd(): void {
    if (this.#keep) this.signature = Buffer.concat(this.#keep);
    this.#keep = null;
  }
}

/**
 * The exact bytes of manifest.json.minisig in the pack at `path`, or null for an unsigned pack.
 * Memory stays bounded (the entry is at most limits.maxSignatureBytes); a malformed archive throws
 * the reader's error. Hashes and the manifest are not checked: the registry does that.
 */
export async function readSignatureEntry(path: string, limits: Limits = DEFAULT_LIMITS): Promise<Buffer | null> {
  const sink = new SignatureSink(limits);
  const tar = new TarReader(sink, limits.maxTrailingZeroBytes);
  await decompressTo(readFileChunks(path), (chunk) => tar.write(chunk));
  tar.end();
  return sink.signature;
}
