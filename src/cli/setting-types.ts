/**
 * The kinds of value a setting holds, each with the one parser every source goes through: a flag's
 * text, an IQP_* variable's text, or a config file's JSON value. A bad value names where it came
 * from: a flag is a usage error (IQP_E_USAGE), a variable or a file key a configuration error
 * (IQP_E_CONFIG), so the person knows which of the three to fix.
 */
import { isIP } from 'node:net';
import { delimiter, isAbsolute, resolve } from 'node:path';
import { IqpError } from '../errors.js';
import type { TrustProxy } from '../../server/config.js';

/** Where a raw value came from; `base` is what relative paths resolve against. */
export interface Source {
  readonly kind: 'flag' | 'env' | 'file';
  /** `--level`, `IQP_LEVEL` or `/path/iqp.config.json: "level"`. */
  readonly name: string;
  readonly base: string;
}

export interface SettingType<T> {
  /** How the README and --help name the kind of value. */
  readonly label: string;
  /** How an IQP_* list variable separates its items, if it is a list. */
  readonly separator?: string;
  parse(raw: unknown, from: Source): T;
  /** The value as --help and the README show a default. */
  show(value: T): string;
}

export function settingError(from: Source, message: string): IqpError {
  if (from.kind === 'flag') return new IqpError('IQP_E_USAGE', `${from.name} ${message}`);
  return new IqpError('IQP_E_CONFIG', `${from.name}: ${message}`);
}

const got = (raw: unknown): string => `(got ${JSON.stringify(raw) ?? String(raw)})`;

// Canonical decimal only: Number() would also read 0x2, 1e1, " 12", "-0", "" and "0b1".
const DECIMAL = /^(?:0|[1-9][0-9]{0,15})$/;

/** A whole number from min to max; text must be canonical decimal digits, JSON a safe integer. */
export function int(min: number, max: number, unit = ''): SettingType<number> {
  return {
    label: unit ? `${unit} (${min}–${max})` : `${min}–${max}`,
    parse(raw, from) {
      const n = typeof raw === 'string' ? (DECIMAL.test(raw) ? Number(raw) : Number.NaN) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw settingError(from, `must be a whole number in decimal digits ${got(raw)}.`);
      if (n < min || n > max) throw settingError(from, `must be from ${min} to ${max} ${got(raw)}.`);
      return n;
    },
    show: (n) => String(n),
  };
}

const UNITS: ReadonlyArray<readonly [number, string]> = [
  [1024 ** 4, 'TiB'],
  [1024 ** 3, 'GiB'],
  [1024 ** 2, 'MiB'],
  [1024, 'KiB'],
];

/** A size in bytes: an int whose defaults read as "8589934592 (8 GiB)". */
export function size(min: number, max: number): SettingType<number> {
  const base = int(min, max);
  return {
    ...base,
    label: 'bytes',
    show(n) {
      const unit = UNITS.find(([u]) => n >= u && n % u === 0);
      return unit ? `${n} (${n / unit[0]} ${unit[1]})` : String(n);
    },
  };
}

function nonEmpty(raw: unknown, from: Source, what: string): string {
  if (typeof raw !== 'string' || raw === '') throw settingError(from, `must be ${what} ${got(raw)}.`);
  return raw;
}

const absolute = (p: string, base: string): string => (isAbsolute(p) ? p : resolve(base, p));

export const path: SettingType<string> = {
  label: 'path',
  parse: (raw, from) => absolute(nonEmpty(raw, from, 'a path'), from.base),
  show: (p) => p,
};

/** Paths: a JSON array in the file, `:`-separated (`;` on Windows) in the environment, one per (repeated) flag. */
export const paths: SettingType<readonly string[]> = {
  label: 'paths',
  separator: delimiter,
  parse(raw, from) {
    const text = typeof raw === 'string' && from.kind !== 'file';
    const list = text ? (from.kind === 'env' ? raw.split(delimiter).filter(Boolean) : [raw]) : raw;
    if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || p === '')) throw settingError(from, 'must be a list of paths.');
    return (list as string[]).map((p) => absolute(p, from.base));
  },
  show: (list) => (list.length ? list.join(delimiter) : 'none'),
};

export const string: SettingType<string> = {
  label: 'text',
  parse: (raw, from) => nonEmpty(raw, from, 'a non-empty string'),
  show: (s) => s,
};

