/**
 * Row readers for pack sources: data/<table>.jsonl and data/<table>.csv (RFC 4180). Both stream
 * the file and report problems with the file, line and column, as an author's editor counts them.
 */
import { createReadStream } from 'node:fs';
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

/** Line and column (1-based) of a byte offset, found by reading the file again: only on errors. */
async function locate(path: string, offset: number): Promise<{ line: number; column: number }> {
  let line = 1;
  let lineStart = 0;
  let pos = 0;
  for await (const chunk of createReadStream(path, { end: Math.max(0, offset - 1), highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
      line += 1;
      lineStart = pos + i + 1;
    }
    pos += buf.length;
  }
  return { line, column: offset - lineStart + 1 };
}

/** Index of the first byte that is not part of valid UTF-8 (the decoder already failed, so there is one). */
function firstInvalidUtf8(buf: Buffer): number {
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

/** The file as text, strictly UTF-8: an invalid byte is an error at its line and column, never U+FFFD. */
async function* textChunks(path: string, file: string): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let first = true;
  let offset = 0;
  let pending: Buffer = Buffer.alloc(0);
  for await (const raw of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    const chunk = raw as Buffer;
    let text: string;
    try {
      text = decoder.decode(chunk, { stream: true });
    } catch {
      const joined = Buffer.concat([pending, chunk]);
      const at = offset - pending.length + firstInvalidUtf8(joined);
      const { line, column } = await locate(path, at);
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
    const { line, column } = await locate(path, offset - pending.length + firstInvalidUtf8(pending));
    throw parseError(file, line, column, 'the file ends inside a UTF-8 character');
  }
}

async function* lines(path: string, file: string): AsyncGenerator<{ text: string; line: number }> {
  let carry = '';
  let line = 0;
  for await (const text of textChunks(path, file)) {
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
  if (typeof value === 'boolean') return value ? 1 : 0;
  // Arrays and objects are stored as JSON text, which SQLite's json functions read.
  return JSON.stringify(value);
}

export async function* readJsonl(path: string, file: string): AsyncGenerator<Row> {
  for await (const { text, line } of lines(path, file)) {
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
    yield { line, columns, values: columns.map((c) => jsonCell((value as Record<string, unknown>)[c], file, line, c)) };
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
      const dup = header.find((c, i) => header!.indexOf(c) !== i);
      if (dup !== undefined) throw parseError(file, recordLine, 1, `column "${dup}" appears twice in the header`);
      return;
    }
    if (record.length !== header.length) {
      throw parseError(file, recordLine, 1, `expected ${header.length} fields (as in the header), found ${record.length}`);
    }
    yield { line: recordLine, columns: header, values: record };
  };
  for await (const text of textChunks(path, file)) {
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
