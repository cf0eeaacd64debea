/**
 * A plugin's config: the object in server.json, with `{"$env": "NAME"}` values taken from the
 * environment (so secrets need not sit in the file), validated against the manifest's configSchema
 * with its defaults applied, then deep-frozen. Properties the schema marks `"writeOnly": true` are
 * secrets: shown masked by `iqp plugins config`, never logged.
 */
import type { ErrorObject } from 'ajv';
import { IqpError } from '../../src/errors.js';
import { createValidator } from '../http/contract.js';
import type { PluginManifest } from './api.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isEnvRef(v: unknown): v is { $env: string } {
  return isObject(v) && Object.keys(v).length === 1 && typeof v['$env'] === 'string';
}

const configError = (id: string, key: string, message: string) => new IqpError('IQP_E_PLUGIN_CONFIG', `Plugin ${id}: config ${key} ${message}`, { plugin: id, key });

function resolveEnv(id: string, value: unknown, env: NodeJS.ProcessEnv, key: string): unknown {
  if (isEnvRef(value)) {
    const v = env[value.$env];
    if (v === undefined) throw configError(id, key, `names the environment variable ${value.$env}, which is not set.`);
    return v;
  }
  if (Array.isArray(value)) return value.map((x, i) => resolveEnv(id, x, env, `${key}[${i}]`));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveEnv(id, v, env, key ? `${key}.${k}` : k)]));
  return value;
}

function keyOf(e: ErrorObject): string {
  const path = e.instancePath.split('/').slice(1);
  if (e.keyword === 'required') path.push((e.params as { missingProperty: string }).missingProperty);
  if (e.keyword === 'additionalProperties') path.push((e.params as { additionalProperty: string }).additionalProperty);
  return path.join('.') || '(config)';
}

/** The schema at an ajv error's schemaPath (`#/properties/secret/pattern` → the `secret` property's schema). */
function schemaOf(root: Readonly<Record<string, unknown>>, e: ErrorObject): Record<string, unknown> | undefined {
  let at: unknown = root;
  for (const part of e.schemaPath.split('/').slice(1, -1)) at = isObject(at) ? at[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  return isObject(at) ? at : undefined;
}

function describe(e: ErrorObject, schema: Readonly<Record<string, unknown>>): string {
  if (e.keyword === 'required') return 'is required.';
  if (e.keyword === 'additionalProperties') return 'is not a setting this plugin knows.';
  // A pattern says little to an operator; the property's description says what is wanted (never the value: it may be a secret).
  const description = e.keyword === 'pattern' ? schemaOf(schema, e)?.['description'] : undefined;
  if (typeof description === 'string') return `is not in the expected form: ${description}.`;
  return `${e.message ?? 'is invalid'}.`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Checks `raw` against the manifest's schema. `env: null` leaves `{"$env"}` values unresolved and
 * judges only the rest (what `iqp plugins` can judge without the server's environment). `partial`
 * lets the config's own required keys be missing (an operator sets them one `--set` at a time),
 * not the fields an object setting requires.
 */
export function validateConfig(manifest: PluginManifest, raw: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv | null, options: { partial?: boolean } = {}): Record<string, unknown> {
  const copy = structuredClone(raw) as Record<string, unknown>;
  const deferred = new Set<string>();
  const value = env ? (resolveEnv(manifest.id, copy, env, '') as Record<string, unknown>) : withoutEnvRefs(copy, '', deferred);
  if (!manifest.configSchema) {
    const first = Object.keys(raw)[0];
    if (first !== undefined) throw configError(manifest.id, first, 'is not a setting: this plugin takes no config.');
    return value;
  }
  const ajv = createValidator();
  // Every error, so the ones about deferred {"$env"} values can be set aside (ajv reads this option when compiling).
  ajv.opts.allErrors = deferred.size > 0 || Boolean(options.partial);
  const validate = ajv.compile(manifest.configSchema);
  if (!validate(value)) {
    // Partial: only the config's own required keys may still be missing; an object set whole is judged whole.
    const e = validate.errors!.find((x) => !deferred.has(keyOf(x)) && !(options.partial && x.keyword === 'required' && x.instancePath === ''));
    if (e) throw configError(manifest.id, keyOf(e), describe(e, manifest.configSchema));
  }
  return value;
}

/** The validated, frozen config a started plugin reads. */
export function resolveConfig(manifest: PluginManifest, raw: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv): Readonly<Record<string, unknown>> {
  return deepFreeze(validateConfig(manifest, raw, env));
}

/** Drops `{"$env"}` values (noting their keys in `deferred`): only the server's environment can say what they will be. */
function withoutEnvRefs(value: Record<string, unknown>, prefix: string, deferred: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isEnvRef(v)) deferred.add(key);
    else out[k] = isObject(v) ? withoutEnvRefs(v, key, deferred) : v;
  }
  return out;
}

interface SchemaNode {
  readonly writeOnly?: boolean;
  readonly properties?: Record<string, SchemaNode>;
  readonly additionalProperties?: SchemaNode | boolean;
}

/**
 * The config as `iqp plugins config` prints it: writeOnly properties (secrets) given literally are
 * masked at any depth (`smtp.password` as well as `secret`); `{"$env"}` names are shown.
 */
export function maskSecrets(manifest: PluginManifest, config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return maskObject((manifest.configSchema ?? {}) as SchemaNode, config);
}

function maskObject(schema: SchemaNode, value: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue(schema.properties?.[k] ?? extra, v)]));
}

function maskValue(schema: SchemaNode | undefined, value: unknown): unknown {
  if (!schema || isEnvRef(value)) return value;
  if (schema.writeOnly) return '********';
  return isObject(value) ? maskObject(schema, value) : value;
}
