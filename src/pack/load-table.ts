/**
 * Rows of one data file into one table of a scratch database: the schema applied, the table's
 * columns read back, and the file's rows inserted in prepared multi-row INSERTs (all of the file,
 * or one part of it for load-parts.ts). load.ts puts the tables together into a content database.
 */
import Database from 'better-sqlite3';
import { IqpError } from '../errors.js';
import { SQLITE_PAGE_SIZE } from './format.js';
import { quoteIdent } from './content.js';
import { shownValue } from './foreign-keys.js';
import { applySchemaSql } from './schema-sql.js';
import { type Cell, DEFAULT_MAX_LINE_BYTES, type FileRange, type Row } from './rows.js';
import { readCsvBatches } from './rows-csv.js';
import { readJsonlBatches } from './rows-jsonl.js';
import type { DataFile } from './source.js';

/** 'IQP1' in the SQLite header's application_id field, so tools can tell an iqp content database. */
export const IQP_APPLICATION_ID = 0x49515031;

export function applySchema(db: Database.Database, sql: string): string[] {
  applySchemaSql(db, sql);
  // Indexes are dropped now and rebuilt after the load, in their original order: faster, and the
  // result does not depend on the order rows arrive in.
  const indexes = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY rowid").all() as {
    name: string;
    sql: string;
  }[];
  for (const index of indexes) db.exec(`DROP INDEX ${quoteIdent(index.name)}`);
  return indexes.map((i) => i.sql);
}

interface ColumnInfo {
  readonly name: string;
  /** The declared type, as written. */
  readonly type: string;
  /** Position in the primary key (1-based), 0 if not in it. */
  readonly pk: number;
  /** 0: ordinary; 1: hidden (virtual tables); 2, 3: generated. */
  readonly hidden: number;
}

export function columnInfo(db: Database.Database, table: string): ColumnInfo[] {
  // main.: an unqualified table pragma would also read (and, in the transaction, lock) the
  // databases of parts that worker threads are still writing.
  return db.prepare(`PRAGMA main.table_xinfo(${quoteIdent(table)})`).all() as ColumnInfo[];
}

/** A table's STRICT and WITHOUT ROWID flags. */
function tableKind(db: Database.Database, table: string): { strict: boolean; withoutRowid: boolean } {
  const row = db.prepare(`PRAGMA main.table_list(${quoteIdent(table)})`).get() as { strict: number; wr: number } | undefined;
  return { strict: row?.strict === 1, withoutRowid: row?.wr === 1 };
}

/** The column that is the table's rowid (its INTEGER PRIMARY KEY), if it has one. */
export function rowidAlias(db: Database.Database, table: string): string | null {
  if (tableKind(db, table).withoutRowid) return null;
  const keys = columnInfo(db, table).filter((c) => c.pk > 0);
  return keys.length === 1 && keys[0]!.type.toUpperCase() === 'INTEGER' ? keys[0]!.name : null;
}

/** The columns rows can give (not generated ones), or null if there is no such table. */
function tableColumns(db: Database.Database, table: string): Set<string> | null {
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(table);
  if (!exists) return null;
  return new Set(columnInfo(db, table).filter((c) => c.hidden === 0).map((c) => c.name));
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
  /** Per column: it has INTEGER, REAL or NUMERIC affinity (see numericColumns). */
  readonly numeric: readonly boolean[];
}

/**
 * Columns whose affinity turns text that looks like a number into one (INTEGER, REAL, NUMERIC;
 * not TEXT, BLOB or a STRICT table's ANY), by SQLite's rules for declared types.
 */
