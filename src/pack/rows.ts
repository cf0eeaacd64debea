/**
 * Row readers for pack sources: data/<table>.jsonl and data/<table>.csv (RFC 4180). Both stream
 * the file and report problems with the file, line and column, as an author's editor counts them.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { IqpError } from '../errors.js';
import { findJsonSyntaxError } from './json-syntax.js';

export type Cell = string | number | bigint | null;

export interface Row {
  /** 1-based line where the row starts. */
  readonly line: number;
  readonly columns: readonly string[];
  readonly values: readonly Cell[];
}

/**
 * Opening flags for every file of a pack source: a link is never followed, even one that appears
 * after readSource (source.ts) checked the folder.
 */
export const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * The longest line of a data file iqp reads, in bytes (not counting its line break), unless
 * `iqp build --max-line-bytes` says otherwise; a CSV record, whose quoted fields may hold line
 * breaks, may hold as many characters. A row is read whole, so this bounds the memory one row
 * takes (a 300 MB line used to take 3.6 GB).
 */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * The deepest a JSONL row may nest, the row object being level 1: what SQLite's JSON functions
 * read (JSON_MAX_DEPTH), and far within what JSON.stringify can write back.
 */
export const MAX_JSON_DEPTH = 1000;

/** Limits and checks for reading a data file. */
export interface ReadOptions {
  /** The longest line (and CSV record) to read (default DEFAULT_MAX_LINE_BYTES). */
  readonly maxLineBytes?: number;
  /**
   * Called with a CSV file's header as soon as it is read; `at(i)` is where column i's name
   * stands. It may throw to refuse the header before any row is read.
   */
  readonly onHeader?: (header: readonly string[], at: (i: number) => { line: number; column: number }) => void;
}

export function parseError(file: string, line: number, column: number, reason: string): IqpError {
  return new IqpError('IQP_E_DATA_PARSE', `${file}:${line}:${column}: ${reason}`, { file, line, column });
}

/** Bytes of a source file (1 MiB at a time), never through a link. */
async function* sourceBytes(path: string, file: string, bounds: { start?: number; end?: number; highWaterMark?: number }): AsyncGenerator<Buffer> {
  const handle = await open(path, NO_FOLLOW).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw new IqpError('IQP_E_SOURCE_SYMLINK', `${file} is a symbolic link; a pack source holds its files itself.`, { file });
    throw err;
  });
  // The stream closes the handle when it ends, fails or is abandoned.
  yield* handle.createReadStream({ highWaterMark: 1024 * 1024, ...bounds }) as AsyncIterable<Buffer>;
}

/** Line and column (1-based) of a byte offset, found by reading the file again: only on errors. */
async function locate(path: string, file: string, offset: number): Promise<{ line: number; column: number }> {
  let line = 1;
  let lineStart = 0;
  let pos = 0;
  for await (const buf of sourceBytes(path, file, { end: Math.max(0, offset - 1) })) {
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
      line += 1;
      lineStart = pos + i + 1;
    }
    pos += buf.length;
  }
  return { line, column: offset - lineStart + 1 };
}

/** Index of the first byte that is not part of valid UTF-8 (the decoder already failed, so there is one). */
export function firstInvalidUtf8(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (n === 0) return i;
    if (i + n > buf.length) return i;
    for (let k = 1; k < n; k++) if ((buf[i + k]! & 0xc0) !== 0x80) return i;
    const cp = n === 2 ? 0 : n === 3 ? ((b & 0x0f) << 12) | ((buf[i + 1]! & 0x3f) << 6) : ((b & 0x07) << 18) | ((buf[i + 1]! & 0x3f) << 12);
    if ((n === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n === 4 && (cp < 0x10000 || cp > 0x10ffff))) return i;
    i += n;
  }
  return buf.length;
}

/**
 * A part of a data file for one loading thread: bytes [start, end), where start is 0 or the start
 * of a line and end is the end of the file or just after a line break.
 */
export interface FileRange {
  readonly start: number;
  readonly end: number;
  /** The part ends the file (a CSV part that does not must end between records). */
  readonly last: boolean;
}

