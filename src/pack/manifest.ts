/** Manifest parsing and validation against docs/schemas/manifest.schema.json. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { IqpError } from '../errors.js';
import { SCHEMAS_DIR } from '../paths.js';
import { FORMAT_VERSION, type Manifest, serializeManifest } from './format.js';

const require = createRequire(import.meta.url);

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export function isSemver(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64 && SEMVER.test(value);
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

let validator: ValidateFunction | undefined;

function schemaValidator(): ValidateFunction {
  if (!validator) {
    // ajv is CommonJS; loading it lazily keeps commands that never read a manifest quick to start.
    const Ajv2020 = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;
    const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;
    const ajv = new Ajv2020({ allErrors: false, strict: true });
    addFormats(ajv, ['date-time']);
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, 'manifest.schema.json'), 'utf8')) as object;
    validator = ajv.compile(schema);
  }
  return validator;
}

function describe(err: ErrorObject): string {
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
  const validate = schemaValidator();
  if (!validate(value)) {
    const first = validate.errors?.[0];
    throw new IqpError('IQP_E_MANIFEST_SCHEMA', `${where}: ${first ? describe(first) : 'does not match the schema'}.`, {
      errors: (validate.errors ?? []).map(describe),
    });
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
