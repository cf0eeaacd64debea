/** JSONL rows of a pack source's data/<table>.jsonl: one JSON object a line, errors with line and column. */
import { findJsonSyntaxError } from './json-syntax.js';
import { BATCH_ROWS, type Cell, DEFAULT_MAX_LINE_BYTES, type FileRange, MAX_JSON_DEPTH, parseError, type ReadOptions, type Row, textChunks } from './rows.js';

function jsonCell(value: unknown, file: string, line: number, key: string): Cell {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return value;
    // Bind integers as 64-bit integers: bound as doubles they would turn into "7.0" in TEXT columns.
    if (!Number.isSafeInteger(value)) {
      throw parseError(file, line, 1, `"${key}": ${value} is beyond the integers JSON can carry exactly (±2^53); write it as a string`);
    }
    return BigInt(value);
  }
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 1n : 0n;
  // Arrays and objects are stored as JSON text, which SQLite's json functions read.
  return JSON.stringify(value);
}

/** Offset of the first `[` or `{` that opens level MAX_JSON_DEPTH + 1 of `text`, or -1. */
function tooDeep(text: string): number {
  // Counting brackets (natively) first: only a line with that many of them can be too deep.
  let brackets = 0;
  for (const open of ['[', '{']) {
    for (let k = text.indexOf(open); k >= 0 && brackets <= MAX_JSON_DEPTH; k = text.indexOf(open, k + 1)) brackets += 1;
  }
  if (brackets <= MAX_JSON_DEPTH) return -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i += 1;
      else if (c === 34) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 91 || c === 123) {
      depth += 1;
      if (depth > MAX_JSON_DEPTH) return i;
    } else if (c === 93 || c === 125) {
      depth -= 1;
    }
  }
  return -1;
}

/**
 * One JSONL line as a row, or null for a blank line. A row whose keys are those of `previous`, in
 * the same order (nearly every row), shares its columns array: no array per row, and the loader
 * sees the same columns without comparing them.
 */
function jsonRow(text: string, line: number, file: string, previous: readonly string[]): Row | null {
  if (text.trim() === '') return null;
  // A line shorter than the limit cannot nest deeper than it: most rows skip the scan.
  if (text.length > MAX_JSON_DEPTH) {
    const at = tooDeep(text);
    if (at >= 0) throw parseError(file, line, at + 1, `the row nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // Located here rather than from JSON.parse's message, which may quote the line itself.
    const found = findJsonSyntaxError(text);
    throw parseError(file, line, found ? found.offset + 1 : 1, `invalid JSON: ${found?.reason ?? (err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw parseError(file, line, 1, 'each line must be a JSON object whose keys are column names');
  }
  const record = value as Record<string, unknown>;
  const values: Cell[] = [];
  let same = true;
  let i = 0;
  // for…in visits a parsed object's own keys in Object.keys order (JSON.parse objects inherit no
  // enumerable keys).
  for (const key in record) {
    if (key !== previous[i]) same = false;
    values.push(jsonCell(record[key], file, line, key));
    i += 1;
  }
  return { line, columns: same && i === previous.length ? previous : Object.keys(record), values };
}


/** JSONL rows from text chunks (`file` names the source in messages). */
export async function* parseJsonlChunks(chunks: AsyncIterable<string>, file: string): AsyncGenerator<Row[]> {
  let carry = '';
  let line = 0;
  let columns: readonly string[] = [];
  for await (const text of chunks) {
    const buf = carry ? carry + text : text;
    let batch: Row[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf('\n', start);
      if (nl < 0) break;
      line += 1;
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      let row: Row | null;
      try {
        row = jsonRow(buf.slice(start, end), line, file, columns);
      } catch (err) {
        if (batch.length > 0) yield batch;
        throw err;
      }
      start = nl + 1;
      if (row) {
        columns = row.columns;
        batch.push(row);
        if (batch.length === BATCH_ROWS) {
          yield batch;
          batch = [];
        }
      }
    }
    carry = buf.slice(start);
    if (batch.length > 0) yield batch;
  }
  if (carry) {
    const row = jsonRow(carry.endsWith('\r') ? carry.slice(0, -1) : carry, line + 1, file, columns);
    if (row) yield [row];
  }
}

/** JSONL rows of a file, or of a range of it (lines then count from the range's start). */
export function readJsonlBatches(path: string, file: string, range?: FileRange, options: ReadOptions = {}): AsyncGenerator<Row[]> {
  return parseJsonlChunks(textChunks(path, file, range, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES), file);
}

export async function* readJsonl(path: string, file: string): AsyncGenerator<Row> {
  for await (const batch of readJsonlBatches(path, file)) yield* batch;
}
