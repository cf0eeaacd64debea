/**
 * Loads a pack source into a fresh content.sqlite, deterministically: the same source gives the
 * same bytes. One transaction and prepared multi-row INSERTs for the rows, indexes built after the
 * load, then VACUUM INTO the final file with a fixed page size and a rollback journal (never WAL:
 * apps open the file as is).
 *
 * A big data file is loaded by several threads at once (see loadInParts): the main thread loads
 * the first part, worker threads the others into databases of their own, and their rows are then
 * appended in file order. The result is the same database as one thread gives, byte for byte.
 */
import Database from 'better-sqlite3';
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { IqpError } from '../errors.js';
import { SQLITE_PAGE_SIZE } from './format.js';
import { openContent, quoteIdent } from './content.js';
import { checkForeignKeys, shownValue } from './foreign-keys.js';
import { checkRequirements } from './requirements.js';
import { applySchemaSql } from './schema-sql.js';
import { type Cell, DEFAULT_MAX_LINE_BYTES, type FileRange, NO_FOLLOW, type Row, readCsvBatches, readCsvHeader, readJsonlBatches, SplitInsideRecord } from './rows.js';
import type { DataFile, PackSource } from './source.js';
import { defaultThreads } from './threads.js';

/** 'IQP1' in the SQLite header's application_id field, so tools can tell an iqp content database. */
export const IQP_APPLICATION_ID = 0x49515031;

export interface LoadProgress {
  readonly table: string;
  readonly file: string;
  readonly rows: number;
  readonly totalRows: number;
}

