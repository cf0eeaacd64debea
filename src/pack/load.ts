/**
 * Loads a pack source into a fresh content.sqlite, deterministically: the same source gives the
 * same bytes. One transaction and prepared multi-row INSERTs for the rows, indexes built after the
 * load, then VACUUM INTO the final file with a fixed page size and a rollback journal (never WAL:
 * apps open the file as is).
 */
import Database from 'better-sqlite3';
import { rmSync } from 'node:fs';
import { IqpError } from '../errors.js';
import { SQLITE_PAGE_SIZE } from './format.js';
import { openContent, quoteIdent } from './content.js';
import { checkRequirements } from './requirements.js';
import { type Cell, type Row, readCsvBatches, readJsonlBatches } from './rows.js';
import type { DataFile, PackSource } from './source.js';

/** 'IQP1' in the SQLite header's application_id field, so tools can tell an iqp content database. */
export const IQP_APPLICATION_ID = 0x49515031;

export interface LoadProgress {
  readonly table: string;
  readonly file: string;
  readonly rows: number;
  readonly totalRows: number;
}

function applySchema(db: Database.Database, sql: string): string[] {
  try {
    db.exec(sql);
  } catch (err) {
    throw new IqpError('IQP_E_SCHEMA_SQL', `schema.sql: ${(err as Error).message}`);
  }
  // Indexes are dropped now and rebuilt after the load, in their original order: faster, and the
  // result does not depend on the order rows arrive in.
  const indexes = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid").all() as {
    name: string;
    sql: string;
  }[];
  for (const index of indexes) db.exec(`DROP INDEX ${quoteIdent(index.name)}`);
  return indexes.map((i) => i.sql);
}

function tableColumns(db: Database.Database, table: string): Set<string> | null {
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table);
  if (!exists) return null;
  return new Set((db.prepare(`PRAGMA table_xinfo(${quoteIdent(table)})`).all() as { name: string; hidden: number }[]).filter((c) => c.hidden === 0).map((c) => c.name));
}

function rowError(data: DataFile, line: number, message: string): IqpError {
  return new IqpError('IQP_E_DATA_ROW', `${data.file}:${line}: ${message}`, { file: data.file, line });
}

/** Inserts take the row's values as one array (bound as the anonymous parameters, in order). */
type Statement = Database.Statement<[readonly Cell[]]>;

/**
 * Rows per INSERT statement: one `VALUES (…), (…), …` statement for 64 rows costs far fewer calls
 * into SQLite than 64 single-row statements (1.5-2× the insert rate), and SQLite inserts the rows
 * of a VALUES list one after another, exactly as separate statements would, so the database is
 * byte for byte the same. Wide tables get fewer rows per statement, within SQLite's limit of
 * 32,766 parameters.
 */
const ROWS_PER_INSERT = 64;
const MAX_PARAMETERS = 32_766;

