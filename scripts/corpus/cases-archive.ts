/** The outer layers: the zstd stream, and the tar archive as a whole (headers, end marker, trailer). */
import { gzipSync } from 'node:zlib';
import { BLOCK, END_OF_ARCHIVE } from '../../src/pack/tar.js';
import { type Case, badCase } from './case.js';
import { type Base, fixChecksum, pseudoRandom, tarBody, tarOf, untar, zst } from './parts.js';

/** Offset of the first block header in a single-frame zstd pack (after magic, descriptor and optional fields). */
function firstBlockOffset(pack: Buffer): number {
  const fhd = pack[4]!;
  const singleSegment = (fhd >> 5) & 1;
  const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6]!;
  const dictIdSize = [0, 1, 2, 4][fhd & 3]!;
  return 4 + 1 + (singleSegment ? 0 : 1) + dictIdSize + fcsSize;
}

function withByte(buf: Buffer, offset: number, edit: (b: number) => number): Buffer {
  const copy = Buffer.from(buf);
  copy[offset] = edit(copy[offset]!) & 0xff;
  return copy;
}

/** A skippable zstd frame: valid zstd that decompresses to nothing. */
function skippableFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50, 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/** The archive followed by `zeros` zero bytes, streamed to the compressor 16 MiB at a time. */
function zeroBomb(tar: Buffer, zeros: number): Buffer {
  const piece = Buffer.alloc(16 * 1024 * 1024);
  return zst([tar, ...Array.from({ length: zeros / piece.length }, () => piece)]);
}

const entries = (base: Base) => untar(base.tar);
const body = (base: Base) => tarBody(entries(base));

/** The good archive with header `index` edited in place and its checksum recomputed, so only the edit is wrong. */
function editedHeader(b: Base, index: number, edit: (block: Buffer) => void): Buffer {
  const list = entries(b).map((e) => ({ header: Buffer.from(e.header), data: e.data }));
  edit(list[index]!.header);
  fixChecksum(list[index]!.header);
  return zst(tarOf(list));
}

const SIZE = 124;
const MTIME = 136;