/** An http(s) URL without trailing slashes. */
export const url: SettingType<string> = {
  label: 'URL',
  parse(raw, from) {
    const text = nonEmpty(raw, from, 'an http(s) URL');
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw settingError(from, `must be an http(s) URL ${got(raw)}.`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw settingError(from, `must be an http(s) URL ${got(raw)}.`);
    return text.replace(/\/+$/, '');
  },
  show: (u) => u,
};

/** A URL with any password in it replaced by `***`, for anything a person or a log may read. */
export function maskPassword(text: string): string {
  try {
    const u = new URL(text);
    if (u.password === '') return text;
    u.password = '***';
    return u.href;
  } catch {
    return '(not a URL)';
  }
}

/**
 * A PostgreSQL connection URL (`postgres://user:password@host:5432/db`). It may hold a password,
 * so no message ever repeats it: errors name only what is wrong, and show() masks the password.
 */
export const postgresUrl: SettingType<string> = {
  label: 'postgres:// URL',
  parse(raw, from) {
    if (typeof raw !== 'string' || raw === '') throw settingError(from, 'must be a postgres:// URL (the value is not shown: it may hold a password).');
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw settingError(from, 'must be a postgres:// URL (the value is not shown: it may hold a password).');
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw settingError(from, `must be a postgres:// or postgresql:// URL, not ${parsed.protocol}// (the rest is not shown).`);
    return raw;
  },
  show: maskPassword,
};

/**
 * Web origins (`https://app.example`, `http://localhost:5173`), as browsers send them in `Origin`:
 * scheme, host and port only. `*` stands for any origin.
 */
export const origins: SettingType<readonly string[]> = {
  label: 'origins',
  separator: ',',
  parse(raw, from) {
    const list = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : raw;
    if (!Array.isArray(list)) throw settingError(from, 'must be a list of origins such as https://app.example, or *.');
    const out: string[] = [];
    for (const item of list) {
      if (item === '*') {
        out.push(item);
        continue;
      }
      let parsed: URL | null = null;
      try {
        parsed = typeof item === 'string' ? new URL(item) : null;
      } catch {
        parsed = null;
      }
      if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== item.replace(/\/+$/, '')) {
        throw settingError(from, `must be a list of origins (scheme://host[:port], no path), or *; ${JSON.stringify(item)} is not one.`);
      }
      out.push(parsed.origin);
    }
    return [...new Set(out)];
  },
  show: (list) => (list.length === 0 ? 'none' : list.join(', ')),
};

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** Names (lowercase letters, digits, dashes): a JSON array in the file, `,`-separated otherwise. */
export const names: SettingType<readonly string[]> = {
  label: 'names',
  separator: ',',
  parse(raw, from) {
    const list = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()).filter(Boolean) : raw;
    if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || !NAME.test(x))) {
      throw settingError(from, 'must be a list of names (lowercase letters, digits, dashes).');
    }
    return [...new Set(list as string[])];
  },
  show: (list) => list.join(', '),
};

/** A flag is on when given; IQP_* takes true/false/1/0, the file a JSON boolean. */
export const boolean: SettingType<boolean> = {
  label: 'true/false',
  parse(raw, from) {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw settingError(from, `must be true or false ${got(raw)}.`);
  },
  show: (b) => String(b),
};

export function oneOf<const V extends string>(values: readonly V[]): SettingType<V> {
  return {
    label: values.join('|'),
    parse(raw, from) {
      if (typeof raw !== 'string' || !values.includes(raw as V)) throw settingError(from, `must be one of ${values.join(', ')} ${got(raw)}.`);
      return raw as V;
    },
    show: (v) => v,
  };
}

/**
 * Which proxies the registry believes (see TrustProxy): false, a hop count, or addresses and CIDRs,
 * where `loopback`, `linklocal` and `uniquelocal` name Express's ranges. `true` (everyone) is
 * refused: any client could then choose the address and protocol the registry sees.
 */

const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function trustedAddress(item: string): boolean {
  if (NAMED_RANGES.has(item)) return true;
  const [ip, prefix, ...rest] = item.split('/');
  const family = isIP(ip ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return DECIMAL.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

export const trustProxy: SettingType<TrustProxy> = {
  label: 'false, hop count, or addresses/CIDRs',
  separator: ',',
  parse(raw, from) {
    if (raw === false || raw === 'false') return false;
    if (typeof raw === 'number' || (typeof raw === 'string' && DECIMAL.test(raw))) return int(1, 100).parse(raw, from);
    const list = typeof raw === 'string' ? raw.split(',').map((x) => x.trim()) : raw;
    if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || !trustedAddress(x))) {
      throw settingError(from, `must be false, a hop count, or a comma list of IP addresses, CIDRs, loopback, linklocal or uniquelocal ${got(raw)}.`);
    }
    return [...new Set(list as string[])];
  },
  show: (v) => (Array.isArray(v) ? v.join(',') : String(v)),
};
