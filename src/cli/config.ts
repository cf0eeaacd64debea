/**
 * Configuration with one precedence rule: flag > environment (IQP_*) > config file > default.
 * Every key is documented once, in the README's "Configuration" table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { IqpError } from '../errors.js';
import { DEFAULT_LIMITS, GiB, ZSTD_DEFAULT_LEVEL } from '../pack/format.js';

export interface Config {
  /** Secret key `iqp build` signs with. */
  readonly key: string | null;
  /** Public keys `iqp verify` trusts besides --pubkey. */
  readonly trustedKeys: readonly string[];
  /** zstd level for `iqp build`. */
  readonly level: number;
  /** Largest content.sqlite a reader accepts, in bytes. */
  readonly maxContentBytes: number;
  /** Where the values came from, for `--json` diagnostics and error messages. */
  readonly file: string | null;
}

interface FileConfig {
  key?: string;
  trusted_keys?: string[];
  level?: number;
  max_content_bytes?: number;
}

const FILE_KEYS = ['key', 'trusted_keys', 'level', 'max_content_bytes'] as const;

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

function readFileConfig(path: string | null, explicit: boolean): FileConfig {
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
    if (!(FILE_KEYS as readonly string[]).includes(k)) throw configError(path, `unknown key "${k}" (known: ${FILE_KEYS.join(', ')})`);
  }
  const base = dirname(path);
  const rel = (p: unknown, k: string): string => {
    if (typeof p !== 'string' || p === '') throw configError(path, `"${k}" must be a path`);
    return isAbsolute(p) ? p : resolve(base, p);
  };
  const cfg = value as Record<string, unknown>;
  const out: FileConfig = {};
  if (cfg['key'] !== undefined) out.key = rel(cfg['key'], 'key');
  if (cfg['trusted_keys'] !== undefined) {
    if (!Array.isArray(cfg['trusted_keys'])) throw configError(path, '"trusted_keys" must be an array of paths');
    out.trusted_keys = cfg['trusted_keys'].map((p) => rel(p, 'trusted_keys'));
  }
  if (cfg['level'] !== undefined) out.level = cfg['level'] as number;
  if (cfg['max_content_bytes'] !== undefined) out.max_content_bytes = cfg['max_content_bytes'] as number;
  return out;
}

function intSetting(name: string, raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new IqpError('IQP_E_CONFIG', `${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)}).`);
  }
  return n;
}

export function loadConfig(cwd: string, env: NodeJS.ProcessEnv, configFlag?: string): Config {
  const file = configFilePath(cwd, env, configFlag);
  const fromFile = readFileConfig(file, Boolean(configFlag || env['IQP_CONFIG']));
  const envKeys = env['IQP_TRUSTED_KEYS'] ? env['IQP_TRUSTED_KEYS'].split(delimiter).filter(Boolean).map((p) => resolve(cwd, p)) : null;
  const level = env['IQP_LEVEL'] ?? fromFile.level ?? ZSTD_DEFAULT_LEVEL;
  const maxContent = env['IQP_MAX_CONTENT_BYTES'] ?? fromFile.max_content_bytes ?? DEFAULT_LIMITS.maxContentBytes;
  return {
    key: env['IQP_KEY'] ? resolve(cwd, env['IQP_KEY']) : (fromFile.key ?? null),
    trustedKeys: envKeys ?? fromFile.trusted_keys ?? [],
    level: intSetting('level (IQP_LEVEL)', level, 1, 19),
    maxContentBytes: intSetting('max_content_bytes (IQP_MAX_CONTENT_BYTES)', maxContent, 1, 1024 * GiB),
    file,
  };
}
