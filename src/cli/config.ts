/**
 * Configuration with one precedence rule: flag > environment (IQP_*) > config file > default.
 * Every key is documented once, in the README's "Configuration" table; KEYS below is the list.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { IqpError } from '../errors.js';
import { DEFAULT_LIMITS, GiB, ZSTD_DEFAULT_LEVEL } from '../pack/format.js';
import { defaultThreads, THREADS_LIMIT } from '../pack/threads.js';
import { DEFAULT_MAX_COMPRESSION_RATIO } from '../../server/config.js';

export interface Config {
  /** Secret key `iqp build` signs with. */
  readonly key: string | null;
  /** Public keys `iqp verify` and `iqp pull` trust besides --pubkey. */
  readonly trustedKeys: readonly string[];
  /** zstd level for `iqp build`. */
  readonly level: number;
  /** Threads `iqp build` loads and compresses with. */
  readonly threads: number;
  /** Largest content.sqlite a reader accepts, in bytes. */
  readonly maxContentBytes: number;
  /** Registry base URL for publish, pull, deprecate, keys. */
  readonly registry: string | null;
  /** Bearer token for admin calls. Never printed. */
  readonly token: string | null;
  /** Registry server settings (`iqp server …`, `iqp token …`). */
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly maxUploadBytes: number;
  /** Most an upload may expand per compressed byte (`iqp server start`). */
  readonly maxCompressionRatio: number;
  readonly publicUrl: string | null;
  /** Release channels a registry offers (`iqp server start`). */
  readonly channels: readonly string[];
  /** Registry limits (`iqp server start`); null: the server's default (server/config.ts). */
  readonly jsonCacheBytes: number | null;
  readonly maxConcurrentUploads: number | null;
  readonly maxConnections: number | null;
  readonly headersTimeoutMs: number | null;
  readonly requestTimeoutMs: number | null;
  readonly uploadIdleTimeoutMs: number | null;
  /** Secret key `iqp release publish|resign` signs release manifests with. */
  readonly releaseKey: string | null;
  /** Release public keys `iqp pull --release` trusts. */
  readonly trustedReleaseKeys: readonly string[];
  /** Where `iqp pull --release` keeps the newest manifest it accepted per registry and channel. */
  readonly trustState: string;
  /** Days until a signed release manifest expires. */
  readonly releaseExpiryDays: number;
  /** The config file the values came from, if any. */
  readonly file: string | null;
}

type Kind = 'path' | 'paths' | 'int' | 'string' | 'url' | 'list';

/** config-file key → environment variable and kind. */
const KEYS = {
  key: { env: 'IQP_KEY', kind: 'path' },
  trusted_keys: { env: 'IQP_TRUSTED_KEYS', kind: 'paths' },
  level: { env: 'IQP_LEVEL', kind: 'int' },
  threads: { env: 'IQP_THREADS', kind: 'int' },
  max_content_bytes: { env: 'IQP_MAX_CONTENT_BYTES', kind: 'int' },
  registry: { env: 'IQP_REGISTRY', kind: 'url' },
  token: { env: 'IQP_TOKEN', kind: 'string' },
  data_dir: { env: 'IQP_DATA', kind: 'path' },
  host: { env: 'IQP_HOST', kind: 'string' },
  port: { env: 'IQP_PORT', kind: 'int' },
  max_upload_bytes: { env: 'IQP_MAX_UPLOAD_BYTES', kind: 'int' },
  max_compression_ratio: { env: 'IQP_MAX_COMPRESSION_RATIO', kind: 'int' },
  public_url: { env: 'IQP_PUBLIC_URL', kind: 'url' },
  channels: { env: 'IQP_CHANNELS', kind: 'list' },
  json_cache_bytes: { env: 'IQP_JSON_CACHE_BYTES', kind: 'int' },
  max_concurrent_uploads: { env: 'IQP_MAX_CONCURRENT_UPLOADS', kind: 'int' },
  max_connections: { env: 'IQP_MAX_CONNECTIONS', kind: 'int' },
  headers_timeout_ms: { env: 'IQP_HEADERS_TIMEOUT_MS', kind: 'int' },
  request_timeout_ms: { env: 'IQP_REQUEST_TIMEOUT_MS', kind: 'int' },
  upload_idle_timeout_ms: { env: 'IQP_UPLOAD_IDLE_TIMEOUT_MS', kind: 'int' },
  release_key: { env: 'IQP_RELEASE_KEY', kind: 'path' },
  trusted_release_keys: { env: 'IQP_TRUSTED_RELEASE_KEYS', kind: 'paths' },
  trust_state: { env: 'IQP_TRUST_STATE', kind: 'path' },
  release_expiry_days: { env: 'IQP_RELEASE_EXPIRY_DAYS', kind: 'int' },
} as const satisfies Record<string, { env: string; kind: Kind }>;