function numericColumns(db: Database.Database, table: string): Set<string> {
  const { strict } = tableKind(db, table);
  const numeric = new Set<string>();
  for (const { name, type } of columnInfo(db, table)) {
    const t = type.toUpperCase();
    const isNumeric = strict
      ? t === 'INT' || t === 'INTEGER' || t === 'REAL'
      : t.includes('INT') || !(t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT') || t.includes('BLOB') || t === '');
    if (isNumeric) numeric.add(name);
  }
  return numeric;
}

/**
 * A decimal integer of at most 15 digits, written the one way (no sign but '-', no leading zero):
 * SQLite's numeric affinity stores such text as exactly this INTEGER (or REAL), so it is bound as
 * one. CSV fields are all text, and binding numbers skips converting the text twice (to UTF-8 for
 * SQLite, then to a number): 0.5 µs a row with two integer columns. The database is the same.
 */
const PLAIN_INTEGER = /^(?:0|-?[1-9][0-9]{0,14})$/;

/** The row's values as bound: text of a plain integer in a numeric column becomes the integer. */
function bindable(values: readonly Cell[], numeric: readonly boolean[], out: Cell[], at: number): void {
  for (let j = 0; j < values.length; j++) {
    const v = values[j]!;
    out[at + j] = numeric[j] && typeof v === 'string' && PLAIN_INTEGER.test(v) ? BigInt(v) : v;
  }
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface TableLoadOptions {
  /** Load only this part of the file. */
  readonly range?: FileRange;
  /** The CSV header, for a part that starts after it. */
  readonly header?: readonly string[];
  /**
   * The table's rowid alias (INTEGER PRIMARY KEY), for a part after the first: each row must give
   * it, since a rowid SQLite picks would depend on the rows of the parts before.
   */
  readonly rowidColumn?: string | null;
  /** Stops the load between batches. */
  readonly signal?: AbortSignal;
  /** The longest line (and CSV record) a data file may have (rows.ts). */
  readonly maxLineBytes?: number;
}

/** A part of a file could not be loaded on its own; the load starts again on one thread. */
export class PartUnsupported extends Error {}

export async function loadTable(db: Database.Database, data: DataFile, onRow: (n: number) => void, options: TableLoadOptions = {}): Promise<number> {
  const columns = tableColumns(db, data.table);
  if (!columns) {
    throw new IqpError('IQP_E_DATA_TABLE_UNKNOWN', `${data.file}: schema.sql creates no table named ${data.table}.`, { file: data.file });
  }
  const numeric = numericColumns(db, data.table);
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
        numeric: row.columns.map((c) => numeric.has(c)),
      };
      cache.set(key, inserts);
    }
    return inserts;
  };
  const alias = rowidAlias(db, data.table);
  const insertOne = (inserts: Inserts, row: Row): void => {
    try {
      // An array binds its elements as the anonymous parameters, as spreading them would.
      const values = new Array<Cell>(row.values.length);
      bindable(row.values, inserts.numeric, values, 0);
      inserts.single.run(values);
    } catch (err) {
      // SQLite says only "datatype mismatch" when a rowid would not be an integer.
      const at = alias === null ? -1 : row.columns.indexOf(alias);
      if ((err as { code?: string }).code === 'SQLITE_MISMATCH' && at >= 0) {
        throw new IqpError(
          'IQP_E_DATA_ROW',
          `${data.file}:${row.line}: column "${alias}" is the table's INTEGER PRIMARY KEY (its rowid) and takes only integers, not ${shownValue(row.values[at])}.`,
          { file: data.file, line: row.line, column_name: alias },
        );
      }
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
      for (const row of group) {
        bindable(row.values, inserts.numeric, params, k);
        k += row.values.length;
      }
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
  const { range, signal } = options;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // A CSV header naming a column the table lacks is reported at the header, not at the first row.
  const onHeader = (header: readonly string[], at: (i: number) => { line: number; column: number }): void => {
    const i = header.findIndex((c) => !columns.has(c));
    if (i < 0) return;
    const { line, column } = at(i);
    throw new IqpError(
      'IQP_E_DATA_ROW',
      `${data.file}:${line}:${column}: table ${data.table} has no column "${header[i]}" (columns: ${[...columns].join(', ')})`,
      { file: data.file, line, column },
      { hint: `Fix the CSV header: each name in it must be a column of ${data.table} in schema.sql.` },
    );
  };
  const batches =
    data.format === 'csv'
      ? readCsvBatches(data.path, data.file, range, options.header, { maxLineBytes, onHeader })
      : readJsonlBatches(data.path, data.file, range, { maxLineBytes });
  const rowidColumn = options.rowidColumn ?? null;
  let rowidAt = -1;
  let count = 0;
  for await (const batch of batches) {
    signal?.throwIfAborted();
    for (const row of batch) {
      // Rows nearly always have the columns of the row before (CSV rows share the header array),
      // so those are compared before any lookup.
      if (row.columns !== groupColumns && !sameColumns(row.columns, groupColumns)) {
        flush();
        groupInserts = insertsFor(row);
        groupColumns = row.columns;
        rowidAt = rowidColumn === null ? -1 : row.columns.indexOf(rowidColumn);
        if (rowidColumn !== null && rowidAt < 0) throw new PartUnsupported(`${data.file}: a row without ${rowidColumn}`);
      }
      if (rowidAt >= 0 && row.values[rowidAt] === null) throw new PartUnsupported(`${data.file}: a row without ${rowidColumn}`);
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

export function tableShapes(db: Database.Database): { name: string; columns: string[] }[] {
  const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[];
  return names.map((name) => ({ name, columns: [...(tableColumns(db, name) ?? [])] }));
}

/** The pragmas of every database rows are loaded into: the scratch database and each part's. */
export function openScratch(path: string): Database.Database {
  const db = new Database(path);
  db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
  db.pragma(`application_id = ${IQP_APPLICATION_ID}`);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('foreign_keys = OFF');
  db.pragma('cache_size = -65536');
  return db;
}