/**
 * Thrown when a CSV part that does not end the file ends inside a record (a quoted field with a
 * line break across the split): the parts were not cut between records, and the file must be
 * loaded in one piece.
 */
export class SplitInsideRecord extends Error {
  constructor(file: string) {
    super(`${file}: a part ends inside a record`);
  }
}

/** The file (or a range of it) as text, strictly UTF-8: an invalid byte is an error at its line and column, never U+FFFD. */
async function* textChunks(path: string, file: string, range: FileRange | undefined, maxLineBytes: number): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  /** Bytes since the last line break. Chunks are no longer than a line may be, so only lines across chunks need checking. */
  let sinceBreak = 0;
  // A byte order mark is only one at the very start of the file.
  let first = !range || range.start === 0;
  let offset = range?.start ?? 0;
  let pending: Buffer = Buffer.alloc(0);
  if (range && range.end <= range.start) return;
  const bounds = range ? { start: range.start, end: range.end - 1 } : {};
  for await (const chunk of sourceBytes(path, file, { ...bounds, highWaterMark: Math.min(1024 * 1024, maxLineBytes) })) {
    const firstBreak = chunk.indexOf(10);
    if (sinceBreak + (firstBreak < 0 ? chunk.length : firstBreak) > maxLineBytes) {
      const { line, column } = await locate(path, file, offset + maxLineBytes - sinceBreak);
      throw parseError(file, line, column, `the line is longer than ${maxLineBytes} bytes (the most a row may take; see --max-line-bytes)`);
    }
    sinceBreak = firstBreak < 0 ? sinceBreak + chunk.length : chunk.length - 1 - chunk.lastIndexOf(10);
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      const joined = Buffer.concat([pending, chunk]);
      const at = offset - pending.length + firstInvalidUtf8(joined);
      const { line, column } = await locate(path, file, at);
      throw parseError(file, line, column, 'the file is not valid UTF-8 here (save it as UTF-8)');
    }
    // Keep the tail of a chunk that may hold the start of a multi-byte character, for error offsets.
    pending = chunk.subarray(Math.max(0, chunk.length - 3));
    offset += chunk.length;
    // Spreadsheet exports often start with a UTF-8 byte order mark; it is not part of the data.
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (text) yield text;
  }
  try {
    const rest = decoder.decode();
    if (rest) yield rest;
  } catch {
    const { line, column } = await locate(path, file, offset - pending.length + firstInvalidUtf8(pending));
    throw parseError(file, line, column, 'the file ends inside a UTF-8 character');
  }
}

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

/*
 * The readers hand rows over in batches of up to BATCH_ROWS: an async generator step per row costs
 * more than parsing the row, while small batches keep rows short-lived for the garbage collector.
 * Problems still surface in file order: the rows before a bad row are handed over first and the
 * error is thrown on the next step, so a consumer that fails on an earlier row reports that row.
 */
const BATCH_ROWS = 512;

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

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/**
 * RFC 4180 with two conventions: the first record names the columns, and an empty unquoted field
 * is NULL while a quoted empty field ("") is the empty string.
 *
 * A state machine fed chunk by chunk. Columns count UTF-16 code units from 1, lines count LFs.
 * Runs of ordinary characters are copied as one slice rather than a character at a time.
 */
class CsvParser {
  header: string[] | null = null;
  #fields: Cell[] = [];
  #field = '';
  /** The current field started with a quote. */
  #quoted = false;
  #inQuotes = false;
  /** Just saw the closing quote of a quoted field. */
  #afterQuote = false;
  #line = 1;
  #col = 0;
  #recordLine = 1;
  /** Column where the current field starts, and where each field of the record so far started (for the header's messages). */
  #fieldStart = 1;
  #starts: number[] = [];
  /** Characters of the chunks before the current one, and where the current record starts (counted the same way). */
  #consumed = 0;
  #recordStart = 0;
  readonly #maxRecordChars: number;