type Key = keyof typeof KEYS;
type Raw = Partial<Record<Key, unknown>>;

function configError(where: string, message: string): IqpError {
  return new IqpError('IQP_E_CONFIG', `${where}: ${message}`);
}

export function configFilePath(cwd: string, env: NodeJS.ProcessEnv, flag?: string): string | null {
  if (flag) return resolve(cwd, flag);
  if (env['IQP_CONFIG']) return resolve(cwd, env['IQP_CONFIG']);
  const local = join(cwd, 'iqp.config.json');
  if (existsSync(local)) return local;
  const xdg = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  const user = join(xdg, 'iqp', 'config.json');
  return existsSync(user) ? user : null;
}

function readFileConfig(path: string | null, explicit: boolean): Raw {
  if (!path) return {};
  if (!existsSync(path)) {
    if (explicit) throw new IqpError('IQP_E_FILE_NOT_FOUND', `Config file not found: ${path}`);
    return {};
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw configError(path, `invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw configError(path, 'must be a JSON object');
  for (const k of Object.keys(value)) {
    if (!(k in KEYS)) throw configError(path, `unknown key "${k}" (known: ${Object.keys(KEYS).join(', ')})`);
  }
  return value as Raw;
}

/** Normalises one value from a given source; paths resolve against `base` (cwd for env, the file's folder for the file). */
function normalise(key: Key, raw: unknown, where: string, base: string): unknown {
  const kind: Kind = KEYS[key].kind;
  const fromEnv = typeof raw === 'string' && where.startsWith('IQP_');
  switch (kind) {
    case 'path':
      if (typeof raw !== 'string' || raw === '') throw configError(where, 'must be a path');
      return isAbsolute(raw) ? raw : resolve(base, raw);
    case 'paths': {
      const list = fromEnv ? (raw as string).split(delimiter).filter(Boolean) : raw;
      if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || p === '')) throw configError(where, 'must be a list of paths');
      return (list as string[]).map((p) => (isAbsolute(p) ? p : resolve(base, p)));
    }
    case 'int': {
      const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw configError(where, `must be a whole number (got ${JSON.stringify(raw)})`);
      return n;
    }
    case 'url':
      return httpUrl(raw, where);
    case 'string':
      if (typeof raw !== 'string' || raw === '') throw configError(where, 'must be a non-empty string');
      return raw;
    case 'list': {
      const list = fromEnv ? (raw as string).split(',').map((x) => x.trim()).filter(Boolean) : raw;
      if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(x))) {
        throw configError(where, 'must be a list of names (lowercase letters, digits, dashes)');
      }
      return [...new Set(list as string[])];
    }
  }
}

/** An http(s) URL without trailing slashes; `where` names the flag, variable or key it came from. */
export function httpUrl(raw: unknown, where: string): string {
  if (typeof raw !== 'string') throw configError(where, 'must be a URL');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw configError(where, `must be an http(s) URL (got ${JSON.stringify(raw)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(where, 'must be an http(s) URL');
  return raw.replace(/\/+$/, '');
}

function inRange(name: string, n: number, min: number, max: number): number {
  if (n < min || n > max) throw new IqpError('IQP_E_CONFIG', `${name} must be from ${min} to ${max} (got ${n}).`);
  return n;
}

/** Ranges of the registry limits, shared with the `server start` flags. */
export const SERVER_LIMIT_RANGES = {
  json_cache_bytes: [0, 64 * GiB],
  max_concurrent_uploads: [1, 10_000],
  max_connections: [0, 1_000_000],
  headers_timeout_ms: [1, 86_400_000],
  request_timeout_ms: [1, 86_400_000],
  upload_idle_timeout_ms: [1, 86_400_000],
} as const satisfies Partial<Record<Key, readonly [number, number]>>;

export function loadConfig(cwd: string, env: NodeJS.ProcessEnv, configFlag?: string): Config {
  const file = configFilePath(cwd, env, configFlag);
  const fromFile = readFileConfig(file, Boolean(configFlag || env['IQP_CONFIG']));
  const get = <T>(key: Key): T | undefined => {
    const envName = KEYS[key].env;
    const envValue = env[envName];
    if (envValue !== undefined && envValue !== '') return normalise(key, envValue, envName, cwd) as T;
    if (fromFile[key] !== undefined) return normalise(key, fromFile[key], `${file}: "${key}"`, dirname(file!)) as T;
    return undefined;
  };
  const limit = (key: keyof typeof SERVER_LIMIT_RANGES): number | null => {
    const n = get<number>(key);
    const [min, max] = SERVER_LIMIT_RANGES[key];
    return n === undefined ? null : inRange(key, n, min, max);
  };
  return {
    key: get<string>('key') ?? null,
    trustedKeys: get<string[]>('trusted_keys') ?? [],
    level: inRange('level', get<number>('level') ?? ZSTD_DEFAULT_LEVEL, 1, 19),
    threads: inRange('threads', get<number>('threads') ?? defaultThreads(), 1, THREADS_LIMIT),
    maxContentBytes: inRange('max_content_bytes', get<number>('max_content_bytes') ?? DEFAULT_LIMITS.maxContentBytes, 1, 1024 * GiB),
    registry: get<string>('registry') ?? null,
    token: get<string>('token') ?? null,
    dataDir: get<string>('data_dir') ?? resolve(cwd, 'iqp-data'),
    host: get<string>('host') ?? '127.0.0.1',
    port: inRange('port', get<number>('port') ?? 8686, 0, 65535),
    maxUploadBytes: inRange('max_upload_bytes', get<number>('max_upload_bytes') ?? 8 * GiB, 1, 1024 * GiB),
    maxCompressionRatio: inRange('max_compression_ratio', get<number>('max_compression_ratio') ?? DEFAULT_MAX_COMPRESSION_RATIO, 2, 1_000_000),
    publicUrl: get<string>('public_url') ?? null,
    channels: get<string[]>('channels') ?? ['stable', 'beta', 'nightly'],
    jsonCacheBytes: limit('json_cache_bytes'),
    maxConcurrentUploads: limit('max_concurrent_uploads'),
    maxConnections: limit('max_connections'),
    headersTimeoutMs: limit('headers_timeout_ms'),
    requestTimeoutMs: limit('request_timeout_ms'),
    uploadIdleTimeoutMs: limit('upload_idle_timeout_ms'),
    releaseKey: get<string>('release_key') ?? null,
    trustedReleaseKeys: get<string[]>('trusted_release_keys') ?? [],
    trustState: get<string>('trust_state') ?? join(env['XDG_STATE_HOME'] || join(env['HOME'] || homedir(), '.local', 'state'), 'iqp', 'release-trust.json'),
    releaseExpiryDays: inRange('release_expiry_days', get<number>('release_expiry_days') ?? 30, 1, 3650),
    file,
  };
}
