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

/**
 * `value` with each `{"$env"}` reference replaced by what `put` gives for it, at any depth, arrays
 * included: the server's resolution and the CLI's placeholders walk the same places.
 */
function replaceEnvRefs(value: unknown, put: (ref: { $env: string }, key: string, pointer: string) => unknown, key = '', pointer = ''): unknown {
  if (isEnvRef(value)) return put(value, key, pointer);
  if (Array.isArray(value)) return value.map((x, i) => replaceEnvRefs(x, put, `${key}[${i}]`, `${pointer}/${i}`));
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceEnvRefs(v, put, key ? `${key}.${k}` : k, `${pointer}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`)]));
  }
  return value;
}

function resolveEnv(id: string, value: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  return replaceEnvRefs(value, (ref, key) => {
    const v = env[ref.$env];
    if (v === undefined) throw configError(id, key, `names the environment variable ${ref.$env}, which is not set.`);
    return v;
  }) as Record<string, unknown>;
}

/**
 * `value` with each `{"$env"}` reference replaced by a placeholder string (what the server will
 * put there: an environment variable's value is always a string), their ajv instance paths noted
 * in `refs` with the variable's name.
 */
function withPlaceholders(value: Record<string, unknown>, refs: Map<string, string>): Record<string, unknown> {
  return replaceEnvRefs(value, (ref, _key, pointer) => {
    refs.set(pointer, ref.$env);
    return `\${${ref.$env}}`;
  }) as Record<string, unknown>;
}

/**
 * Whether an error about a placeholder only says what the variable's value, unknown here, must
 * look like: the server judges those rules at start. Anything else (a type, a key the plugin does
 * not know, an enum of no strings) no environment value could satisfy.
 */
function judgedAtStart(e: ErrorObject, refs: ReadonlyMap<string, string>): boolean {
  if (!refs.has(e.instancePath)) return false;
  if (['pattern', 'minLength', 'maxLength', 'format'].includes(e.keyword)) return true;
  if (e.keyword === 'enum') return (e.params as { allowedValues: unknown[] }).allowedValues.some((v) => typeof v === 'string');
  if (e.keyword === 'const') return typeof (e.params as { allowedValue: unknown }).allowedValue === 'string';
  return false;
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

function describe(e: ErrorObject, schema: Readonly<Record<string, unknown>>, refs: ReadonlyMap<string, string>): string {
  if (e.keyword === 'required') return 'is required.';
  if (e.keyword === 'additionalProperties') return 'is not a setting this plugin knows.';
  const name = refs.get(e.instancePath);
  if (name !== undefined) return `takes its value from the environment variable ${name}, which is always a string, but ${e.message ?? 'is invalid'}.`;
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
 * Checks `raw` against the manifest's schema. `env: null` judges `{"$env"}` values without the
 * server's environment (what `iqp plugins` can do): as strings whose content is not known yet, so a
 * key that takes no string, or that the plugin does not know, is refused; only a rule about a
 * string's content (pattern, length, format, a string enum) waits for the start. `partial` lets the
 * config's own required keys be missing (an operator sets them one `--set` at a time), not the
 * fields an object setting requires.
 */
export function validateConfig(manifest: PluginManifest, raw: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv | null, options: { partial?: boolean } = {}): Record<string, unknown> {
  const copy = structuredClone(raw) as Record<string, unknown>;
  const refs = new Map<string, string>();
  const value = env ? resolveEnv(manifest.id, copy, env) : withPlaceholders(copy, refs);
  if (!manifest.configSchema) {
    const first = Object.keys(raw)[0];
    if (first !== undefined) throw configError(manifest.id, first, 'is not a setting: this plugin takes no config.');
    return value;
  }
  const ajv = createValidator();
  // Every error, so the ones only the start can judge can be set aside (ajv reads this option when compiling).
  ajv.opts.allErrors = refs.size > 0 || Boolean(options.partial);
  const validate = ajv.compile(manifest.configSchema);
  if (!validate(value)) {
    // Partial: only the config's own required keys may still be missing; an object set whole is judged whole.
    const e = validate.errors!.find((x) => !judgedAtStart(x, refs) && !(options.partial && x.keyword === 'required' && x.instancePath === ''));
    if (e) throw configError(manifest.id, keyOf(e), describe(e, manifest.configSchema, refs));
  }
  return value;
}

/** The validated, frozen config a started plugin reads. */
export function resolveConfig(manifest: PluginManifest, raw: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv): Readonly<Record<string, unknown>> {
  return deepFreeze(validateConfig(manifest, raw, env));
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
