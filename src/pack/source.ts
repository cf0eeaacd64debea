/** A pack source folder: iqp.json (authored manifest fields), schema.sql, data/<table>.jsonl|csv. */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { IqpError } from '../errors.js';
import { type AuthoredManifest, isValidPackageId, PACKAGE_TYPE_PATTERN } from './format.js';
import { checkFieldValues } from './manifest.js';

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
  if (!isValidPackageId(id)) {
    throw new IqpError('IQP_E_INVALID_ID', `${where}: package_id ${JSON.stringify(id)} is not a valid package id.`, { field: 'package_id' });
  }
  if (!PACKAGE_TYPE_PATTERN.test(record['package_type'] as string)) fail('"package_type" must be lowercase letters, digits and dashes', 'package_type');
  if ((record['name'] as string).trim() === '') fail('"name" must not be empty', 'name');
  checkFieldValues(record, where);
  return record as unknown as AuthoredManifest;
}

async function readRequired(dir: string, name: string): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new IqpError('IQP_E_SOURCE_MISSING', `${join(dir, name)} does not exist.`, { file: name });
    }
    throw err;
  }
}

export async function readSource(dir: string): Promise<PackSource> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new IqpError('IQP_E_FILE_NOT_FOUND', `Pack source folder not found: ${dir}`);
  const rawConfig = await readRequired(dir, SOURCE_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(rawConfig);
  } catch (err) {
    throw new IqpError('IQP_E_SOURCE_CONFIG', `${SOURCE_FILE}: invalid JSON: ${(err as Error).message}`);
  }
  const authored = validateAuthored(parsed, SOURCE_FILE);
  const schemaSql = await readRequired(dir, SCHEMA_FILE);
  const dataDir = join(dir, DATA_DIR);
  const names = await readdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new IqpError('IQP_E_SOURCE_MISSING', `${dataDir} does not exist.`, { file: DATA_DIR });
    throw err;
  });
  const dataFiles: DataFile[] = [];
  const seen = new Map<string, string>();
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const ext = extname(name);
    if (ext !== '.jsonl' && ext !== '.csv') {
      throw new IqpError('IQP_E_SOURCE_CONFIG', `${DATA_DIR}/${name}: data files must be <table>.jsonl or <table>.csv.`, { file: `${DATA_DIR}/${name}` });
    }
    const table = basename(name, ext);
    const file = `${DATA_DIR}/${name}`;
    const other = seen.get(table);
    if (other) throw new IqpError('IQP_E_SOURCE_CONFIG', `Table ${table} has two data files: ${other} and ${file}.`, { file });
    seen.set(table, file);
    dataFiles.push({ table, path: join(dataDir, name), file, format: ext === '.csv' ? 'csv' : 'jsonl' });
  }
  return { dir, authored, schemaSql, dataFiles };
}
