/**
 * manifest.json: encoding, JSON, format, schema and field values. Every manifest here is stored with
 * checksums.sha256 recomputed and a fresh signature over its exact bytes, so a reader that checked
 * hashes or the signature first would still reach the manifest problem.
 */
import { type Case, badCase } from './case.js';
import { type Base, editedManifest, sealedPack } from './parts.js';

type Json = Record<string, unknown>;
type Edit = (m: Json) => void;

const edited = (b: Base, edit: Edit) => sealedPack(b, { manifestBytes: editedManifest(b, edit) });
const raw = (b: Base, bytes: Buffer) => sealedPack(b, { manifestBytes: bytes });
const files = (m: Json) => m['files'] as Json[];
const tables = (m: Json) => m['tables'] as Json[];

/** Replaces a key's value in place, keeping the key order. */
const setField = (key: string, value: unknown): Edit => (m) => {
  m[key] = value;
};

const language = (name: string, value: unknown, why: string): Case =>
  badCase(`manifest-language-${name}`, 'IQP_E_MANIFEST_LANGUAGE', why, (b) => edited(b, setField('language_code', value)));

export const manifestCases: readonly Case[] = [
  badCase('manifest-not-json', 'IQP_E_MANIFEST_JSON', 'manifest.json is cut in the middle of the JSON text.', (b) => raw(b, b.manifestBytes.subarray(0, b.manifestBytes.length >> 1))),
  badCase('manifest-empty', 'IQP_E_MANIFEST_JSON', 'manifest.json is an empty file.', (b) => raw(b, Buffer.alloc(0))),
  badCase('manifest-not-utf8', 'IQP_E_MANIFEST_JSON', 'The name starts with a Latin-1 byte (0xE9, é) that is not valid UTF-8.', (b) => {
    const at = b.manifestBytes.indexOf('"name": "') + '"name": "'.length;
    return raw(b, Buffer.concat([b.manifestBytes.subarray(0, at), Buffer.from([0xe9]), b.manifestBytes.subarray(at)]));
  }),
  badCase('manifest-utf16', 'IQP_E_MANIFEST_JSON', 'The good manifest re-encoded as UTF-16LE with a byte order mark.', (b) =>
    raw(b, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(b.manifestBytes.toString('utf8'), 'utf16le')])),
  ),
  badCase('manifest-byte-order-mark', 'IQP_E_MANIFEST_JSON', 'The good manifest preceded by a UTF-8 byte order mark.', (b) => raw(b, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b.manifestBytes]))),
  badCase('manifest-duplicate-key', 'IQP_E_MANIFEST_SCHEMA', '"version" appears twice (1.0.0, then 2.0.0): parsers that keep the first and the last disagree.', (b) => {
    const text = b.manifestBytes.toString('utf8');
    const line = `  "version": ${JSON.stringify(b.manifest['version'])},\n`;
    if (!text.includes(line)) throw new Error('expected a version line in the good manifest');
    return raw(b, Buffer.from(text.replace(line, `${line}  "version": "2.0.0",\n`)));
  }),
  badCase('manifest-not-canonical', 'IQP_E_MANIFEST_SCHEMA', 'The good manifest’s values, serialised without indentation (format 1 requires the canonical form).', (b) =>
    raw(b, Buffer.from(`${JSON.stringify(b.manifest)}\n`)),
  ),
  badCase('manifest-array', 'IQP_E_MANIFEST_SCHEMA', 'manifest.json is a JSON array holding the good manifest.', (b) => raw(b, Buffer.from(`[${b.manifestBytes.toString('utf8').trim()}]\n`))),
  badCase('manifest-string', 'IQP_E_MANIFEST_SCHEMA', 'manifest.json is a JSON string.', (b) => raw(b, Buffer.from('"manifest"\n'))),
  badCase('manifest-format-missing', 'IQP_E_MANIFEST_SCHEMA', 'The manifest has no "format" field.', (b) => edited(b, (m) => delete m['format'])),
  badCase('manifest-format-string', 'IQP_E_MANIFEST_SCHEMA', '"format" is the string "1".', (b) => edited(b, setField('format', '1'))),
  badCase('manifest-format-2', 'IQP_E_MANIFEST_FORMAT', '"format": 2, a format this reader does not know.', (b) => edited(b, setField('format', 2))),
  badCase('manifest-missing-name', 'IQP_E_MANIFEST_SCHEMA', 'The required field "name" is missing.', (b) => edited(b, (m) => delete m['name'])),
  badCase('manifest-extra-field', 'IQP_E_MANIFEST_SCHEMA', 'An unknown top-level field "homepage".', (b) => edited(b, setField('homepage', 'https://example.org/'))),
  badCase('manifest-package-id-invalid', 'IQP_E_MANIFEST_SCHEMA', 'package_id has upper-case letters.', (b) => edited(b, setField('package_id', 'Example.Translation.EN'))),
  badCase('manifest-created-at-not-date', 'IQP_E_MANIFEST_SCHEMA', 'created_at is not an RFC 3339 date-time.', (b) => edited(b, setField('created_at', 'yesterday'))),
  badCase('manifest-row-count-string', 'IQP_E_MANIFEST_SCHEMA', 'tables[0].row_count is the string "3".', (b) => edited(b, (m) => (tables(m)[0]!['row_count'] = String(tables(m)[0]!['row_count'])))),
  badCase('manifest-sha256-uppercase', 'IQP_E_MANIFEST_SCHEMA', 'files[0].sha256 is upper-case hex (the schema wants lower case).', (b) =>
    edited(b, (m) => (files(m)[0]!['sha256'] = String(files(m)[0]!['sha256']).toUpperCase())),
  ),
  badCase('manifest-sha256-short', 'IQP_E_MANIFEST_SCHEMA', 'files[0].sha256 has 63 hex digits.', (b) => edited(b, (m) => (files(m)[0]!['sha256'] = String(files(m)[0]!['sha256']).slice(1)))),
  badCase('manifest-files-empty', 'IQP_E_MANIFEST_SCHEMA', 'files is an empty array.', (b) => edited(b, setField('files', []))),
  badCase('manifest-files-two', 'IQP_E_MANIFEST_SCHEMA', 'files lists content.sqlite twice.', (b) => edited(b, (m) => files(m).push({ ...files(m)[0] }))),
  badCase('manifest-files-other-path', 'IQP_E_MANIFEST_SCHEMA', 'files[0].path names data.sqlite instead of content.sqlite.', (b) => edited(b, (m) => (files(m)[0]!['path'] = 'data.sqlite'))),
  badCase('manifest-files-negative-size', 'IQP_E_MANIFEST_SCHEMA', 'files[0].size_bytes is negative.', (b) => edited(b, (m) => (files(m)[0]!['size_bytes'] = -1))),
  badCase('manifest-version-two-parts', 'IQP_E_MANIFEST_SEMVER', 'version is "1.0", not MAJOR.MINOR.PATCH.', (b) => edited(b, setField('version', '1.0'))),
  badCase('manifest-version-v-prefix', 'IQP_E_MANIFEST_SEMVER', 'version is "v1.0.0".', (b) => edited(b, setField('version', 'v1.0.0'))),
  badCase('manifest-version-leading-zero', 'IQP_E_MANIFEST_SEMVER', 'version is "1.01.0" (leading zero).', (b) => edited(b, setField('version', '1.01.0'))),
  badCase('manifest-min-app-version-range', 'IQP_E_MANIFEST_SEMVER', 'min_app_version is the range ">=1.0.0", not a version.', (b) => edited(b, setField('min_app_version', '>=1.0.0'))),
  badCase('manifest-min-app-version-word', 'IQP_E_MANIFEST_SEMVER', 'min_app_version is "latest".', (b) => edited(b, setField('min_app_version', 'latest'))),
  language('underscore', 'en_US', 'language_code "en_US" uses an underscore (POSIX locale), not a hyphen.'),
  language('one-letter', 'e', 'language_code "e" is one letter.'),
  language('empty', '', 'language_code is empty.'),
  language('digits', '123', 'language_code "123" starts with digits.'),
  language('dangling-singleton', 'en-US-x', 'language_code "en-US-x" ends with a private-use singleton and no subtag.'),
  language('duplicate-variant', 'de-1996-1996', 'language_code "de-1996-1996" repeats a variant subtag.'),
  language('number', 42, 'language_code is the number 42.'),
];
