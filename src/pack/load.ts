/**
 * Loads a pack source into a fresh content.sqlite, deterministically: the same source gives the
 * same bytes. One transaction and prepared multi-row INSERTs for the rows, indexes built after the
 * load, then VACUUM INTO the final file with a fixed page size and a rollback journal (never WAL:
 * apps open the file as is).
 *
 * A big data file is loaded by several threads at once (load-parts.ts): the main thread loads
 * the first part, worker threads the others into databases of their own, and their rows are then
 * appended in file order. The result is the same database as one thread gives, byte for byte.
 */
import { rmSync } from 'node:fs';
import { IqpError } from '../errors.js';
import { SQLITE_PAGE_SIZE } from './format.js';
import { openContent } from './content.js';
import { checkForeignKeys } from './foreign-keys.js';
import { IQP_APPLICATION_ID, applySchema, loadTable, openScratch, PartUnsupported, tableShapes } from './load-table.js';
import { loadInParts, type PartPlan, planParts } from './load-parts.js';
import { checkRequirements } from './requirements.js';
import { DEFAULT_MAX_LINE_BYTES } from './rows.js';
import type { DataFile, PackSource } from './source.js';
import { defaultThreads } from './threads.js';

export interface LoadProgress {
  readonly table: string;
  readonly file: string;
  readonly rows: number;
  readonly totalRows: number;
}

export interface LoadResult {
  readonly rows: number;
  /** The whole load: schema, rows, indexes, checks and the final copy. */
  readonly seconds: number;
  /** Reading, parsing and inserting the rows, within `seconds`. */
  readonly rowsSeconds: number;
  /** Most threads that loaded one data file (1: every file in one piece). */
  readonly threads: number;
}

export interface LoadOptions {
  /** Threads for loading big data files in parts (default: one per core, see threads.ts). */
  readonly threads?: number;
  /** The longest line (and CSV record) a data file may have (default DEFAULT_MAX_LINE_BYTES, rows.ts). */
  readonly maxLineBytes?: number;
}

/**
 * Builds `outPath` (which must not exist) from the source. The rows go into a scratch database
 * beside it; `VACUUM INTO` then writes the compact, canonical copy to `outPath` in one pass
 * (a plain VACUUM rebuilds into a temporary database and copies every page back, three times the
 * work). The caller runs integrity_check on the result (iqp build does it while compressing).
 */
export async function loadSource(
  source: PackSource,
  outPath: string,
  onProgress: (p: LoadProgress) => void = () => {},
  options: LoadOptions = {},
): Promise<LoadResult> {
  const threads = options.threads ?? defaultThreads();
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  try {
    return await loadOnce(source, outPath, onProgress, threads, maxLineBytes);
  } catch (err) {
    if (!(err instanceof PartUnsupported)) throw err;
    return loadOnce(source, outPath, onProgress, 1, maxLineBytes);
  }
}

async function loadOnce(source: PackSource, outPath: string, onProgress: (p: LoadProgress) => void, threads: number, maxLineBytes: number): Promise<LoadResult> {
  const started = process.hrtime.bigint();
  let rowsSeconds = 0;
  const scratchPath = `${outPath}.loading`;
  const db = openScratch(scratchPath);
  let plans = new Map<DataFile, PartPlan>();
  let total = 0;
  let most = 1;
  try {
    const indexSql = applySchema(db, source.schemaSql);
    plans = await planParts(db, source, outPath, threads, maxLineBytes);
    // Part databases are attached before the transaction (SQLite allows no ATTACH inside one);
    // the workers create them, and this connection only reads them once they are done.
    for (const plan of plans.values()) for (const part of plan.parts) db.prepare('ATTACH ? AS ' + part.schema).run(part.path);
    db.exec('BEGIN');
    const rowsStarted = process.hrtime.bigint();
    for (const data of source.dataFiles) {
      const before = total;
      const onRow = (n: number): void => onProgress({ table: data.table, file: data.file, rows: n, totalRows: before + n });
      const plan = plans.get(data);
      if (plan) most = Math.max(most, plan.ranges.length);
      total += plan ? await loadInParts(db, source.schemaSql, plan, onRow, maxLineBytes) : await loadTable(db, data, onRow, { maxLineBytes });
    }
    rowsSeconds = Number(process.hrtime.bigint() - rowsStarted) / 1e9;
    for (const sql of indexSql) {
      try {
        db.exec(sql);
      } catch (err) {
        throw new IqpError('IQP_E_DATA_ROW', `Building an index failed: ${(err as Error).message} (${sql}).`, undefined, {
          hint: 'The rows do not fit the index (a UNIQUE index over duplicate values, say): fix those rows, or the index in schema.sql.',
        });
      }
    }
    db.exec('COMMIT');
    for (const plan of plans.values()) for (const part of plan.parts) db.exec(`DETACH ${part.schema}`);
    await checkForeignKeys(db, source.dataFiles, maxLineBytes);
    checkRequirements(source.authored.package_type, tableShapes(db));
    // The file format's pragmas are applied last and VACUUM INTO gives them to the copy (page
    // size and auto_vacuum pending here, application_id copied); they are checked on the copy
    // afterwards, whatever schema.sql did (it may not run PRAGMA, see schema-sql.ts).
    db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    db.pragma(`application_id = ${IQP_APPLICATION_ID}`);
    db.pragma('auto_vacuum = NONE');
    db.prepare('VACUUM INTO ?').run(outPath);
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
    rmSync(scratchPath, { force: true });
    for (const plan of plans.values()) for (const part of plan.parts) rmSync(part.path, { force: true });
  }
  checkFormat(outPath);
  return { rows: total, seconds: Number(process.hrtime.bigint() - started) / 1e9, rowsSeconds, threads: most };
}

/** The copy is a rollback-journal database with iqp's page size and application_id, or the build stops. */
function checkFormat(path: string): void {
  const db = openContent(path, 'The built content database');
  try {
    const pageSize = db.pragma('page_size', { simple: true });
    const appId = db.pragma('application_id', { simple: true });
    const journal = db.pragma('journal_mode', { simple: true });
    if (pageSize !== SQLITE_PAGE_SIZE || appId !== IQP_APPLICATION_ID) {
      throw new IqpError('IQP_E_SCHEMA_SQL', `schema.sql changes the database format (page_size ${String(pageSize)}, application_id ${String(appId)}); remove those pragmas.`);
    }
    if (journal !== 'delete') throw new IqpError('IQP_E_INTERNAL', `The built content database is in journal mode ${String(journal)}, not delete.`);
  } finally {
    db.close();
  }
}
