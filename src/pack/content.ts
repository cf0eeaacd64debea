/** What a content database holds, as the manifest describes it: tables, columns and row counts. */
import Database from 'better-sqlite3';
import { closeSync, openSync, readSync } from 'node:fs';
import { IqpError } from '../errors.js';
import type { ManifestTable } from './format.js';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function sqliteCode(err: unknown): string {
  return (err as { code?: unknown }).code?.toString() ?? '';
}

/** Maps SQLite's complaints about a file to the content error codes. */
export function contentError(err: unknown, what: string): IqpError {
  const code = sqliteCode(err);
  const reason = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CANTOPEN') return new IqpError('IQP_E_CONTENT_INVALID', `${what} is not a SQLite database (${reason}).`);
  if (code.startsWith('SQLITE_CORRUPT')) return new IqpError('IQP_E_CONTENT_INTEGRITY', `${what} is corrupt: ${reason}.`);
  return new IqpError('IQP_E_CONTENT_INVALID', `${what} cannot be read: ${reason}.`);
}

export function listTables(db: Database.Database): ManifestTable[] {
  const names = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
    .pluck()
    .all() as string[];
  return names.map((name) => {
    const columns = (db.prepare(`PRAGMA table_info(${quoteIdent(name)})`).all() as { name: string }[]).map((c) => c.name);
    const rowCount = db.prepare(`SELECT count(*) FROM ${quoteIdent(name)}`).pluck().get() as number;
    return { name, row_count: rowCount, columns };
  });
}

export function integrityCheck(db: Database.Database, what: string): void {
  const problems = db.prepare('PRAGMA integrity_check(20)').pluck().all() as string[];
  if (problems.length !== 1 || problems[0] !== 'ok') {
    throw new IqpError('IQP_E_CONTENT_INTEGRITY', `${what} fails integrity_check: ${problems.slice(0, 3).join('; ')}.`, { problems });
  }
}

/**
 * Bytes 18 and 19 of a SQLite header are the write and read format versions: 1 for a rollback
 * journal, 2 for WAL. A WAL database cannot be opened from read-only storage, and its content may
 * live in a -wal file that a pack does not carry.
 */
export function checkJournalMode(header: Buffer, what: string): void {
  if (header.length < 20 || header[18] !== 1 || header[19] !== 1) {
    const wal = header[18] === 2 || header[19] === 2;
    throw new IqpError(
      'IQP_E_CONTENT_INVALID',
      wal
        ? `${what} is in WAL mode; packs need a rollback-journal database (sqlite3 FILE 'PRAGMA journal_mode=DELETE').`
        : `${what} has file format versions ${header[18]}/${header[19]} in its header; packs need 1/1 (a rollback-journal database).`,
    );
  }
}

/** Opens a content database read-only and describes it; with `integrity`, runs PRAGMA integrity_check first. */
/** Page cache for integrity_check where memory is not at a premium (iqp build): half the time of 1 MiB. */
export const LARGE_CHECK_CACHE_KIB = 64 * 1024;

export function describeContent(path: string, options: { integrity: boolean; what?: string; cacheKiB?: number }): ManifestTable[] {
  const what = options.what ?? 'content.sqlite';
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw contentError(err, what);
  }
  try {
    // 1 MiB of page cache by default, which keeps verify's peak RSS under 64 MiB for any pack.
    // integrity_check revisits pages while it walks each index against its table, so a large
    // cache (LARGE_CHECK_CACHE_KIB) halves its time on big databases (2.8 s → 1.3 s on the 550 MiB
    // benchmark database): iqp build, where memory is not at a premium, uses that.
    db.pragma(`cache_size = -${options.cacheKiB ?? 1024}`);
    const fd = openSync(path, 'r');
    try {
      const header = Buffer.alloc(100);
      const n = readSync(fd, header, 0, 100, 0);
      // SQLite treats an empty file as an empty database; a pack's content must be a real one.
      if (n < 100 || !header.subarray(0, 16).equals(SQLITE_MAGIC)) throw new IqpError('IQP_E_CONTENT_INVALID', `${what} does not start with the SQLite header.`);
      checkJournalMode(header, what);
    } finally {
      closeSync(fd);
    }
    if (options.integrity) integrityCheck(db, what);
    return listTables(db);
  } catch (err) {
    if (err instanceof IqpError) throw err;
    throw contentError(err, what);
  } finally {
    db.close();
  }
}