export const zstdCases: readonly Case[] = [
  badCase('zstd-empty-file', 'IQP_E_PACK_COMPRESSION', 'A zero-byte file is not a zstd stream.', () => Buffer.alloc(0)),
  badCase('zstd-cut-in-magic', 'IQP_E_PACK_COMPRESSION', 'The file stops after 3 bytes, inside the zstd magic number.', (b) => b.pack.subarray(0, 3)),
  badCase('zstd-cut-after-frame-header', 'IQP_E_PACK_COMPRESSION', 'The file stops right after the frame header, before any block.', (b) =>
    b.pack.subarray(0, firstBlockOffset(b.pack)),
  ),
  badCase('zstd-cut-in-half', 'IQP_E_PACK_COMPRESSION', 'The file stops halfway through the compressed data.', (b) => b.pack.subarray(0, b.pack.length >> 1)),
  badCase('zstd-cut-before-checksum', 'IQP_E_PACK_COMPRESSION', 'The 4-byte frame checksum is missing: every tar byte decodes, but the frame never ends.', (b) =>
    b.pack.subarray(0, b.pack.length - 4),
  ),
  badCase('zstd-cut-last-byte', 'IQP_E_PACK_COMPRESSION', 'The last byte of the frame checksum is missing.', (b) => b.pack.subarray(0, b.pack.length - 1)),
  badCase('zstd-checksum-wrong', 'IQP_E_PACK_COMPRESSION', 'The frame checksum is flipped: the data decodes, but zstd reports the checksum mismatch at the end.', (b) =>
    withByte(b.pack, b.pack.length - 1, (x) => x ^ 0xff),
  ),
  badCase('zstd-reserved-block-type', 'IQP_E_PACK_COMPRESSION', 'The first block header uses the reserved block type 3.', (b) =>
    withByte(b.pack, firstBlockOffset(b.pack), (x) => x | 0b110),
  ),
  badCase('zstd-window-too-large', 'IQP_E_PACK_COMPRESSION', 'The frame header asks for a 128 MiB window, above the 8 MiB (window log 23) readers allow.', (b) => {
    if ((b.pack[4]! >> 5) & 1) throw new Error('expected a frame with a window descriptor');
    return withByte(b.pack, 5, () => (27 - 10) << 3);
  }),
  badCase('zstd-garbage-after-frame', 'IQP_E_PACK_COMPRESSION', 'Bytes that are not a zstd frame follow the pack’s frame.', (b) =>
    Buffer.concat([b.pack, Buffer.from('this is not a zstd frame\n')]),
  ),
  badCase('not-zstd-plain-tar', 'IQP_E_PACK_COMPRESSION', 'An uncompressed tar (of the good manifest.json only, to stay small).', (b) => tarOf(entries(b).slice(0, 1))),
  badCase('not-zstd-gzip', 'IQP_E_PACK_COMPRESSION', 'The good tar compressed with gzip instead of zstd.', (b) => gzipSync(b.tar, { level: 9 })),
  badCase('not-zstd-random', 'IQP_E_PACK_COMPRESSION', '1 KiB of (deterministic) random bytes.', () => pseudoRandom('not-zstd-random', 1024)),
  badCase('zstd-skippable-frame-only', 'IQP_E_PACK_NOT_TAR', 'A valid zstd skippable frame and nothing else: the pack decompresses to nothing.', () =>
    skippableFrame(Buffer.from('iqp corpus: nothing here')),
  ),
  badCase('zstd-empty-frame', 'IQP_E_PACK_NOT_TAR', 'A valid zstd frame of zero bytes.', () => zst(Buffer.alloc(0))),
  badCase('zstd-of-json', 'IQP_E_PACK_NOT_TAR', 'zstd of manifest.json alone: the first 512 bytes are not a tar header.', (b) => zst(b.manifestBytes)),
  badCase('zstd-of-sqlite', 'IQP_E_PACK_NOT_TAR', 'zstd of content.sqlite alone: the SQLite header is not a tar header.', (b) => zst(b.content)),
  badCase('zstd-of-random', 'IQP_E_PACK_NOT_TAR', 'zstd of 1 KiB of random bytes: binary garbage where a tar header should be.', () => zst(pseudoRandom('zstd-of-random', 1024))),
  badCase('zstd-of-pack', 'IQP_E_PACK_NOT_TAR', 'The good pack compressed a second time.', (b) => zst(b.pack)),
];

