/**
 * A plugin's `iqp-plugin.json`, read and checked without running any of the plugin's code: `iqp
 * plugins list` shows plugins it never loads, and the server refuses a malformed plugin before it
 * imports it. The checks are strict on purpose (a loose shape check is what plugin hosts regret):
 * unknown fields, bad ranges and out-of-order migrations are errors naming the field.
 */
import { Ajv } from 'ajv';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import semver from 'semver';
import { IqpError } from '../../src/errors.js';
import { createValidator } from '../http/contract.js';
import { PLUGIN_API_VERSION, type PluginManifest } from './api.js';

export const MANIFEST_FILE = 'iqp-plugin.json';
export const PLUGIN_ID = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Ids no plugin may have: a plugin owns every schema object named `<id>_…` (migrations.ts), and
 * these are the prefixes of the core's own tables, indexes and triggers (`audit_log`,
 * `schema_migrations`, `plugin_rate_limits`…). A plugin named `audit` could otherwise drop the
 * audit log in a migration. test/plugins/reserved-ids.test.ts checks the list against a freshly
 * migrated registry, SQLite and PostgreSQL.
 */
export const RESERVED_PLUGIN_IDS: ReadonlySet<string> = new Set(['audit', 'channel', 'dataset', 'packs', 'plugin', 'publisher', 'registry', 'release', 'releases', 'schema', 'tokens']);
const MAX_MANIFEST_BYTES = 1024 * 1024;

/** The manifest as the host keeps it: the JSON plus the module it names, resolved. */
export interface LoadedManifest extends PluginManifest {
  readonly entry: string;
  /** The plugin's directory, real path. */
  readonly dir: string;
  /** `entry` resolved inside `dir`. */
  readonly entryPath: string;
}

const SCHEMA = {
  type: 'object',
  required: ['id', 'version', 'host', 'entry'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: PLUGIN_ID.source },
    version: { type: 'string', maxLength: 64 },
    host: { type: 'string', maxLength: 128 },
    entry: { type: 'string', minLength: 1, maxLength: 256 },
    description: { type: 'string', maxLength: 500 },
    requires: { type: 'object', propertyNames: { pattern: PLUGIN_ID.source }, additionalProperties: { type: 'string', maxLength: 128 } },
    provides: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}\\.v[0-9]{1,3}$' } },
    configSchema: { type: 'object' },
    migrations: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'sqlite'],
        additionalProperties: false,
        properties: { id: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$' }, sqlite: { type: 'string' }, postgres: { type: 'string' } },
      },
    },
    startTimeoutMs: { type: 'integer', minimum: 1, maximum: 600_000 },
  },
} as const;

const checkShape = new Ajv({ allErrors: false, strict: true }).compile(SCHEMA);

function invalid(where: string, field: string, message: string, code: 'IQP_E_PLUGIN_INVALID' | 'IQP_E_PLUGIN_HOST_UNSUPPORTED' = 'IQP_E_PLUGIN_INVALID'): IqpError {
  return new IqpError(code, `${where}: ${field} ${message}`, { file: where, field });
}

/** Checks a parsed manifest; `dir` is the plugin's directory (real path), `where` names the file in messages. */
export function checkManifest(doc: unknown, dir: string, where: string): LoadedManifest {
  if (!checkShape(doc)) {
    const e = checkShape.errors![0]!;
    const extra = e.keyword === 'additionalProperties' ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : '';
    const missing = e.keyword === 'required' ? `.${(e.params as { missingProperty: string }).missingProperty}` : '';
    const field = `manifest${e.instancePath.replace(/\//g, '.')}${extra}${missing}`;
    throw invalid(where, field, extra ? 'is not a known field.' : missing ? 'is required.' : `${e.message ?? 'is invalid'}.`);
  }
  const m = doc as unknown as PluginManifest & { entry: string };
  if (RESERVED_PLUGIN_IDS.has(m.id)) throw invalid(where, 'id', `${JSON.stringify(m.id)} is reserved: the registry's own tables are named ${m.id}_…, and a plugin owns the tables named after it.`);
  if (!semver.valid(m.version)) throw invalid(where, 'version', `${JSON.stringify(m.version)} is not a semver version.`);
  if (!semver.validRange(m.host)) throw invalid(where, 'host', `${JSON.stringify(m.host)} is not a semver range.`);
  if (!semver.satisfies(PLUGIN_API_VERSION, m.host)) {
    throw invalid(where, 'host', `is ${JSON.stringify(m.host)}, but this iqp's plugin API is ${PLUGIN_API_VERSION}.`, 'IQP_E_PLUGIN_HOST_UNSUPPORTED');
  }
  for (const [id, range] of Object.entries(m.requires ?? {})) {
    if (id === m.id) throw invalid(where, `requires.${id}`, 'names the plugin itself.');
    if (!semver.validRange(range)) throw invalid(where, `requires.${id}`, `${JSON.stringify(range)} is not a semver range.`);
  }
  if (m.configSchema) {
    if (m.configSchema['type'] !== 'object') throw invalid(where, 'configSchema', 'must be an object schema ("type": "object").');
    try {
      createValidator().compile(m.configSchema);
    } catch (err) {
      throw invalid(where, 'configSchema', `does not compile: ${(err as Error).message}`);
    }
  }
  const ids = (m.migrations ?? []).map((x) => x.id);
  for (let i = 1; i < ids.length; i++) {
    if (ids[i] === ids[i - 1]) throw invalid(where, `migrations[${i}].id`, `${JSON.stringify(ids[i])} appears twice.`);
    if (ids[i]! < ids[i - 1]!) throw invalid(where, `migrations[${i}].id`, `${JSON.stringify(ids[i])} sorts before ${JSON.stringify(ids[i - 1])}: migrations are listed in the order they run.`);
  }
  const entryPath = resolve(dir, m.entry);
  if (isAbsolute(m.entry) || !inside(dir, entryPath)) throw invalid(where, 'entry', `${JSON.stringify(m.entry)} is outside the plugin's directory.`);
  if (!existsSync(entryPath) || !statSync(entryPath).isFile()) throw invalid(where, 'entry', `${JSON.stringify(m.entry)} does not exist.`);
  // A symlink may not lead the import outside the directory either.
  if (!inside(dir, realpathSync(entryPath))) throw invalid(where, 'entry', `${JSON.stringify(m.entry)} links outside the plugin's directory.`);
  return { ...m, dir, entryPath };
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** Reads `<dir>/iqp-plugin.json` and checks it. Runs none of the plugin's code. */
export function readManifest(dir: string): LoadedManifest {
  const real = realpathSync(dir);
  const file = join(real, MANIFEST_FILE);
  if (!existsSync(file)) throw new IqpError('IQP_E_PLUGIN_INVALID', `${dir} has no ${MANIFEST_FILE}: it is not an iqp plugin.`, { dir });
  if (statSync(file).size > MAX_MANIFEST_BYTES) throw invalid(file, 'manifest', `is larger than ${MAX_MANIFEST_BYTES} bytes.`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalid(file, 'manifest', `is not valid JSON (${(err as Error).message}).`);
  }
  return checkManifest(doc, real, file);
}
