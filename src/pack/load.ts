/**
 * Loads a pack source into a fresh content.sqlite, deterministically: the same source gives the
 * same bytes. One transaction and prepared statements for the rows, indexes built after the load,
 * then VACUUM with a fixed page size and a rollback journal (never WAL: apps open the file as is).
 */
import Database from 'better-sqlite3';
import { IqpError } from '../errors.js';
import { SQLITE_PAGE_SIZE } from './format.js';
import { integrityCheck, quoteIdent } from './content.js';
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

export interface LoadResult {
  readonly rows: number;
  readonly seconds: number;
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
  const statements = new Map<string, Statement>();
  const statementFor = (row: Row): Statement => {
    const key = row.columns.join('\0');
    let stmt = statements.get(key);
    if (!stmt) {
      for (const c of row.columns) {
        if (!columns.has(c)) throw rowError(data, row.line, `table ${data.table} has no column "${c}" (columns: ${[...columns].join(', ')})`);
      }
      const names = row.columns.map(quoteIdent).join(', ');
      const params = row.columns.map(() => '?').join(', ');
      stmt = db.prepare<[readonly Cell[]]>(`INSERT INTO ${quoteIdent(data.table)} (${names}) VALUES (${params})`);
      statements.set(key, stmt);
    }
    return stmt;
  };
  const batches = data.format === 'csv' ? readCsvBatches(data.path, data.file) : readJsonlBatches(data.path, data.file);
  let count = 0;
  // Rows nearly always have the columns of the row before (CSV rows share the header array), so
  // the last statement is tried before building a lookup key.
  let lastColumns: readonly string[] = [];
  let lastStmt: Statement | null = null;
  for await (const batch of batches) {
    for (const row of batch) {
      let stmt: Statement | null = lastStmt;
      if (row.columns !== lastColumns && !sameColumns(row.columns, lastColumns)) stmt = null;
      if (!stmt) {
        stmt = statementFor(row);
        lastStmt = stmt;
        lastColumns = row.columns;
      }
      try {
        // An array binds its elements as the anonymous parameters, as spreading them would.
        stmt.run(row.values);
      } catch (err) {
        throw rowError(data, row.line, (err as Error).message);
      }
      count += 1;
      if ((count & 0x3fff) === 0) onRow(count);
    }
  }
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

/** Builds `outPath` (which must not exist) from the source. */
export async function loadSource(source: PackSource, outPath: string, onProgress: (p: LoadProgress) => void = () => {}): Promise<LoadResult> {
  const started = process.hrtime.bigint();
  const db = new Database(outPath);
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
    for (const data of source.dataFiles) {
      const before = total;
      total += await loadTable(db, data, (n) => onProgress({ table: data.table, file: data.file, rows: n, totalRows: before + n }));
    }
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
    // schema.sql may set pragmas of its own; the file format's are applied last, VACUUM makes them
    // take effect, and they are checked afterwards.
    db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
    db.pragma(`application_id = ${IQP_APPLICATION_ID}`);
    db.pragma('auto_vacuum = NONE');
    db.pragma('journal_mode = DELETE');
    // VACUUM writes the rebuilt database back through the journal; with the journal off it does not
    // first copy every old page into it. The file is this build's alone and is thrown away if
    // anything fails, and DELETE and OFF are the same rollback-journal format in the file (only
    // WAL is recorded there, and the switch from it happens above), so the bytes do not change.
    db.pragma('journal_mode = OFF');
    db.exec('VACUUM');
    db.pragma('journal_mode = DELETE');
    integrityCheck(db, 'The built content database');
    const pageSize = db.pragma('page_size', { simple: true });
    const appId = db.pragma('application_id', { simple: true });
    if (pageSize !== SQLITE_PAGE_SIZE || appId !== IQP_APPLICATION_ID) {
      throw new IqpError('IQP_E_SCHEMA_SQL', `schema.sql changes the database format (page_size ${String(pageSize)}, application_id ${String(appId)}); remove those pragmas.`);
    }
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  }
  return { rows: total, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
