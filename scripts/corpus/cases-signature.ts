/**
 * manifest.json.minisig: missing, malformed, made by another key, altered, or valid but naming another
 * pack. Everything else in these packs is intact, so the signature check is what fails.
 */
import { ENTRY, packTrustedComment } from '../../src/pack/format.js';
import { type SecretKey, sign } from '../../src/pack/minisign.js';
import { type Case, badCase } from './case.js';
import { type Base, editedManifest, sealedPack, sha256 } from './parts.js';

const signed = (b: Base, signature: string, manifestBytes = b.manifestBytes) => sealedPack(b, { manifestBytes, signature: Buffer.from(signature, 'utf8') });
const goodComment = (b: Base, manifestBytes = b.manifestBytes) =>
  packTrustedComment(String(b.manifest['package_id']), String(b.manifest['version']), sha256(manifestBytes));
const signWith = (b: Base, key: SecretKey, comment = goodComment(b)) => sign(b.manifestBytes, key, comment);

/** The good signature with its four lines passed through `edit`. */
function editedSignature(b: Base, edit: (lines: string[]) => void): string {
  const lines = b.signature.toString('utf8').replace(/\n$/, '').split('\n');
  edit(lines);
  return `${lines.join('\n')}\n`;
}

/** Edits the decoded bytes of a base64 line (the signature blob or the global signature). */
function editBase64(line: string, edit: (bytes: Buffer) => void): string {
  const bytes = Buffer.from(line, 'base64');
  edit(bytes);
  return bytes.toString('base64');
}

export const signatureCases: readonly Case[] = [
  badCase('sig-unsigned', 'IQP_E_PACK_UNSIGNED', 'No manifest.json.minisig at all; everything else is intact.', (b) => sealedPack(b, { manifestBytes: b.manifestBytes, key: null })),
  badCase('sig-other-key', 'IQP_E_SIG_UNTRUSTED_KEY', 'A valid signature by fixtures/keys/other.key, which the verifier does not trust.', (b) => signed(b, signWith(b, b.keys.other))),
  badCase('sig-forged-key-id', 'IQP_E_SIG_INVALID', 'Signed by the other key, but carrying the trusted key’s key ID.', (b) => {
    const forged = signWith(b, { ...b.keys.other, keynum: b.keys.corpus.keynum });
    return signed(b, forged);
  }),
  badCase('sig-bytes-flipped', 'IQP_E_SIG_INVALID', 'One byte of the Ed25519 signature over the manifest is flipped.', (b) =>
    signed(b, editedSignature(b, (l) => (l[1] = editBase64(l[1]!, (x) => (x[40]! ^= 0x01))))),
  ),
  badCase('sig-global-signature-flipped', 'IQP_E_SIG_INVALID', 'One byte of the signature over the trusted comment is flipped.', (b) =>
    signed(b, editedSignature(b, (l) => (l[3] = editBase64(l[3]!, (x) => (x[10]! ^= 0x01))))),
  ),
  badCase('sig-trusted-comment-edited', 'IQP_E_SIG_INVALID', 'The trusted comment was edited to name version 9.9.9 without re-signing it.', (b) =>
    signed(b, editedSignature(b, (l) => (l[2] = l[2]!.replace(/version=\S+/, 'version=9.9.9')))),
  ),
  badCase('sig-stale-after-manifest-edit', 'IQP_E_SIG_INVALID', 'The manifest’s description was edited after signing (checksums.sha256 updated, signature not).', (b) =>
    signed(b, b.signature.toString('utf8'), editedManifest(b, (m) => (m['description'] = `${String(m['description'])} Now with more content.`))),
  ),
  badCase('sig-comment-other-version', 'IQP_E_SIG_COMMENT_MISMATCH', 'Validly signed, but the trusted comment names version 9.9.9.', (b) =>
    signed(b, signWith(b, b.keys.corpus, packTrustedComment(String(b.manifest['package_id']), '9.9.9', sha256(b.manifestBytes)))),
  ),
  badCase('sig-comment-other-package', 'IQP_E_SIG_COMMENT_MISMATCH', 'Validly signed, but the trusted comment names another package.', (b) =>
    signed(b, signWith(b, b.keys.corpus, packTrustedComment('example.other', String(b.manifest['version']), sha256(b.manifestBytes)))),
  ),
  badCase('sig-comment-other-manifest', 'IQP_E_SIG_COMMENT_MISMATCH', 'Validly signed, but the trusted comment gives the SHA-256 of another manifest.', (b) =>
    signed(b, signWith(b, b.keys.corpus, packTrustedComment(String(b.manifest['package_id']), String(b.manifest['version']), sha256(Buffer.from('another manifest'))))),
  ),
  badCase('sig-comment-minisign-default', 'IQP_E_SIG_COMMENT_MISMATCH', 'Validly signed with minisign’s default trusted comment (timestamp and file name) instead of iqp’s.', (b) =>
    signed(b, signWith(b, b.keys.corpus, `timestamp:1704067200\tfile:${ENTRY.manifest}\thashed`)),
  ),
  badCase('sig-malformed-three-lines', 'IQP_E_SIG_MALFORMED', 'The signature file lacks its last line (the trusted comment’s signature).', (b) => signed(b, editedSignature(b, (l) => l.pop()))),
  badCase('sig-malformed-base64', 'IQP_E_SIG_MALFORMED', 'The signature line is not base64.', (b) => signed(b, editedSignature(b, (l) => (l[1] = l[1]!.replace(/[A-Za-z]/g, '!'))))),
  badCase('sig-malformed-algorithm', 'IQP_E_SIG_MALFORMED', 'The signature blob names the unknown algorithm "XX".', (b) =>
    signed(b, editedSignature(b, (l) => (l[1] = editBase64(l[1]!, (x) => x.write('XX', 0, 'latin1'))))),
  ),
  badCase('sig-malformed-no-prefix', 'IQP_E_SIG_MALFORMED', 'The first line lacks the "untrusted comment: " prefix.', (b) => signed(b, editedSignature(b, (l) => (l[0] = l[0]!.replace('untrusted comment: ', ''))))),
  badCase('sig-empty', 'IQP_E_SIG_MALFORMED', 'manifest.json.minisig is an empty file.', (b) => signed(b, '')),
];
