/**
 * Row readers for pack sources: data/<table>.jsonl and data/<table>.csv (RFC 4180). Both stream
 * the file and report problems with the file, line and column, as an author's editor counts them.
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { IqpError } from '../errors.js';

export type Cell = string | number | bigint | null;

export interface Row {
  /** 1-based line where the row starts. */
  readonly line: number;
  readonly columns: readonly string[];
  readonly values: readonly Cell[];
}

export function parseError(file: string, line: number, column: number, reason: string): IqpError {
  return new IqpError('IQP_E_DATA_PARSE', `${file}:${line}:${column}: ${reason}`, { file, line, column });
}

async function* textChunks(path: string): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let first = true;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    let text = decoder.write(chunk as Buffer);
    // Spreadsheet exports often start with a UTF-8 byte order mark; it is not part of the data.
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    yield text;
  }
  const rest = decoder.end();
  if (rest) yield rest;
}

async function* lines(path: string): AsyncGenerator<{ text: string; line: number }> {
  let carry = '';
  let line = 0;
  for await (const text of textChunks(path)) {
    let start = 0;
    const buf = carry ? carry + text : text;
    for (;;) {
      const nl = buf.indexOf('\n', start);
      if (nl < 0) break;
      line += 1;
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield { text: buf.slice(start, end), line };
      start = nl + 1;
    }
    carry = buf.slice(start);
  }
  if (carry) yield { text: carry.endsWith('\r') ? carry.slice(0, -1) : carry, line: line + 1 };
}

function jsonColumn(message: string, text: string): number {
  const pos = /position (\d+)/.exec(message);
  if (pos) return Number(pos[1]) + 1;
  return text.length + 1;
}

function jsonCell(value: unknown): Cell {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value as Cell;
  if (typeof value === 'boolean') return value ? 1 : 0;
  // Arrays and objects are stored as JSON text, which SQLite's json functions read.
  return JSON.stringify(value);
}

export async function* readJsonl(path: string, file: string): AsyncGenerator<Row> {
  for await (const { text, line } of lines(path)) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const message = (err as Error).message;
      throw parseError(file, line, jsonColumn(message, text), `invalid JSON: ${message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw parseError(file, line, 1, 'each line must be a JSON object whose keys are column names');
    }
    const columns = Object.keys(value);
    yield { line, columns, values: columns.map((c) => jsonCell((value as Record<string, unknown>)[c])) };
  }
}

/**
 * RFC 4180 with two conventions: the first record names the columns, and an empty unquoted field
 * is NULL while a quoted empty field ("") is the empty string.
 */
export async function* readCsv(path: string, file: string): AsyncGenerator<Row> {
  let header: string[] | null = null;
  let fields: Cell[] = [];
  let field = '';
  let quoted = false; // the current field started with a quote
  let inQuotes = false;
  let afterQuote = false; // just saw the closing quote of a quoted field
  let line = 1;
  let col = 0;
  let recordLine = 1;
  const endField = (): void => {
    fields.push(quoted ? field : field === '' ? null : field);
    field = '';
    quoted = false;
    afterQuote = false;
  };
  const endRecord = function* (): Generator<Row> {
    endField();
    const record = fields;
    fields = [];
    if (record.length === 1 && record[0] === null) return; // blank line
    if (!header) {
      header = record.map((c, i) => {
        if (c === null || c === '') throw parseError(file, recordLine, i + 1, `header field ${i + 1} is empty`);
        return String(c);
      });
      return;
    }
    if (record.length !== header.length) {
      throw parseError(file, recordLine, 1, `expected ${header.length} fields (as in the header), found ${record.length}`);
    }
    yield { line: recordLine, columns: header, values: record };
  };
  for await (const text of textChunks(path)) {
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      col += 1;
      if (inQuotes) {
        if (ch === 34) {
          if (text.charCodeAt(i + 1) === 34 && i + 1 < text.length) {
            field += '"';
            i += 1;
            col += 1;
          } else {
            // A quote at the very end of a chunk may be the first of a doubled pair; peek is handled
            // by treating it as closing and reopening if the next char is a quote.
            inQuotes = false;
            afterQuote = true;
          }
        } else {
          if (ch === 10) {
            line += 1;
            col = 0;
          }
          field += text[i];
        }
        continue;
      }
      if (ch === 34) {
        if (afterQuote) {
          // Doubled quote split across chunks: `""` inside quotes.
          field += '"';
          inQuotes = true;
          afterQuote = false;
        } else if (field === '' && !quoted) {
          quoted = true;
          inQuotes = true;
        } else {
          throw parseError(file, line, col, 'a quote inside an unquoted field (quote the whole field and double inner quotes)');
        }
      } else if (ch === 44) {
        endField();
      } else if (ch === 10) {
        if (field.endsWith('\r') && !afterQuote) field = field.slice(0, -1);
        yield* endRecord();
        line += 1;
        col = 0;
        recordLine = line;
      } else if (ch === 13) {
        if (afterQuote) continue;
        field += '\r';
      } else {
        if (afterQuote) throw parseError(file, line, col, 'text after the closing quote of a field');
        field += text[i];
      }
    }
  }
  if (inQuotes) throw parseError(file, recordLine, 1, 'a quoted field is never closed');
  if (field !== '' || quoted || fields.length > 0) {
    if (field.endsWith('\r')) field = field.slice(0, -1);
    yield* endRecord();
  }
  if (!header) throw parseError(file, 1, 1, 'the file is empty (a header row naming the columns is required)');
}
