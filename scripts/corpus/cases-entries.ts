/** The entries: which are present, in what order, with what names, types and sizes, and what checksums.sha256 says. */
import { Pax } from 'tar';
import { ENTRY, GiB, KiB, MiB } from '../../src/pack/format.js';
import { type Case, badCase } from './case.js';
import { type Base, editedManifest, fileEntry, fixChecksum, header, type RawEntry, sealedEntries, sealedPack, sha256, tarBody, tarOf, zst } from './parts.js';

const sealed = (b: Base) => sealedEntries(b, { manifestBytes: b.manifestBytes });
const nameOf = (e: RawEntry) => e.header.toString('latin1', 0, 100).replace(/\0.*$/s, '');

/** The good entries with `name` dropped. */
const without = (b: Base, name: string) => zst(tarOf(sealed(b).filter((e) => nameOf(e) !== name)));

/** The good entries with `extra` inserted before the entry at `index`. */
const inserted = (b: Base, index: number, ...extra: RawEntry[]) => {
  const list = sealed(b);
  list.splice(index, 0, ...extra);
  return zst(tarOf(list));
};

/** The good entries in the order given by `names`. */
const reordered = (b: Base, names: readonly string[]) => {
  const list = sealed(b);
  return zst(tarOf(names.map((n) => list.find((e) => nameOf(e) === n)!)));
};

/** A header of some non-file type, with no data, placed where content.sqlite would be. */
const special = (b: Base, path: string, fields: Parameters<typeof header>[3]) => inserted(b, 1, { header: header(path, 0, b.mtime, fields), data: Buffer.alloc(0) });

/**
 * The good entries up to `index`, then a header claiming `size` bytes for `path` and nothing more:
 * a reader must refuse the size before reading any data, so the missing bytes never matter.
 */
const claims = (b: Base, index: number, path: string, size: number) => {
  const head = header(path, size, b.mtime);
  return zst(Buffer.concat([tarBody(sealed(b).slice(0, index)), head]));
};

const checksumsLines = (b: Base, content = b.content) => [`${sha256(b.manifestBytes)}  ${ENTRY.manifest}`, `${sha256(content)}  ${ENTRY.content}`];
const withChecksums = (b: Base, text: string) => sealedPack(b, { manifestBytes: b.manifestBytes, checksums: Buffer.from(text, 'utf8') });