export const tarCases: readonly Case[] = [
  badCase('tar-header-checksum-wrong', 'IQP_E_PACK_NOT_TAR', 'The first header’s mtime was changed without updating its checksum.', (b) => {
    const tar = Buffer.from(b.tar);
    tar[136] = tar[136] === 0x31 ? 0x32 : 0x31;
    return zst(tar);
  }),
  badCase('tar-v7-header', 'IQP_E_PACK_NOT_TAR', 'The first header has no ustar magic (an old v7 header) but a valid checksum.', (b) => {
    const tar = Buffer.from(b.tar);
    tar.fill(0, 257, 265);
    fixChecksum(tar.subarray(0, BLOCK));
    return zst(tar);
  }),
  badCase('tar-gnu-header', 'IQP_E_PACK_NOT_TAR', 'The first header has GNU tar’s magic ("ustar  \\0"), not POSIX ustar’s ("ustar\\0" "00").', (b) =>
    editedHeader(b, 0, (h) => h.write('ustar  \0', 257, 8, 'latin1')),
  ),
  badCase('tar-ustar-version-with-prefix', 'IQP_E_PACK_NOT_TAR', 'ustar version "  " instead of "00" and a prefix "evil": GNU tar reads evil/manifest.json, node-tar ignores the prefix.', (b) =>
    editedHeader(b, 0, (h) => {
      h.write('  ', 263, 2, 'latin1');
      h.write('evil', 345, 'latin1');
    }),
  ),
  badCase('tar-size-not-octal', 'IQP_E_PACK_NOT_TAR', 'manifest.json’s size field reads "0000002617x": GNU tar refuses it, a lenient parseInt would read 1423.', (b) =>
    editedHeader(b, 0, (h) => (h[SIZE + 10] = 'x'.charCodeAt(0))),
  ),
  badCase('tar-size-base256-bad-marker', 'IQP_E_PACK_NOT_TAR', 'The first size field starts with 0x81: neither octal nor a base-256 marker (0x80).', (b) =>
    editedHeader(b, 0, (h) => (h[SIZE] = 0x81)),
  ),
  badCase('tar-size-base256-huge', 'IQP_E_PACK_NOT_TAR', 'A base-256 size of 2^88 - 1 bytes for checksums.sha256: beyond any safe integer.', (b) =>
    editedHeader(b, 2, (h) => {
      h[SIZE] = 0x80;
      h.fill(0xff, SIZE + 1, SIZE + 12);
    }),
  ),
  badCase('tar-mtime-base256-bad-marker', 'IQP_E_PACK_NOT_TAR', 'The first mtime field starts with 0x81, an invalid base-256 number.', (b) =>
    editedHeader(b, 0, (h) => (h[MTIME] = 0x81)),
  ),
  badCase('tar-padding-not-zero', 'IQP_E_PACK_NOT_TAR', 'Bytes hidden in the padding after manifest.json, covered by no checksum.', (b) => {
    const tar = Buffer.from(b.tar);
    tar.write('hidden', BLOCK + b.manifestBytes.length + 1, 'latin1');
    return zst(tar);
  }),
  badCase('tar-lone-zero-block', 'IQP_E_PACK_NOT_TAR', 'A single zero block sits between manifest.json and content.sqlite.', (b) => {
    const [manifest, ...rest] = entries(b);
    return zst(Buffer.concat([tarBody([manifest!]), Buffer.alloc(BLOCK), tarBody(rest), END_OF_ARCHIVE]));
  }),
  badCase('tar-cut-mid-content', 'IQP_E_PACK_TRUNCATED', 'The tar stops in the middle of content.sqlite’s data (the zstd frame itself is whole).', (b) => {
    const cut = tarBody(entries(b).slice(0, 1)).length + BLOCK + (b.content.length >> 1);
    return zst(b.tar.subarray(0, cut));
  }),
  badCase('tar-cut-mid-header', 'IQP_E_PACK_TRUNCATED', 'The tar stops 100 bytes into checksums.sha256’s header.', (b) => {
    const [m, c] = entries(b);
    return zst(Buffer.concat([tarBody([m!, c!]), Buffer.from(entries(b)[2]!.header.subarray(0, 100))]));
  }),
  badCase('tar-no-end-marker', 'IQP_E_PACK_TRUNCATED', 'All four entries, but no end-of-archive marker.', (b) => zst(body(b))),
  badCase('tar-one-end-block', 'IQP_E_PACK_TRUNCATED', 'Only one of the two zero blocks that end an archive.', (b) => zst(Buffer.concat([body(b), Buffer.alloc(BLOCK)]))),
  badCase('tar-trailing-garbage', 'IQP_E_PACK_TRAILING_DATA', 'Non-zero bytes after the end-of-archive marker, inside the same zstd frame.', (b) =>
    zst(Buffer.concat([b.tar, Buffer.from('hidden payload after the archive\n')])),
  ),
  badCase('tar-second-pack-appended', 'IQP_E_PACK_TRAILING_DATA', 'The good pack twice, as two zstd frames: the second archive is trailing data.', (b) =>
    Buffer.concat([b.pack, b.pack]),
  ),
  badCase('tar-zero-padding-excess', 'IQP_E_PACK_TOO_LARGE', '1 MiB + 512 bytes of zeros after the archive; readers allow 1 MiB of padding.', (b) =>
    zst(Buffer.concat([b.tar, Buffer.alloc(1024 * 1024 + BLOCK)])),
  ),
  badCase('tar-zero-bomb', 'IQP_E_PACK_TOO_LARGE', 'A few KB that expand to 128 MiB of zeros after the archive; the reader stops after 1 MiB.', (b) =>
    zeroBomb(b.tar, 128 * 1024 * 1024),
  ),
  badCase('tar-end-marker-only', 'IQP_E_PACK_ENTRY_MISSING', 'A well-formed empty archive: just the end-of-archive marker.', () => zst(END_OF_ARCHIVE)),
];