function applySchema(db: Database.Database, sql: string): string[] {
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

function columnInfo(db: Database.Database, table: string): ColumnInfo[] {
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
function rowidAlias(db: Database.Database, table: string): string | null {
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
class PartUnsupported extends Error {}

async function loadTable(db: Database.Database, data: DataFile, onRow: (n: number) => void, options: TableLoadOptions = {}): Promise<number> {
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
    throw new IqpError('IQP_E_DATA_ROW', `${data.file}:${line}:${column}: table ${data.table} has no column "${header[i]}" (columns: ${[...columns].join(', ')})`, {
      file: data.file,
      line,
      column,
    });
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
  /** Most threads that loaded one data file (1: every file in one piece). */
  readonly threads: number;
}

export interface LoadOptions {
  /** Threads for loading big data files in parts (default: one per core, see threads.ts). */
  readonly threads?: number;
  /** The longest line (and CSV record) a data file may have (default DEFAULT_MAX_LINE_BYTES, rows.ts). */
  readonly maxLineBytes?: number;
}

/** The pragmas of every database rows are loaded into: the scratch database and each part's. */
function openScratch(path: string): Database.Database {
  const db = new Database(path);
  db.pragma(`page_size = ${SQLITE_PAGE_SIZE}`);
  db.pragma(`application_id = ${IQP_APPLICATION_ID}`);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('foreign_keys = OFF');
  db.pragma('cache_size = -65536');
  return db;
}

/**
 * Smallest part of a data file worth a thread of its own. A worker thread takes about 50 ms to
 * start (a V8 isolate, better-sqlite3, the readers), so the first part, loaded by the main thread
 * while the workers start, is MAIN_PART_EXTRA bytes longer than the others. Parts of a few MiB
 * gain nothing on two cores: both threads spend their time compiling and collecting garbage for
 * code that is still warming up (the 14 MB quran benchmark loads no faster in two parts), while a
 * 443 MB file loads 1.5× faster.
 */
const PART_MIN_BYTES = 16 * 1024 * 1024;
const MAIN_PART_EXTRA = 2 * 1024 * 1024;
/** SQLite attaches at most 10 databases; each part after the first is one. */
const MAX_PART_DATABASES = 8;

/** How a big table is loaded in parts: the first by the main thread, the rest by workers. */
interface PartPlan {
  readonly data: DataFile;
  readonly ranges: readonly FileRange[];
  readonly header: readonly string[] | null;
  readonly rowidColumn: string | null;
  /** Per part after the first: its database file and the name it is attached under. */
  readonly parts: readonly { readonly path: string; readonly schema: string }[];
}

/** The offset just after the first line break at or after `from`, if one comes within 1 MiB. */
function nextLineStart(path: string, from: number): number | null {
  const fd = openSync(path, NO_FOLLOW);
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    const n = readSync(fd, buf, 0, buf.length, from);
    const nl = buf.subarray(0, n).indexOf(10);
    return nl < 0 ? null : from + nl + 1;
  } finally {
    closeSync(fd);
  }
}

/** Byte ranges of `size` bytes for up to `threads` parts, cut after line breaks. */
function splitFile(path: string, size: number, threads: number): FileRange[] {
  const count = Math.min(threads, Math.floor((size - MAIN_PART_EXTRA) / PART_MIN_BYTES));
  const cuts: number[] = [];
  for (let k = 1; k < count; k++) {
    const cut = nextLineStart(path, Math.floor(MAIN_PART_EXTRA + ((size - MAIN_PART_EXTRA) * k) / count));
    if (cut === null || cut >= size) break;
    if (cut > (cuts.at(-1) ?? 0)) cuts.push(cut);
  }
  const bounds = [0, ...cuts, size];
  return bounds.slice(1).map((end, i) => ({ start: bounds[i]!, end, last: end === size }));
}

/**
 * Which tables are loaded in parts: those with a big data file whose rows can be loaded apart and
 * appended in order with the same result as one after another. Not: tables with triggers, with
 * a conflict policy (ON CONFLICT REPLACE etc., where a row's fate depends on the rows before it),
 * with generated columns, or with rows already (an FTS5 table's shadow tables hold some).
 */
async function planParts(db: Database.Database, source: PackSource, outPath: string, threads: number, maxLineBytes: number): Promise<Map<DataFile, PartPlan>> {
  const plans = new Map<DataFile, PartPlan>();
  if (threads < 2) return plans;
  let attached = 0;
  for (const data of source.dataFiles) {
    const size = statSync(data.path).size;
    if (size < MAIN_PART_EXTRA + 2 * PART_MIN_BYTES) continue;
    const table = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?").pluck().get(data.table) as string | undefined;
    if (table === undefined || /\bON\s+CONFLICT\b/i.test(table)) continue;
    if (db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?").get(data.table)) continue;
    const info = columnInfo(db, data.table);
    if (info.some((c) => c.hidden === 2 || c.hidden === 3)) continue;
    if (db.prepare(`SELECT 1 FROM ${quoteIdent(data.table)} LIMIT 1`).get()) continue;
    const rowidColumn = rowidAlias(db, data.table);
    let header: string[] | null = null;
    if (data.format === 'csv') {
      // A header the reader refuses is reported by the one-thread load, with its line and column.
      header = await readCsvHeader(data.path, data.file, { maxLineBytes }).catch(() => null);
      if (!header) continue;
    }
    const ranges = splitFile(data.path, size, Math.min(threads, MAX_PART_DATABASES - attached + 1));
    if (ranges.length < 2) continue;
    const parts = ranges.slice(1).map(() => {
      attached += 1;
      return { path: `${outPath}.loading-${attached}`, schema: `part${attached}` };
    });
    plans.set(data, { data, ranges, header, rowidColumn, parts });
  }
  return plans;
}

/** What a worker thread is given to load one part (load-worker.ts). */
export interface PartJob {
  readonly path: string;
  readonly schemaSql: string;
  readonly data: DataFile;
  readonly range: FileRange;
  readonly header: readonly string[] | null;
  readonly rowidColumn: string | null;
  readonly maxLineBytes: number;
}

/** Messages from a worker thread: progress, then done or failed. */
export type PartMessage = { readonly type: 'progress' | 'done'; readonly rows: number } | { readonly type: 'failed'; readonly reason: string };

/** Loads one part into its own database (in a worker thread). */
export async function loadPart(job: PartJob, onRow: (n: number) => void): Promise<number> {
  const db = openScratch(job.path);
  try {
    applySchema(db, job.schemaSql);
    db.exec('BEGIN');
    const rows = await loadTable(db, job.data, onRow, {
      range: job.range,
      ...(job.header ? { header: job.header } : {}),
      rowidColumn: job.rowidColumn,
      maxLineBytes: job.maxLineBytes,
    });
    db.exec('COMMIT');
    return rows;
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  }
}

/**
 * Loads a table in parts: workers load every part but the first into databases of their own while
 * the main thread loads the first, then the parts' rows are appended in file order with
 * `INSERT … SELECT` (SQLite copies the records without decoding them where it can). Rows of a part
 * get the rowids they would get one after another: rowid-alias tables must give the key in every
 * row of later parts, and other rowid tables get new rowids in the order of the part. A problem in
 * the first part is reported as it is: the rows before it are the same. Anything else (a bad row in
 * a later part, a key that appears in two parts, a CSV cut inside a quoted field) may not be the
 * first problem of the file, so the whole load starts again on one thread, which finds that one.
 */
async function loadInParts(db: Database.Database, schemaSql: string, plan: PartPlan, onRow: (n: number) => void, maxLineBytes: number): Promise<number> {
  const { Worker } = await import('node:worker_threads');
  const { data } = plan;
  const counts = plan.ranges.map(() => 0);
  const report = (): void => onRow(counts.reduce((a, b) => a + b, 0));
  const abort = new AbortController();
  const workers = plan.parts.map((part, i) => {
    const job: PartJob = { path: part.path, schemaSql, data, range: plan.ranges[i + 1]!, header: plan.header, rowidColumn: plan.rowidColumn, maxLineBytes };
    const worker = new Worker(new URL('./load-worker.js', import.meta.url), { workerData: job });
    const done = new Promise<number>((resolve, reject) => {
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        const err = new PartUnsupported(`${data.file}, part ${i + 2}: ${reason}`);
        abort.abort(err);
        reject(err);
      };
      worker.on('message', (m: PartMessage) => {
        if (m.type === 'failed') return fail(m.reason);
        counts[i + 1] = m.rows;
        report();
        if (m.type === 'done') {
          settled = true;
          resolve(m.rows);
        }
      });
      worker.once('error', (err) => fail(err.message));
      worker.once('exit', (code) => fail(`the thread stopped (exit code ${code})`));
    });
    // Awaited below; a failure while the main thread is still busy must not go unhandled.
    done.catch(() => {});
    return { worker, done };
  });
  try {
    counts[0] = await loadTable(
      db,
      data,
      (n) => {
        counts[0] = n;
        report();
      },
      { range: plan.ranges[0]!, signal: abort.signal, maxLineBytes },
    );
    await Promise.all(workers.map((w) => w.done));
    // The rows were checked against the table's CHECK constraints in their own databases.
    db.pragma('ignore_check_constraints = ON');
    try {
      for (const part of plan.parts) db.exec(`INSERT INTO main.${quoteIdent(data.table)} SELECT * FROM ${part.schema}.${quoteIdent(data.table)} NOT INDEXED`);
    } catch (err) {
      throw new PartUnsupported(`${data.file}: ${(err as Error).message}`);
    } finally {
      db.pragma('ignore_check_constraints = OFF');
    }
    return counts.reduce((a, b) => a + b, 0);
  } catch (err) {
    // A problem in the first part is the file's first and is reported as it is; the others
    // (PartUnsupported, also what aborts the first part) make the load start again on one thread.
    if (err instanceof SplitInsideRecord) throw new PartUnsupported(err.message);
    throw err;
  } finally {
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }
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
        throw new IqpError('IQP_E_DATA_ROW', `Building an index failed: ${(err as Error).message} (${sql}).`);
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
