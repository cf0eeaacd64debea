/**
 * What the row readers for pack sources share (rows-jsonl.ts for data/<table>.jsonl, rows-csv.ts
 * for data/<table>.csv): the row type, the limits, and a file's text streamed in chunks that never
 * follow a link, cut lines short at the limit and refuse bad UTF-8, with problems reported by
 * file, line and column as an author's editor counts them.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { IqpError } from '../errors.js';

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
export async function* textChunks(path: string, file: string, range: FileRange | undefined, maxLineBytes: number): AsyncGenerator<string> {
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

/*
 * The readers hand rows over in batches of up to BATCH_ROWS: an async generator step per row costs
 * more than parsing the row, while small batches keep rows short-lived for the garbage collector.
 * Problems still surface in file order: the rows before a bad row are handed over first and the
 * error is thrown on the next step, so a consumer that fails on an earlier row reports that row.
 */
export const BATCH_ROWS = 512;
