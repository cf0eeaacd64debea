/** A pack source folder: iqp.json (authored manifest fields), schema.sql, data/<table>.jsonl|csv. */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { CATALOG, IqpError } from '../errors.js';
import { type AuthoredManifest, isValidPackageId, PACKAGE_TYPE_PATTERN } from './format.js';
import { findJsonSyntaxError, lineColumn } from './json-syntax.js';
import { checkFieldValues } from './manifest.js';
import { firstInvalidUtf8, NO_FOLLOW } from './rows.js';

export const SOURCE_FILE = 'iqp.json';
export const SCHEMA_FILE = 'schema.sql';
export const DATA_DIR = 'data';

export interface DataFile {
  readonly table: string;
  readonly path: string;
  /** Path relative to the source folder, for messages. */
  readonly file: string;
  readonly format: 'jsonl' | 'csv';
}

export interface PackSource {
  readonly dir: string;
  readonly authored: AuthoredManifest;
  readonly schemaSql: string;
  readonly dataFiles: readonly DataFile[];
}

const REQUIRED_STRINGS = ['package_id', 'package_type', 'version', 'language_code', 'name', 'description', 'min_app_version'] as const;
const OPTIONAL_STRINGS = ['license', 'attribution'] as const;

export function validateAuthored(value: unknown, where: string): AuthoredManifest {
  const fail = (message: string, field?: string): never => {
    throw new IqpError('IQP_E_SOURCE_CONFIG', `${where}: ${message}`, field ? { field } : undefined);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('must be a JSON object');
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(REQUIRED_STRINGS as readonly string[]).includes(key) && !(OPTIONAL_STRINGS as readonly string[]).includes(key)) {
      fail(`unknown field "${key}"`, key);
    }
  }
  for (const key of REQUIRED_STRINGS) {
    if (typeof record[key] !== 'string') fail(`"${key}" is required and must be a string`, key);
  }
  for (const key of OPTIONAL_STRINGS) {
    if (key in record && typeof record[key] !== 'string') fail(`"${key}" must be a string`, key);
  }
  const id = record['package_id'] as string;
  // Bad source data like every other field here (exit 1); IQP_E_INVALID_ID is for an id typed as an argument (exit 2).
  if (!isValidPackageId(id)) {
    throw new IqpError('IQP_E_SOURCE_CONFIG', `${where}: package_id ${JSON.stringify(id)} is not a valid package id.`, { field: 'package_id' }, { hint: CATALOG.IQP_E_INVALID_ID.hint });
  }
  if (!PACKAGE_TYPE_PATTERN.test(record['package_type'] as string)) fail('"package_type" must be lowercase letters, digits and dashes', 'package_type');
  if ((record['name'] as string).trim() === '') fail('"name" must not be empty', 'name');
  checkFieldValues(record, where);
  return record as unknown as AuthoredManifest;
}

/** iqp.json is a few fields; schema.sql a few statements. Bigger files are refused before reading. */
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_SCHEMA_BYTES = 16 * 1024 * 1024;

function symlinkError(dir: string, rel: string): IqpError {
  return new IqpError('IQP_E_SOURCE_SYMLINK', `${join(dir, rel)} is a symbolic link; a pack source holds its files itself (${rel} was not read).`, { file: rel });
}

/** `rel` in the source, if it is a regular file there (not a link to one). */
async function checkRegular(dir: string, rel: string, missing: string): Promise<number> {
  const info = await lstat(join(dir, rel)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new IqpError('IQP_E_SOURCE_MISSING', missing, { file: rel });
    throw err;
  });
  if (info.isSymbolicLink()) throw symlinkError(dir, rel);
  if (!info.isFile()) throw new IqpError('IQP_E_SOURCE_CONFIG', `${rel} is not a regular file.`, { file: rel });
  return info.size;
}

/** A required source file's bytes, refusing links and files over `max` bytes. */
async function readRequired(dir: string, rel: string, max: number, missing = `${join(dir, rel)} does not exist.`): Promise<Buffer> {
  const size = await checkRegular(dir, rel, missing);
  if (size > max) throw new IqpError('IQP_E_SOURCE_CONFIG', `${rel} is ${size} bytes; a pack source's ${rel} may be at most ${max}.`, { file: rel });
  return readFile(join(dir, rel), { flag: NO_FOLLOW }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw symlinkError(dir, rel);
    throw err;
  });
}

