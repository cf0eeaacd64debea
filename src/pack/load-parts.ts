/**
 * A big data file loaded by several threads at once: the file cut after line breaks into parts, the
 * main thread loading the first while worker threads (load-worker.ts) load the others into
 * databases of their own, and their rows then appended in file order, so that the result is the
 * database one thread gives, byte for byte.
 */
import type Database from 'better-sqlite3';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { quoteIdent } from './content.js';
import { applySchema, columnInfo, loadTable, openScratch, PartUnsupported, rowidAlias } from './load-table.js';
import { readCsvHeader } from './rows-csv.js';
import { type FileRange, NO_FOLLOW, SplitInsideRecord } from './rows.js';
import type { DataFile, PackSource } from './source.js';

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
export interface PartPlan {
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
export async function planParts(db: Database.Database, source: PackSource, outPath: string, threads: number, maxLineBytes: number): Promise<Map<DataFile, PartPlan>> {
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
export async function loadInParts(db: Database.Database, schemaSql: string, plan: PartPlan, onRow: (n: number) => void, maxLineBytes: number): Promise<number> {
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

