/**
 * content.sqlite itself. The manifest is updated to the stored bytes (size and SHA-256) and re-signed,
 * so every structural, hash and signature check passes and the SQLite checks are what fail.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { SQLITE_PAGE_SIZE } from '../../src/pack/format.js';
import { type Case, badCase } from './case.js';
import { type Base, editedManifest, pseudoRandom, sealedPack, sha256 } from './parts.js';

type Json = Record<string, unknown>;

/** A pack holding `content`, with a manifest that describes its size and hash (and `edit` applied). */
function withContent(b: Base, content: Buffer, edit: (m: Json) => void = () => {}): Buffer {
  const manifestBytes = editedManifest(b, (m) => {
    const file = (m['files'] as Json[])[0]!;
    file['size_bytes'] = content.length;
    file['sha256'] = sha256(content);
    edit(m);
  });
  return sealedPack(b, { manifestBytes, content });
}

/** Runs `work` on a scratch copy of the good content.sqlite and returns the file's bytes afterwards. */
function onCopy<T>(b: Base, work: (db: Database.Database) => T): { bytes: Buffer; result: T } {
  const dir = mkdtempSync(join(tmpdir(), 'iqp-corpus-'));
  try {
    const path = join(dir, 'content.sqlite');
    writeFileSync(path, b.content);
    const db = new Database(path);
    let result: T;
    try {
      result = work(db);
    } finally {
      db.close();
    }
    return { bytes: readFileSync(path), result };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pageOf = (bytes: Buffer, page: number) => bytes.subarray((page - 1) * SQLITE_PAGE_SIZE, page * SQLITE_PAGE_SIZE);

const tables = (m: Json) => m['tables'] as { name: string; row_count: number; columns: string[] }[];

export const contentCases: readonly Case[] = [
  badCase('content-not-sqlite', 'IQP_E_CONTENT_INVALID', 'content.sqlite is a text file.', (b) => withContent(b, Buffer.from('This is not a SQLite database.\n'.repeat(132)))),
  badCase('content-random-bytes', 'IQP_E_CONTENT_INVALID', 'content.sqlite is 1 KiB of (deterministic) random bytes.', (b) => withContent(b, pseudoRandom('content-random-bytes', 1024))),
  badCase('content-gzipped-db', 'IQP_E_CONTENT_INVALID', 'content.sqlite is the good database compressed with gzip.', (b) => withContent(b, gzipSync(b.content, { level: 9 }))),
  badCase('content-index-entry-corrupt', 'IQP_E_CONTENT_INTEGRITY', 'One byte of a key in an index b-tree page changed: the table and its index disagree (PRAGMA integrity_check).', (b) => {
    const { result: page } = onCopy(b, (db) => db.prepare("SELECT rootpage FROM sqlite_schema WHERE type = 'index' ORDER BY name LIMIT 1").pluck().get() as number);
    const bytes = Buffer.from(b.content);
    const indexPage = pageOf(bytes, page);
    const at = indexPage.indexOf('makkah');
    if (at < 0) throw new Error('expected "makkah" in the index page of the translation pack');
    indexPage[at + 5] = 'i'.charCodeAt(0);
    return withContent(b, bytes);
  }),
  badCase('content-btree-page-type', 'IQP_E_CONTENT_INTEGRITY', 'A table’s b-tree page has an invalid page type byte; the database header is intact.', (b) => {
    const { result: page } = onCopy(b, (db) => db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'translations'").pluck().get() as number);
    const bytes = Buffer.from(b.content);
    pageOf(bytes, page)[0] = 0x07;
    return withContent(b, bytes);
  }),
  badCase('content-missing-last-page', 'IQP_E_CONTENT_INTEGRITY', 'The database lost its last page; its header still counts it.', (b) => withContent(b, b.content.subarray(0, b.content.length - SQLITE_PAGE_SIZE))),
  badCase('content-extra-table', 'IQP_E_CONTENT_TABLES', 'The database has a table the manifest does not list.', (b) =>
    withContent(b, onCopy(b, (db) => db.exec('CREATE TABLE zz_extra (id INTEGER PRIMARY KEY)')).bytes),
  ),
  badCase('content-wal-mode', 'IQP_E_CONTENT_INVALID', 'The database header says WAL mode (bytes 18-19 = 2): apps cannot open it from read-only storage.', (b) => {
    const bytes = Buffer.from(b.content);
    bytes[18] = 2;
    bytes[19] = 2;
    return withContent(b, bytes);
  }),
  badCase('content-empty-db', 'IQP_E_CONTENT_INVALID', 'content.sqlite is an empty file, which SQLite would read as a database with no tables; a pack needs a real database (package_type is app-defined, so no template requirement fires first).', (b) =>
    withContent(b, Buffer.alloc(0), (m) => (m['package_type'] = 'custom')),
  ),
  badCase('content-row-count-wrong', 'IQP_E_CONTENT_TABLES', 'The manifest gives one row more for translations than the database holds.', (b) =>
    withContent(b, b.content, (m) => (tables(m).find((t) => t.name === 'translations')!.row_count += 1)),
  ),
  badCase('content-table-not-listed', 'IQP_E_CONTENT_TABLES', 'The manifest omits the footnotes table.', (b) => withContent(b, b.content, (m) => (m['tables'] = tables(m).filter((t) => t.name !== 'footnotes')))),
  badCase('content-column-renamed', 'IQP_E_CONTENT_TABLES', 'The manifest lists surahs.name_english, which the database does not have.', (b) =>
    withContent(b, b.content, (m) => {
      const cols = tables(m).find((t) => t.name === 'surahs')!.columns;
      cols[cols.indexOf('name_translated')] = 'name_english';
    }),
  ),
  badCase('content-tables-reordered', 'IQP_E_CONTENT_TABLES', 'The manifest lists the tables in reverse order (readers compare them by name order).', (b) =>
    withContent(b, b.content, (m) => tables(m).reverse()),
  ),
];
