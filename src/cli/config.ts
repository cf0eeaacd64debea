/**
 * Configuration with one precedence rule: flag > environment (IQP_*) > config file > default.
 * The settings, with their keys, variables, flags, types and defaults, are the table in settings.ts;
 * this file finds the config file and resolves every setting from its sources into `ctx.config`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Option } from 'commander';
import { IqpError } from '../errors.js';
import type { SettingType, Source } from './setting-types.js';
import { type Setting, type SettingName, SETTINGS } from './settings.js';

type Value<S> = S extends { readonly type: SettingType<infer T>; readonly default: infer D } ? T | (D extends null ? null : never) : never;

/** Every setting, parsed and typed, plus the config file the values came from (if any). */
export type Config = { readonly [K in SettingName]: Value<(typeof SETTINGS)[K]> } & { readonly file: string | null };

/** The flags a command was given, by commander attribute name, and the command's path ('server start'). */
export interface GivenFlags {
  readonly command: string;
  readonly values: Readonly<Record<string, unknown>>;
}

const ALL = Object.entries(SETTINGS) as ReadonlyArray<[SettingName, Setting]>;
const FILE_KEYS = new Map(ALL.flatMap(([name, s]) => (s.key ? [[s.key, name] as const] : [])));

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

function readFileConfig(path: string | null, explicit: boolean): Record<string, unknown> {
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
    if (!FILE_KEYS.has(k)) throw configError(path, `unknown key "${k}" (known: ${[...FILE_KEYS.keys()].join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** The long flag of a commander spec ('-p, --port <port>' → '--port'). */
export function longFlag(spec: string): string {
  return new Option(spec).long ?? spec;
}

/** Whether `command` takes the setting's flag. */
export function takesFlag(s: Setting, command: string): s is Setting & { flag: string } {
  return s.flag !== undefined && (s.commands ?? []).includes(command);
}

/**
 * Every setting from its sources. A value in the environment or the file is checked even when a
 * flag overrides it, so a broken config fails the same way whatever the command line says.
 */
export function loadConfig(cwd: string, env: NodeJS.ProcessEnv, configFlag?: string, flags?: GivenFlags): Config {
  const file = configFilePath(cwd, env, configFlag);
  const fromFile = readFileConfig(file, Boolean(configFlag || env['IQP_CONFIG']));
  const config: Record<string, unknown> = { file };
  for (const [name, s] of ALL) {
    const envValue = s.env === undefined ? undefined : env[s.env];
    let value: unknown;
    if (s.env !== undefined && envValue !== undefined && envValue !== '') value = s.type.parse(envValue, { kind: 'env', name: s.env, base: cwd });
    else if (s.key !== undefined && fromFile[s.key] !== undefined) value = s.type.parse(fromFile[s.key], { kind: 'file', name: `${file}: "${s.key}"`, base: dirname(file!) });
    else value = typeof s.default === 'function' ? (s.default as (e: NodeJS.ProcessEnv, c: string) => unknown)(env, cwd) : s.default;
    if (flags && takesFlag(s, flags.command)) {
      const raw = flags.values[new Option(s.flag).attributeName()];
      if (raw !== undefined) {
        const from: Source = { kind: 'flag', name: longFlag(s.flag), base: cwd };
        const given = s.type.parse(raw, from);
        value = s.adds ? [...(given as unknown[]), ...((value as unknown[] | null) ?? [])] : given;
      }
    }
    config[name] = value;
  }
  return config as Config;
}
