/**
 * The POSIX ustar subset that format v1 uses: regular files with short names and fixed metadata.
 * Writing goes through node-tar's header encoder; reading is a strict push parser that never
 * buffers entry data, so a reader's memory does not grow with the pack.
 */
// Only the header codec: the package index would load all of node-tar (streams, fs, zlib).
import { Header } from 'tar/header';
import { IqpError } from '../errors.js';

export const BLOCK = 512;
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

export function paddingFor(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** A header with everything but name and size fixed, so identical content gives identical bytes. */
export function encodeFileHeader(path: string, size: number, mtimeSeconds: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const header = new Header({
    path,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: new Date(mtimeSeconds * 1000),
    type: 'File',
    uname: '',
    gname: '',
  });
  // needPax is also set for sizes of 8 GiB and more, which node-tar writes in the base-256 size
  // encoding that GNU tar and our reader accept; only a long name would really need pax.
  if (Buffer.byteLength(path) > 100) throw new IqpError('IQP_E_INTERNAL', `Entry name too long for a ustar header: ${path}`);
  header.encode(block, 0);
  return block;
}

export interface TarEntry {
  readonly path: string;
  readonly size: number;
  readonly type: string;
  readonly index: number;
}

export interface TarSink {
  /** Called before any data; throw to reject the entry (its size is known, nothing has been read). */
  entry(entry: TarEntry): void;
  data(chunk: Buffer): void;
  entryEnd(entry: TarEntry): void;
}

/** POSIX ustar: magic "ustar\0" and version "00" (GNU's "ustar  \0" is a different format). */
const USTAR_MAGIC = Buffer.from('ustar\x0000', 'latin1');

/** The size field: octal digits (space/NUL padded), or base-256 with the high bit set and a non-negative value. */
function sizeFieldValid(block: Buffer): boolean {
  const field = block.subarray(124, 136);
  if (field[0]! === 0x80) return true;
  if (field[0]! & 0x80) return false;
  return /^[0-7]+[ \0]*$/.test(field.toString('latin1').replace(/^ +/, ''));
}

type State = 'header' | 'data' | 'padding' | 'end' | 'trailer';

export class TarReader {
  #state: State = 'header';
  #partial = Buffer.alloc(BLOCK);
  #partialLen = 0;
  #current: TarEntry | null = null;
  #remaining = 0;
  #padding = 0;
  #index = 0;
  #zeroBlocks = 0;
  #trailingBytes = 0;

  constructor(
    private readonly sink: TarSink,
    private readonly maxTrailingZeroBytes: number,
  ) {}

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      switch (this.#state) {
        case 'data': {
          const n = Math.min(this.#remaining, chunk.length - off);
          this.sink.data(chunk.subarray(off, off + n));
          off += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#finishEntry();
          break;
        }
        case 'padding': {
          const n = Math.min(this.#padding, chunk.length - off);
          // Padding must be zero: otherwise a pack could carry bytes no checksum covers.
          for (let i = off; i < off + n; i++) {
            if (chunk[i] !== 0) throw new IqpError('IQP_E_PACK_NOT_TAR', 'Non-zero bytes in the padding after an entry.');
          }
          off += n;
          this.#padding -= n;
          if (this.#padding === 0) this.#state = 'header';
          break;
        }
        case 'header':
        case 'end': {
          const n = Math.min(BLOCK - this.#partialLen, chunk.length - off);
          chunk.copy(this.#partial, this.#partialLen, off, off + n);
          this.#partialLen += n;
          off += n;
          if (this.#partialLen === BLOCK) {
            this.#partialLen = 0;
            this.#block(this.#partial);
          }
          break;
        }
        case 'trailer': {
          const rest = chunk.subarray(off);
          if (rest.some((b) => b !== 0)) throw new IqpError('IQP_E_PACK_TRAILING_DATA');
          this.#trailingBytes += rest.length;
          if (this.#trailingBytes > this.maxTrailingZeroBytes) {
            throw new IqpError('IQP_E_PACK_TOO_LARGE', 'The pack has more zero padding after the archive than allowed.');
          }
          off = chunk.length;
          break;
        }
      }
    }
  }

  /** Call when the input is exhausted. */
  end(): void {
    if (this.#state === 'trailer') return;
    if (this.#state === 'end' && this.#partialLen === 0) {
      throw new IqpError('IQP_E_PACK_TRUNCATED', 'The archive lacks its end-of-archive marker (two zero blocks).');
    }
    if (this.#index === 0 && this.#state === 'header' && this.#partialLen === 0) {
      throw new IqpError('IQP_E_PACK_NOT_TAR', 'The pack decompresses to nothing.');
    }
    throw new IqpError(
      'IQP_E_PACK_TRUNCATED',
      this.#current ? `The archive ends inside ${this.#current.path}.` : 'The archive ends without its end-of-archive marker.',
    );
  }

  #block(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.#zeroBlocks += 1;
      this.#state = this.#zeroBlocks === 2 ? 'trailer' : 'end';
      return;
    }
    if (this.#state === 'end') throw new IqpError('IQP_E_PACK_NOT_TAR', 'A lone zero block sits between archive entries.');
    let header: Header;
    try {
      header = new Header(block);
    } catch (err) {
      throw new IqpError('IQP_E_PACK_NOT_TAR', `Tar header ${this.#index + 1} cannot be decoded: ${(err as Error).message}.`);
    }
    if (!header.cksumValid) throw new IqpError('IQP_E_PACK_NOT_TAR', `Tar header ${this.#index + 1} has a bad checksum.`);
    if (!block.subarray(257, 265).equals(USTAR_MAGIC)) {
      throw new IqpError('IQP_E_PACK_NOT_TAR', `Tar header ${this.#index + 1} is not a POSIX ustar header.`);
    }
    if (!sizeFieldValid(block)) throw new IqpError('IQP_E_PACK_NOT_TAR', `Tar header ${this.#index + 1} has an invalid size field.`);
    // node-tar reads the pre-POSIX typeflag NUL as a regular file; ustar regular files are '0'.
    const regular = block[156] === 0x30;
    const size = header.size ?? 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new IqpError('IQP_E_PACK_NOT_TAR', `Tar header ${this.#index + 1} has an invalid size.`);
    const entry: TarEntry = { path: header.path ?? '', size, type: header.type === 'File' && !regular ? 'OldFile' : header.type, index: this.#index };
    this.#index += 1;
    this.sink.entry(entry);
    this.#current = entry;
    this.#remaining = size;
    this.#padding = paddingFor(size);
    if (size === 0) this.#finishEntry();
    else this.#state = 'data';
  }

  #finishEntry(): void {
    const entry = this.#current!;
    this.sink.entryEnd(entry);
    this.#current = null;
    this.#state = this.#padding > 0 ? 'padding' : 'header';
  }
}
