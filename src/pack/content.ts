/** What a content database holds, as the manifest describes it: tables, columns and row counts. */
import Database from 'better-sqlite3';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
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

const INTEGRITY_SQL = 'PRAGMA integrity_check(20)';

/**
 * Page cache for integrity_check where memory is not at a premium (iqp build). The check revisits
 * pages while it walks each index against its table, so a database with big indexes is checked
 * 10-15 % faster than with a 1 MiB cache (4.4 s against 5.0-5.4 s for the 345 MB synthetic
 * benchmark database with a text index; no difference without indexes).
 */
export const LARGE_CHECK_CACHE_KIB = 64 * 1024;

function integrityProblems(what: string, problems: string[]): IqpError | null {
  if (problems.length === 1 && problems[0] === 'ok') return null;
  return new IqpError('IQP_E_CONTENT_INTEGRITY', `${what} fails integrity_check: ${problems.slice(0, 3).join('; ')}.`, { problems });
}

export function integrityCheck(db: Database.Database, what: string): void {
  const failed = integrityProblems(what, db.prepare(INTEGRITY_SQL).pluck().all() as string[]);
  if (failed) throw failed;
}

/** Databases at least this big are checked on a worker thread; smaller ones take less than starting one. */
const WORKER_CHECK_BYTES = 32 * 1024 * 1024;

/** The worker: CommonJS (eval), given better-sqlite3's resolved path, so it runs from sources and from dist alike. */
const INTEGRITY_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.path, { readonly: true, fileMustExist: true });
  db.pragma('cache_size = -' + workerData.cacheKiB);
  parentPort.postMessage({ problems: db.prepare(workerData.sql).pluck().all() });
} catch (err) {
  parentPort.postMessage({ error: { message: String(err && err.message), code: String((err && err.code) || '') } });
} finally {
  if (db) db.close();
}
`;

export interface PendingCheck {
  /** Settles when the check is done: rejects with IQP_E_CONTENT_INTEGRITY (or why the file cannot be read). */
  readonly result: Promise<void>;
  /** Stops a check whose answer is no longer needed. */
  cancel(): Promise<void>;
}

/**
 * Runs `PRAGMA integrity_check` on `path` alongside other work: on a worker thread for big
 * databases, so that iqp build can hash and compress the content at the same time and commit the
 * pack only once the check has passed.
 */
export function startIntegrityCheck(path: string, what: string, cacheKiB = LARGE_CHECK_CACHE_KIB): PendingCheck {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch (err) {
    return pending(Promise.reject(contentError(err, what)));
  }
  if (size < WORKER_CHECK_BYTES) {
    const result = (async () => {
      const db = openContent(path, what);
      try {
        db.pragma(`cache_size = -${cacheKiB}`);
        integrityCheck(db, what);
      } catch (err) {
        throw err instanceof IqpError ? err : contentError(err, what);
      } finally {
        db.close();
      }
    })();
    return pending(result);
  }
  // worker_threads is loaded only here: importing it costs every command (iqp verify, whose peak
  // memory is counted) about 2 MiB.
  const started = import('node:worker_threads').then(
    ({ Worker }) =>
      new Worker(INTEGRITY_WORKER, {
        eval: true,
        workerData: { path, cacheKiB, sql: INTEGRITY_SQL, module: createRequire(import.meta.url).resolve('better-sqlite3') },
      }),
  );
  const result = started.then(
    (worker) =>
      new Promise<void>((resolve, reject) => {
        worker.once('message', (m: { problems?: string[]; error?: { message: string; code: string } }) => {
          if (m.error) return reject(contentError(Object.assign(new Error(m.error.message), { code: m.error.code }), what));
          const failed = integrityProblems(what, m.problems ?? []);
          if (failed) reject(failed);
          else resolve();
        });
        worker.once('error', (err) => reject(contentError(err, what)));
        worker.once('exit', (code) => reject(new IqpError('IQP_E_INTERNAL', `The integrity check of ${what} stopped (exit code ${code}).`)));
      }),
  );
  return pending(result, async () => {
    await (await started.catch(() => null))?.terminate();
  });
}

function pending(result: Promise<void>, cancel: () => Promise<void> = async () => {}): PendingCheck {
  result.catch(() => {}); // whoever awaits `result` sees a failure; a cancelled check has no one
  return { result, cancel };
}

/** Opens a content database read-only; failures become the content error codes. */
export function openContent(path: string, what: string): Database.Database {
  try {
    return new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw contentError(err, what);
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
export function describeContent(path: string, options: { integrity: boolean; what?: string }): ManifestTable[] {
  const what = options.what ?? 'content.sqlite';
  const db = openContent(path, what);
  try {
    // A small page cache keeps verify's peak RSS under 64 MiB for any pack: 256 KiB costs about
    // 4 % of integrity_check's time against 1 MiB and saves 0.5 MiB (iqp build checks with
    // startIntegrityCheck and LARGE_CHECK_CACHE_KIB instead).
    db.pragma('cache_size = -256');
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
