/** Manifest parsing and validation against docs/schemas/manifest.schema.json. */
import { IqpError } from '../errors.js';
import { FORMAT_VERSION, type Manifest, serializeManifest } from './format.js';
// Only the parser: the whole semver package costs `iqp verify` about 15 ms of start-up.
import parseSemver from 'semver/functions/parse.js';
import validateSchema from './manifest-validator.generated.js';

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** Versions are identifiers people type and apps compare: 64 characters is plenty and bounds every store and log line. */
export const SEMVER_MAX_LENGTH = 64;

/**
 * The one check for every version and app version iqp accepts (build, upload, query parameters,
 * releases): SemVer 2.0 as written (no "v" prefix or spaces the library would clean up), and one
 * the semver library can parse, which it refuses when major, minor or patch is beyond
 * Number.MAX_SAFE_INTEGER. Anything this accepts can be compared with the library without throwing.
 */
export function isSemver(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > SEMVER_MAX_LENGTH) return false;
  const m = SEMVER.exec(value);
  if (!m || ![m[1], m[2], m[3]].every((part) => Number.isSafeInteger(Number(part)))) return false;
  return parseSemver(value) !== null;
}

/** A well-formed BCP 47 tag: Intl rejects malformed subtags; the pattern rejects private oddities Intl allows. */
export function isLanguageTag(value: unknown): value is string {
  if (typeof value !== 'string' || value.length < 2 || value.length > 35) return false;
  if (!/^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$/.test(value)) return false;
  try {
    return Intl.getCanonicalLocales(value).length === 1;
  } catch {
    return false;
  }
}

interface SchemaError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

/** The schema compiled ahead of time (scripts/manifest-validator.ts): no ajv when reading packs. */
const validator = validateSchema as unknown as ((value: unknown) => boolean) & { errors?: SchemaError[] | null };

function describe(err: SchemaError): string {
  const where = err.instancePath ? err.instancePath.slice(1).replaceAll('/', '.') : 'manifest';
  if (err.keyword === 'additionalProperties') return `${where}: unknown field "${String(err.params['additionalProperty'])}"`;
  if (err.keyword === 'required') return `${where}: missing field "${String(err.params['missingProperty'])}"`;
  return `${where} ${err.message ?? 'is invalid'}`;
}

/** The field checks shared by manifests and authored iqp.json files; `where` names the file. */
export function checkFieldValues(value: Record<string, unknown>, where: string): void {
  for (const field of ['version', 'min_app_version'] as const) {
    if (field in value && !isSemver(value[field])) {
      throw new IqpError('IQP_E_MANIFEST_SEMVER', `${where}: ${field} ${JSON.stringify(value[field])} is not valid semver (at most 64 characters).`, { field });
    }
  }
  if ('language_code' in value && !isLanguageTag(value['language_code'])) {
    throw new IqpError('IQP_E_MANIFEST_LANGUAGE', `${where}: language_code ${JSON.stringify(value['language_code'])} is not a BCP 47 tag.`, {
      field: 'language_code',
    });
  }
}

export function validateManifest(value: unknown, where = 'manifest.json'): Manifest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new IqpError('IQP_E_MANIFEST_SCHEMA', `${where} must be a JSON object.`);
  }
  const record = value as Record<string, unknown>;
  if (record['format'] !== FORMAT_VERSION) {
    if (typeof record['format'] === 'number') {
      throw new IqpError('IQP_E_MANIFEST_FORMAT', `${where}: format ${record['format']} is not supported (this iqp reads format ${FORMAT_VERSION}).`);
    }
    throw new IqpError('IQP_E_MANIFEST_SCHEMA', `${where}: "format" must be ${FORMAT_VERSION}.`);
  }
  checkFieldValues(record, where);
  if (!validator(value)) {
    const errors = validator.errors ?? [];
    throw new IqpError('IQP_E_MANIFEST_SCHEMA', `${where}: ${errors[0] ? describe(errors[0]) : 'does not match the schema'}.`, {
      errors: errors.map(describe),
    });
  }
  // The schema's pattern fixes the shape of created_at; it must also be a real date.
  if (Number.isNaN(Date.parse((value as Manifest).created_at))) {
    throw new IqpError('IQP_E_MANIFEST_SCHEMA', `${where}: created_at ${JSON.stringify((value as Manifest).created_at)} is not a valid date.`);
  }
  return value as Manifest;
}

/**
 * Parses manifest.json bytes. Format 1 requires the canonical serialisation (format.ts): one
 * byte sequence per manifest, so no two JSON parsers can read a signed manifest differently
 * (duplicate keys, a byte order mark, odd number forms are all rejected).
 */
export function parseManifest(bytes: Buffer): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes));
  } catch (err) {
    throw new IqpError('IQP_E_MANIFEST_JSON', `manifest.json is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  const manifest = validateManifest(value);
  if (!serializeManifest(manifest).equals(bytes)) {
    throw new IqpError('IQP_E_MANIFEST_SCHEMA', 'manifest.json is not in canonical form (key order, two-space indent, final newline; see docs/pack-format.md).');
  }
  return manifest;
}