/** Strict UTF-8 (a byte order mark at the start is dropped): an invalid byte is an error at its line and column, never U+FFFD. */
function decodeUtf8(bytes: Buffer, rel: string, code: 'IQP_E_SOURCE_CONFIG' | 'IQP_E_SCHEMA_SQL'): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const lineStart = bytes.lastIndexOf(10, at - 1) + 1;
    let line = 1;
    for (let k = bytes.indexOf(10); k >= 0 && k < at; k = bytes.indexOf(10, k + 1)) line += 1;
    const column = at - lineStart + 1;
    throw new IqpError(code, `${rel}:${line}:${column}: the file is not valid UTF-8 here (save it as UTF-8).`, { file: rel, line, column });
  }
}

/** The authored manifest fields of the source in `dir` (iqp.json), for a build from data/ or from --content. */
export async function readAuthored(dir: string, missing?: string): Promise<AuthoredManifest> {
  const text = decodeUtf8(await readRequired(dir, SOURCE_FILE, MAX_CONFIG_BYTES, missing), SOURCE_FILE, 'IQP_E_SOURCE_CONFIG');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const found = findJsonSyntaxError(text) ?? { offset: text.length, reason: 'not valid JSON' };
    const { line, column } = lineColumn(text, found.offset);
    throw new IqpError('IQP_E_SOURCE_CONFIG', `${SOURCE_FILE}:${line}:${column}: invalid JSON: ${found.reason}.`, { file: SOURCE_FILE, line, column });
  }
  return validateAuthored(parsed, SOURCE_FILE);
}

export async function readSource(dir: string): Promise<PackSource> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new IqpError('IQP_E_FILE_NOT_FOUND', `Pack source folder not found: ${dir}`);
  const authored = await readAuthored(dir);
  const schemaSql = decodeUtf8(await readRequired(dir, SCHEMA_FILE, MAX_SCHEMA_BYTES), SCHEMA_FILE, 'IQP_E_SCHEMA_SQL');
  const dataDir = join(dir, DATA_DIR);
  const dataInfo = await lstat(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new IqpError('IQP_E_SOURCE_MISSING', `${dataDir} does not exist.`, { file: DATA_DIR });
    throw err;
  });
  if (dataInfo.isSymbolicLink()) throw symlinkError(dir, DATA_DIR);
  if (!dataInfo.isDirectory()) throw new IqpError('IQP_E_SOURCE_CONFIG', `${DATA_DIR} is not a folder.`, { file: DATA_DIR });
  const entries = await readdir(dataDir, { withFileTypes: true });
  const dataFiles: DataFile[] = [];
  const seen = new Map<string, string>();
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const { name } = entry;
    if (name.startsWith('.')) continue;
    const file = `${DATA_DIR}/${name}`;
    if (entry.isSymbolicLink()) throw symlinkError(dir, file);
    // A named pipe or device would block the build or never end; a folder holds no rows.
    if (!entry.isFile()) throw new IqpError('IQP_E_SOURCE_CONFIG', `${file} is not a regular file.`, { file }, { hint: `${DATA_DIR}/ holds only data files: move ${file} out of it.` });
    const ext = extname(name);
    if (ext !== '.jsonl' && ext !== '.csv') {
      throw new IqpError('IQP_E_SOURCE_CONFIG', `${file}: data files must be <table>.jsonl or <table>.csv.`, { file }, {
        hint: `Name each file in ${DATA_DIR}/ after the table it fills (${DATA_DIR}/<table>.jsonl or ${DATA_DIR}/<table>.csv), and keep other files elsewhere.`,
      });
    }
    const table = basename(name, ext);
    const other = seen.get(table);
    if (other) throw new IqpError('IQP_E_SOURCE_CONFIG', `Table ${table} has two data files: ${other} and ${file}.`, { file }, { hint: 'Keep one data file per table: merge the two, or remove one.' });
    seen.set(table, file);
    dataFiles.push({ table, path: join(dataDir, name), file, format: ext === '.csv' ? 'csv' : 'jsonl' });
  }
  return { dir, authored, schemaSql, dataFiles };
}