export const entryCases: readonly Case[] = [
  badCase('entry-manifest-missing', 'IQP_E_PACK_ENTRY_MISSING', 'No manifest.json; the other three entries are intact.', (b) => without(b, ENTRY.manifest)),
  badCase('entry-content-missing', 'IQP_E_PACK_ENTRY_MISSING', 'No content.sqlite; the other three entries are intact.', (b) => without(b, ENTRY.content)),
  badCase('entry-checksums-missing', 'IQP_E_PACK_ENTRY_MISSING', 'No checksums.sha256; the other three entries are intact.', (b) => without(b, ENTRY.checksums)),
  badCase('entry-manifest-twice', 'IQP_E_PACK_ENTRY_DUPLICATE', 'manifest.json appears twice in a row.', (b) => inserted(b, 1, sealed(b)[0]!)),
  badCase('entry-signature-twice', 'IQP_E_PACK_ENTRY_DUPLICATE', 'manifest.json.minisig appears twice at the end.', (b) => inserted(b, 4, sealed(b)[3]!)),
  badCase('entry-extra-file', 'IQP_E_PACK_ENTRY_UNEXPECTED', 'An extra README.md after the signature.', (b) => inserted(b, 4, fileEntry('README.md', Buffer.from('hello\n'), b.mtime))),
  badCase('entry-dot-slash-name', 'IQP_E_PACK_ENTRY_UNEXPECTED', 'The manifest is stored as ./manifest.json; format v1 names are exact.', (b) => {
    const list = sealed(b);
    list[0] = fileEntry(`./${ENTRY.manifest}`, b.manifestBytes, b.mtime);
    return zst(tarOf(list));
  }),
  badCase('entry-ustar-prefix', 'IQP_E_PACK_ENTRY_UNEXPECTED', 'The manifest’s ustar prefix field says evil/, so its name is evil/manifest.json.', (b) => {
    const list = sealed(b);
    const h = Buffer.from(list[0]!.header);
    h.write('evil', 345, 'latin1');
    list[0] = { header: fixChecksum(h), data: b.manifestBytes };
    return zst(tarOf(list));
  }),
  badCase('entry-order-checksums-first', 'IQP_E_PACK_ENTRY_ORDER', 'checksums.sha256 comes before content.sqlite.', (b) =>
    reordered(b, [ENTRY.manifest, ENTRY.checksums, ENTRY.content, ENTRY.signature]),
  ),
  badCase('entry-order-content-first', 'IQP_E_PACK_ENTRY_ORDER', 'content.sqlite comes before manifest.json.', (b) =>
    reordered(b, [ENTRY.content, ENTRY.manifest, ENTRY.checksums, ENTRY.signature]),
  ),
  badCase('entry-path-absolute', 'IQP_E_PACK_ENTRY_PATH', 'An entry named /etc/cron.d/iqp (absolute path).', (b) => inserted(b, 1, fileEntry('/etc/cron.d/iqp', Buffer.from('* * * * * root true\n'), b.mtime))),
  badCase('entry-path-dotdot', 'IQP_E_PACK_ENTRY_PATH', 'An entry named ../content.sqlite (escapes the extraction folder).', (b) => {
    const list = sealed(b);
    list[1] = fileEntry(`../${ENTRY.content}`, b.content, b.mtime);
    return zst(tarOf(list));
  }),
  badCase('entry-path-backslash', 'IQP_E_PACK_ENTRY_PATH', 'An entry named ..\\..\\evil.dll (a Windows path escape).', (b) => inserted(b, 1, fileEntry('..\\..\\evil.dll', Buffer.from('MZ'), b.mtime))),
  badCase('entry-symlink', 'IQP_E_PACK_ENTRY_TYPE', 'content.sqlite is a symlink to /etc/passwd.', (b) => {
    const list = sealed(b);
    list[1] = { header: header(ENTRY.content, 0, b.mtime, { type: 'SymbolicLink', linkpath: '/etc/passwd' }), data: Buffer.alloc(0) };
    return zst(tarOf(list));
  }),
  badCase('entry-hardlink', 'IQP_E_PACK_ENTRY_TYPE', 'content.sqlite is a hard link to manifest.json.', (b) => {
    const list = sealed(b);
    list[1] = { header: header(ENTRY.content, 0, b.mtime, { type: 'Link', linkpath: ENTRY.manifest }), data: Buffer.alloc(0) };
    return zst(tarOf(list));
  }),
  badCase('entry-char-device', 'IQP_E_PACK_ENTRY_TYPE', 'A character device (1,3 = /dev/null) before content.sqlite.', (b) => special(b, 'null', { type: 'CharacterDevice', devmaj: 1, devmin: 3 })),
  badCase('entry-block-device', 'IQP_E_PACK_ENTRY_TYPE', 'A block device (8,0 = /dev/sda) before content.sqlite.', (b) => special(b, 'sda', { type: 'BlockDevice', devmaj: 8, devmin: 0 })),
  badCase('entry-directory', 'IQP_E_PACK_ENTRY_TYPE', 'A directory entry data/ before content.sqlite.', (b) => special(b, 'data/', { type: 'Directory', mode: 0o755 })),
  badCase('entry-fifo', 'IQP_E_PACK_ENTRY_TYPE', 'A FIFO before content.sqlite.', (b) => special(b, 'pipe', { type: 'FIFO' })),
  badCase('entry-pax-header', 'IQP_E_PACK_ENTRY_TYPE', 'A pax extended header (type x) renaming the next entry, before manifest.json.', (b) => {
    const pax = new Pax({ path: ENTRY.manifest, mtime: new Date(b.mtime * 1000) }).encode();
    return inserted(b, 0, { header: pax, data: Buffer.alloc(0) });
  }),
  badCase('entry-pax-global-header', 'IQP_E_PACK_ENTRY_TYPE', 'A global pax header (type g) before manifest.json.', (b) => {
    const pax = new Pax({ path: 'global', mtime: new Date(b.mtime * 1000), comment: 'iqp corpus' }, true).encode();
    return inserted(b, 0, { header: pax, data: Buffer.alloc(0) });
  }),
  badCase('entry-gnu-long-name', 'IQP_E_PACK_ENTRY_TYPE', 'A GNU long-name entry (type L) before manifest.json.', (b) => {
    const name = Buffer.from(`${'x/'.repeat(60)}${ENTRY.manifest}\0`);
    return inserted(b, 0, { header: header('././@LongLink', name.length, b.mtime, { type: 'NextFileHasLongPath' }), data: name });
  }),
  badCase('entry-manifest-size-over-limit', 'IQP_E_PACK_ENTRY_TOO_LARGE', 'The manifest header claims 1 MiB + 1 bytes (the limit is 1 MiB); no data follows.', (b) =>
    claims(b, 0, ENTRY.manifest, MiB + 1),
  ),
  badCase('entry-manifest-over-limit-stored', 'IQP_E_PACK_ENTRY_TOO_LARGE', 'A real manifest.json padded with spaces to 1 MiB + 1 bytes (it compresses to almost nothing).', (b) => {
    const big = Buffer.concat([b.manifestBytes, Buffer.alloc(MiB + 1 - b.manifestBytes.length, 0x20)]);
    return sealedPack(b, { manifestBytes: big });
  }),
  badCase('entry-checksums-size-over-limit', 'IQP_E_PACK_ENTRY_TOO_LARGE', 'The checksums.sha256 header claims 4 KiB + 1 bytes; no data follows.', (b) =>
    claims(b, 2, ENTRY.checksums, 4 * KiB + 1),
  ),
  badCase('entry-signature-size-over-limit', 'IQP_E_PACK_ENTRY_TOO_LARGE', 'The signature header claims 8 KiB + 1 bytes; no data follows.', (b) =>
    claims(b, 3, ENTRY.signature, 8 * KiB + 1),
  ),
  badCase('entry-content-bomb-header', 'IQP_E_PACK_ENTRY_TOO_LARGE', 'content.sqlite’s header claims 17 GiB (base-256 size field), above the 16 GiB limit; no data follows.', (b) =>
    claims(b, 1, ENTRY.content, 17 * GiB),
  ),
  badCase('entry-content-shorter-than-manifest', 'IQP_E_PACK_SIZE_MISMATCH', 'content.sqlite lost its last page; the signed manifest still gives the full size.', (b) => {
    const content = b.content.subarray(0, b.content.length - 4096);
    return sealedPack(b, { manifestBytes: b.manifestBytes, content });
  }),
  badCase('entry-manifest-size-wrong', 'IQP_E_PACK_SIZE_MISMATCH', 'The (re-signed) manifest says content.sqlite is one page larger than it is.', (b) =>
    sealedPack(b, { manifestBytes: editedManifest(b, (m) => ((m['files'] as { size_bytes: number }[])[0]!.size_bytes += 4096)) }),
  ),
  badCase('entry-content-hash-mismatch', 'IQP_E_PACK_HASH_MISMATCH', 'One byte of content.sqlite changed; the signed manifest keeps the old SHA-256 (checksums.sha256 lists the new one).', (b) => {
    const content = Buffer.from(b.content);
    content[content.length - 1]! ^= 0x01;
    return sealedPack(b, { manifestBytes: b.manifestBytes, content });
  }),
  badCase('entry-manifest-hash-wrong', 'IQP_E_PACK_HASH_MISMATCH', 'The (re-signed) manifest gives a well-formed SHA-256 of other bytes for content.sqlite.', (b) =>
    sealedPack(b, { manifestBytes: editedManifest(b, (m) => ((m['files'] as { sha256: string }[])[0]!.sha256 = sha256(Buffer.from('other content')))) }),
  ),
  badCase('checksums-wrong-hash', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 gives a wrong SHA-256 for content.sqlite.', (b) => {
    const [m] = checksumsLines(b);
    return withChecksums(b, `${m}\n${'0'.repeat(64)}  ${ENTRY.content}\n`);
  }),
  badCase('checksums-reordered', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 lists content.sqlite before manifest.json.', (b) => withChecksums(b, `${checksumsLines(b).reverse().join('\n')}\n`)),
  badCase('checksums-binary-marker', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 uses sha256sum’s binary marker (hash *name).', (b) =>
    withChecksums(b, checksumsLines(b).map((l) => `${l.replace('  ', ' *')}\n`).join('')),
  ),
  badCase('checksums-crlf', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 has CRLF line endings.', (b) => withChecksums(b, checksumsLines(b).map((l) => `${l}\r\n`).join(''))),
  badCase('checksums-uppercase', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 writes the digests in upper case.', (b) => withChecksums(b, checksumsLines(b).map((l) => `${l.slice(0, 64).toUpperCase()}${l.slice(64)}\n`).join(''))),
  badCase('checksums-no-final-newline', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 lacks its final newline.', (b) => withChecksums(b, checksumsLines(b).join('\n'))),
  badCase('checksums-extra-line', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 lists a third file.', (b) => withChecksums(b, [...checksumsLines(b), `${sha256(Buffer.alloc(0))}  extra.txt`].map((l) => `${l}\n`).join(''))),
  badCase('checksums-empty', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 is an empty file.', (b) => withChecksums(b, '')),
  badCase('checksums-not-text', 'IQP_E_PACK_CHECKSUMS', 'checksums.sha256 holds 64 bytes of binary digest instead of text.', (b) =>
    sealedPack(b, { manifestBytes: b.manifestBytes, checksums: Buffer.from(sha256(b.manifestBytes) + sha256(b.content), 'hex') }),
  ),
];