/** The statements that insert rows with one set of columns: one row, and `rows` rows at a time. */
interface Inserts {
  readonly single: Statement;
  readonly multi: Statement | null;
  readonly rows: number;
  readonly params: Cell[];
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function loadTable(db: Database.Database, data: DataFile, onRow: (n: number) => void): Promise<number> {
  const columns = tableColumns(db, data.table);
  if (!columns) {
    throw new IqpError('IQP_E_DATA_TABLE_UNKNOWN', `${data.file}: schema.sql creates no table named ${data.table}.`, { file: data.file });
  }
  // A failing multi-row statement is undone before its rows are retried one by one, except under
  // the FAIL conflict policy (ON CONFLICT FAIL, RAISE(FAIL) in a trigger), which keeps the rows
  // before the failure: such tables get one row per statement, so errors still name their row.
  const definitions = db
    .prepare("SELECT sql FROM sqlite_schema WHERE tbl_name = ? AND type IN ('table', 'trigger') AND sql IS NOT NULL")
    .pluck()
    .all(data.table) as string[];
  const rowsPerInsert = definitions.some((sql) => /\bFAIL\b/i.test(sql)) ? 1 : ROWS_PER_INSERT;
  const cache = new Map<string, Inserts>();
  const insertsFor = (row: Row): Inserts => {
    const key = row.columns.join('\0');
    let inserts = cache.get(key);
    if (!inserts) {
      for (const c of row.columns) {
        if (!columns.has(c)) throw rowError(data, row.line, `table ${data.table} has no column "${c}" (columns: ${[...columns].join(', ')})`);
      }
      const head = `INSERT INTO ${quoteIdent(data.table)} (${row.columns.map(quoteIdent).join(', ')}) VALUES `;
      const tuple = `(${row.columns.map(() => '?').join(', ')})`;
      const rows = Math.max(1, Math.min(rowsPerInsert, Math.floor(MAX_PARAMETERS / Math.max(1, row.columns.length))));
      inserts = {
        single: db.prepare<[readonly Cell[]]>(head + tuple),
        multi: rows > 1 ? db.prepare<[readonly Cell[]]>(head + Array<string>(rows).fill(tuple).join(', ')) : null,
        rows,
        params: new Array<Cell>(rows * row.columns.length),
      };
      cache.set(key, inserts);
    }
    return inserts;
  };
  const insertOne = (inserts: Inserts, row: Row): void => {
    try {
      // An array binds its elements as the anonymous parameters, as spreading them would.
      inserts.single.run(row.values);
    } catch (err) {
      throw rowError(data, row.line, (err as Error).message);
    }
  };
  // Rows waiting to be inserted together: consecutive rows with the same columns.
  let group: Row[] = [];
  let groupInserts: Inserts | null = null;
  let groupColumns: readonly string[] = [];
  const flush = (): void => {
    const inserts = groupInserts;
    if (!inserts || group.length === 0) return;
    if (inserts.multi && group.length === inserts.rows) {
      const { params } = inserts;
      let k = 0;
      for (const row of group) for (const v of row.values) params[k++] = v;
      try {
        inserts.multi.run(params);
        group = [];
        return;
      } catch {
        // A failed statement changes nothing: the rows go in one by one, so that the error names
        // the row that causes it (and the rows before it behave exactly as they would alone).
      }
    }
    for (const row of group) insertOne(inserts, row);
    group = [];
  };
  const batches = data.format === 'csv' ? readCsvBatches(data.path, data.file) : readJsonlBatches(data.path, data.file);
  let count = 0;
  for await (const batch of batches) {
    for (const row of batch) {
      // Rows nearly always have the columns of the row before (CSV rows share the header array),
      // so those are compared before any lookup.
      if (row.columns !== groupColumns && !sameColumns(row.columns, groupColumns)) {
        flush();
        groupInserts = insertsFor(row);
        groupColumns = row.columns;
      }
      group.push(row);
      if (group.length === groupInserts!.rows) flush();
      count += 1;
      if ((count & 0x3fff) === 0) onRow(count);
    }
  }
  flush();
  onRow(count);
  return count;
}

function checkForeignKeys(db: Database.Database): void {
  const violation = db.prepare('PRAGMA foreign_key_check').get() as { table: string; rowid: number | null; parent: string } | undefined;
  if (violation) {
    const row = violation.rowid === null ? 'A row' : `Row ${violation.rowid}`;
    throw new IqpError(
      'IQP_E_DATA_ROW',
      `${row} of table ${violation.table} refers to a missing row of ${violation.parent} (foreign key).`,
      { table: violation.table, rowid: violation.rowid },
    );
  }
}

function tableShapes(db: Database.Database): { name: string; columns: string[] }[] {
  const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[];
  return names.map((name) => ({ name, columns: [...(tableColumns(db, name) ?? [])] }));
}

export interface LoadResult {
  readonly rows: number;
  /** The whole load: schema, rows, indexes, checks and the final copy. */
  readonly seconds: number;
  /** Reading, parsing and inserting the rows, within `seconds`. */
  readonly rowsSeconds: number;
}

/**
 * Builds `outPath` (which must not exist) from the source. The rows go into a scratch database
 * beside it; `VACUUM INTO` then writes the compact, canonical copy to `outPath` in one pass
 * (a plain VACUUM rebuilds into a temporary database and copies every page back, three times the
 * work). The caller runs integrity_check on the result (iqp build does it while compressing).
 */
export async function loadSource(source: PackSource, outPath: string, onProgress: (p: LoadProgress) => void = () => {}): Promise<LoadResult> {
  const started = process.hrtime.bigint();
  let rowsSeconds = 0;
  const scratchPath = `${outPath}.loading`;
  const db = new Database(scratchPath);
  let total = 0;
  try {
    db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    db.pragma(`application_id = ${IQP_APPLICATION_ID}`);
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('foreign_keys = OFF');
    db.pragma('cache_size = -65536');
    const indexSql = applySchema(db, source.schemaSql);
    db.exec('BEGIN');
    const rowsStarted = process.hrtime.bigint();
    for (const data of source.dataFiles) {
      const before = total;
      total += await loadTable(db, data, (n) => onProgress({ table: data.table, file: data.file, rows: n, totalRows: before + n }));
    }
    rowsSeconds = Number(process.hrtime.bigint() - rowsStarted) / 1e9;
    for (const sql of indexSql) {
      try {
        db.exec(sql);
      } catch (err) {
        throw new IqpError('IQP_E_DATA_ROW', `Building an index failed: ${(err as Error).message} (${sql}).`);
      }
    }
    db.exec('COMMIT');
    checkForeignKeys(db);
    checkRequirements(source.authored.package_type, tableShapes(db));
    // schema.sql may set pragmas of its own; the file format's are applied last and VACUUM INTO
    // gives them to the copy (page size and auto_vacuum pending here, application_id copied);
    // they are checked on the copy afterwards.
    db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    db.pragma(`application_id = ${IQP_APPLICATION_ID}`);
    db.pragma('auto_vacuum = NONE');
    db.prepare('VACUUM INTO ?').run(outPath);
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
    rmSync(scratchPath, { force: true });
  }
  checkFormat(outPath);
  return { rows: total, seconds: Number(process.hrtime.bigint() - started) / 1e9, rowsSeconds };
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