  constructor(
    private readonly file: string,
    private readonly options: ReadOptions = {},
  ) {
    this.#maxRecordChars = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  /** The record so far is longer than a record may be (`end`: where it has got to in the current chunk). */
  #checkRecordLength(end: number): void {
    if (this.#consumed + end - this.#recordStart > this.#maxRecordChars) {
      throw parseError(this.file, this.#recordLine, 1, `the record is longer than ${this.#maxRecordChars} characters (the most a row may take; see --max-line-bytes)`);
    }
  }

  /** The parser has taken the whole of a chunk of `length` characters. */
  endChunk(length: number): void {
    this.#consumed += length;
  }

  #endField(): void {
    this.#starts.push(this.#fieldStart);
    this.#fields.push(this.#quoted ? this.#field : this.#field === '' ? null : this.#field);
    this.#field = '';
    this.#quoted = false;
    this.#afterQuote = false;
  }

  #endRecord(out: Row[]): void {
    this.#endField();
    const record = this.#fields;
    const starts = this.#starts;
    this.#fields = [];
    this.#starts = [];
    if (record.length === 1 && record[0] === null) return; // blank line
    const file = this.file;
    const recordLine = this.#recordLine;
    if (!this.header) {
      const header = record.map((c, i) => {
        if (c === null || c === '') throw parseError(file, recordLine, starts[i]!, `header field ${i + 1} is empty`);
        return String(c);
      });
      const dup = header.findIndex((c, i) => header.indexOf(c) !== i);
      if (dup >= 0) throw parseError(file, recordLine, starts[dup]!, `column "${header[dup]}" appears twice in the header`);
      this.options.onHeader?.(header, (i) => ({ line: recordLine, column: starts[i]! }));
      this.header = header;
      return;
    }
    if (record.length !== this.header.length) {
      throw parseError(file, recordLine, 1, `expected ${this.header.length} fields (as in the header), found ${record.length}`);
    }
    out.push({ line: recordLine, columns: this.header, values: record });
  }

  /**
   * Parses `text` from `from`, appending complete records to `out` until it holds `limit` rows or
   * the text ends; returns where it stopped.
   */
  push(text: string, from: number, out: Row[], limit: number): number {
    const n = text.length;
    let i = from;
    while (i < n) {
      if (this.#inQuotes) {
        const q = text.indexOf('"', i);
        const stop = q < 0 ? n : q;
        if (stop > i) {
          const run = text.slice(i, stop);
          this.#field += run;
          let nl = run.indexOf('\n');
          if (nl < 0) {
            this.#col += run.length;
          } else {
            let last = nl;
            while (nl >= 0) {
              this.#line += 1;
              last = nl;
              nl = run.indexOf('\n', nl + 1);
            }
            this.#col = run.length - last - 1;
          }
          i = stop;
        }
        if (q < 0) break;
        this.#col += 1;
        if (i + 1 < n && text.charCodeAt(i + 1) === QUOTE) {
          this.#field += '"';
          i += 2;
          this.#col += 1;
        } else {
          // A quote at the very end of a chunk may be the first of a doubled pair: it is taken as
          // closing, and a quote right after a closing quote reopens the field with a literal quote.
          this.#inQuotes = false;
          this.#afterQuote = true;
          i += 1;
        }
        continue;
      }
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === COMMA || c === LF || c === QUOTE || c === CR) break;
        j += 1;
      }
      if (j > i) {
        if (this.#afterQuote) throw parseError(this.file, this.#line, this.#col + 1, 'text after the closing quote of a field');
        this.#field = this.#field === '' ? text.slice(i, j) : this.#field + text.slice(i, j);
        this.#col += j - i;
        i = j;
        if (i === n) break;
      }
      const ch = text.charCodeAt(i);
      i += 1;
      this.#col += 1;
      if (ch === COMMA) {
        this.#endField();
        this.#fieldStart = this.#col + 1;
      } else if (ch === LF) {
        if (!this.#afterQuote && this.#field.endsWith('\r')) this.#field = this.#field.slice(0, -1);
        this.#checkRecordLength(i - 1);
        this.#endRecord(out);
        this.#line += 1;
        this.#col = 0;
        this.#fieldStart = 1;
        this.#recordLine = this.#line;
        this.#recordStart = this.#consumed + i;
        if (out.length >= limit) return i;
      } else if (ch === QUOTE) {
        if (this.#afterQuote) {
          // Doubled quote split across chunks: `""` inside quotes.
          this.#field += '"';
          this.#inQuotes = true;
          this.#afterQuote = false;
        } else if (this.#field === '' && !this.#quoted) {
          this.#quoted = true;
          this.#inQuotes = true;
        } else {
          throw parseError(this.file, this.#line, this.#col, 'a quote inside an unquoted field (quote the whole field and double inner quotes)');
        }
      } else if (!this.#afterQuote) {
        // CR outside quotes: kept unless it ends the record (CRLF) or follows a closing quote.
        this.#field += '\r';
      }
    }
    this.#checkRecordLength(n);
    return n;
  }

  /** Between records: nothing of a record read yet. */
  atRecordStart(): boolean {
    return !this.#inQuotes && !this.#quoted && this.#field === '' && this.#fields.length === 0;
  }

  /** Call at the end of the input: the last record may lack its line break. */
  finish(out: Row[]): void {
    if (this.#inQuotes) throw parseError(this.file, this.#recordLine, 1, 'a quoted field is never closed');
    if (this.#field !== '' || this.#quoted || this.#fields.length > 0) {
      if (this.#field.endsWith('\r')) this.#field = this.#field.slice(0, -1);
      this.#endRecord(out);
    }
    if (!this.header) throw parseError(this.file, 1, 1, 'the file is empty (a header row naming the columns is required)');
  }
}

export interface CsvPartOptions {
  /** The header, for a part that starts after it. */
  readonly header?: readonly string[];
  /** The input ends the file (the default); otherwise it must end between records. */
  readonly last?: boolean;
}

/** CSV rows from text chunks (`file` names the source in messages). */
export async function* parseCsvChunks(chunks: AsyncIterable<string>, file: string, options: CsvPartOptions & ReadOptions = {}): AsyncGenerator<Row[]> {
  const parser = new CsvParser(file, options);
  if (options.header) parser.header = [...options.header];
  for await (const text of chunks) {
    let pos = 0;
    while (pos < text.length) {
      const batch: Row[] = [];
      try {
        pos = parser.push(text, pos, batch, BATCH_ROWS);
      } catch (err) {
        if (batch.length > 0) yield batch;
        throw err;
      }
      if (batch.length > 0) yield batch;
    }
    parser.endChunk(text.length);
  }
  if (options.last === false) {
    if (!parser.atRecordStart()) throw new SplitInsideRecord(file);
    return;
  }
  const batch: Row[] = [];
  parser.finish(batch);
  if (batch.length > 0) yield batch;
}

/** CSV rows of a file, or of a range of it: a range that starts after the header is given it. */
export function readCsvBatches(path: string, file: string, range?: FileRange, header?: readonly string[], options: ReadOptions = {}): AsyncGenerator<Row[]> {
  const chunks = textChunks(path, file, range, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  return parseCsvChunks(chunks, file, { ...options, ...(header ? { header } : {}), last: range?.last ?? true });
}

/** The column names of a CSV file (its first record), reading no further than that record. */
export async function readCsvHeader(path: string, file: string, options: ReadOptions = {}): Promise<string[]> {
  const parser = new CsvParser(file, options);
  const rows: Row[] = [];
  for await (const text of textChunks(path, file, undefined, options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES)) {
    let pos = 0;
    while (pos < text.length && !parser.header) pos = parser.push(text, pos, rows, 1);
    if (parser.header) return parser.header;
    parser.endChunk(text.length);
  }
  parser.finish(rows);
  return parser.header!;
}

export async function* readCsv(path: string, file: string): AsyncGenerator<Row> {
  for await (const batch of readCsvBatches(path, file)) yield* batch;
}
