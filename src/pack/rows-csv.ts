/** CSV rows of a pack source's data/<table>.csv (RFC 4180), errors with line and column. */
import type { IqpError } from '../errors.js';
import { BATCH_ROWS, type Cell, DEFAULT_MAX_LINE_BYTES, type FileRange, parseError, type ReadOptions, type Row, SplitInsideRecord, textChunks } from './rows.js';

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** A quoted field the file ends inside: named at its opening quote, where a closing one is missing. */
export function neverClosed(file: string, openLine: number, openColumn: number): IqpError {
  return parseError(file, openLine, openColumn, 'a quoted field is never closed (this is its opening quote)');
}

/**
 * Text right after a closing quote. When the field began on an earlier line, the likely cause is a
 * quote left open there, which this line's first quote closed: the message says where it opened.
 */
export function textAfterQuote(file: string, line: number, column: number, openLine: number, openColumn: number): IqpError {
  const cause =
    openLine < line
      ? `; that field opened with the quote at line ${openLine}, column ${openColumn}, so that quote is probably missing its closing quote, and the quote before this text closed it`
      : '';
  return parseError(file, line, column, `text after the closing quote of a field${cause}`);
}

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
  /** Where the current quoted field's opening quote is. */
  #openLine = 1;
  #openCol = 1;
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
        if (this.#afterQuote) throw textAfterQuote(this.file, this.#line, this.#col + 1, this.#openLine, this.#openCol);
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
          this.#openLine = this.#line;
          this.#openCol = this.#col;
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
    if (this.#inQuotes) throw neverClosed(this.file, this.#openLine, this.#openCol);
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
