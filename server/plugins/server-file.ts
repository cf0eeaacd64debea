/**
 * `<data dir>/server.json`: which plugins the registry runs and their settings. Written by
 * `iqp plugins …`, read by `iqp server start` (changes apply at the next start). Validated on read
 * so a hand edit gone wrong is named by key, never half-applied; a missing file means no plugins.
 * Written atomically and 0600: a plugin's config may hold a secret when the operator did not use
 * {"$env": NAME}.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/atomic.js';
import { IqpError } from '../../src/errors.js';
import { withFileLock } from '../lock.js';
import { PLUGIN_ID } from './manifest.js';

export const SERVER_FILE = 'server.json';
/** Held while a command changes server.json (see changeServerFile). */
export const SERVER_FILE_LOCK = 'server.json.lock';
/**
 * How long a change waits for the others to finish. Each holds the lock for milliseconds on an idle
 * machine, but a provisioning script may start many at once on a busy one (measured: eight at once
 * beside a test suite took more than 10 s in all). Only a live iqp command can hold it (the system
 * releases a dead one's), so waiting long costs nothing but a hung command's time.
 */
const LOCK_WAIT_MS = 60_000;

export interface PluginEntry {
  readonly enabled: boolean;
  /** 'builtin', an absolute path to the plugin's directory, or an npm package name. */
  readonly source: string;
  /** A required plugin that fails stops the server from starting; any other is left out (503 on its routes). */
  readonly required: boolean;
  /** Overrides the manifest's startTimeoutMs. */
  readonly start_timeout_ms?: number;
  readonly config: Readonly<Record<string, unknown>>;
}

export interface ServerFile {
  readonly plugins: Readonly<Record<string, PluginEntry>>;
}

export function serverFilePath(dataDir: string): string {
  return join(dataDir, SERVER_FILE);
}

const bad = (path: string, key: string, message: string) => new IqpError('IQP_E_CONFIG', `${path}: "${key}" ${message}`, { file: path, key });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const ENTRY_KEYS = new Set(['enabled', 'source', 'required', 'start_timeout_ms', 'config']);

function parseEntry(path: string, id: string, raw: unknown): PluginEntry {
  const at = `plugins.${id}`;
  if (!PLUGIN_ID.test(id)) throw bad(path, at, 'is not a plugin id (lowercase letters, digits and dashes, starting with a letter, at most 32).');
  if (!isObject(raw)) throw bad(path, at, 'must be an object.');
  for (const key of Object.keys(raw)) if (!ENTRY_KEYS.has(key)) throw bad(path, `${at}.${key}`, 'is not a known setting (enabled, source, required, start_timeout_ms, config).');
  const { enabled = true, source, required = false, start_timeout_ms, config = {} } = raw;
  if (typeof enabled !== 'boolean') throw bad(path, `${at}.enabled`, 'must be true or false.');
  if (typeof required !== 'boolean') throw bad(path, `${at}.required`, 'must be true or false.');
  if (typeof source !== 'string' || source === '') throw bad(path, `${at}.source`, 'must be "builtin", an absolute path or an npm package name.');
  if (start_timeout_ms !== undefined && (!Number.isSafeInteger(start_timeout_ms) || (start_timeout_ms as number) < 1 || (start_timeout_ms as number) > 600_000)) {
    throw bad(path, `${at}.start_timeout_ms`, 'must be a whole number of milliseconds from 1 to 600000.');
  }
  if (!isObject(config)) throw bad(path, `${at}.config`, 'must be an object.');
  return { enabled, source, required, ...(start_timeout_ms === undefined ? {} : { start_timeout_ms: start_timeout_ms as number }), config };
}

/** The data directory's server.json, checked; `{ plugins: {} }` when there is none. */
export function readServerFile(dataDir: string): ServerFile {
  const path = serverFilePath(dataDir);
  if (!existsSync(path)) return { plugins: {} };
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new IqpError('IQP_E_CONFIG', `${path} is not valid JSON (${(err as Error).message}).`, { file: path });
  }
  if (!isObject(doc)) throw bad(path, '(top level)', 'must be an object.');
  for (const key of Object.keys(doc)) if (key !== 'plugins') throw bad(path, key, 'is not a known setting (plugins).');
  const plugins = doc['plugins'] ?? {};
  if (!isObject(plugins)) throw bad(path, 'plugins', 'must be an object of plugin id → settings.');
  const out: Record<string, PluginEntry> = {};
  for (const [id, raw] of Object.entries(plugins)) out[id] = parseEntry(path, id, raw);
  return { plugins: out };
}

/**
 * Reads server.json and lets `fn` write a changed one, holding server.json.lock throughout, so that
 * `iqp plugins` commands run at the same time each start from the others' changes instead of
 * silently writing over them. Waits up to 60 s for the others to finish
 * (IQP_E_SERVER_FILE_LOCKED after that).
 */
export function changeServerFile<T>(dataDir: string, fn: (file: ServerFile, write: (next: ServerFile) => void) => T): T {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = join(dataDir, SERVER_FILE_LOCK);
  const busy = () =>
    new IqpError('IQP_E_SERVER_FILE_LOCKED', `${serverFilePath(dataDir)} is being changed by another process: ${lock} stayed locked for ${LOCK_WAIT_MS / 1000} s.`, { file: serverFilePath(dataDir), lock });
  return withFileLock(lock, LOCK_WAIT_MS, busy, () => fn(readServerFile(dataDir), (next) => writeServerFile(dataDir, next)));
}

export function writeServerFile(dataDir: string, file: ServerFile): void {
  // `iqp plugins` refuses a directory without a registry; a registry set up by hand (tests, a
  // plugin's own tooling) may not have made the directory yet.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(serverFilePath(dataDir), `${JSON.stringify(file, null, 2)}\n`, 0o600);
}
