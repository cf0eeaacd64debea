/**
 * The row readers against a reference: the original one-character-at-a-time parsers, kept here
 * verbatim (but fed text chunks instead of a file) as the definition of the behaviour. Random
 * inputs, cut into random chunks, must give the same rows and then the same error, if any.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IqpError } from '../errors.js';
import { findJsonSyntaxError } from './json-syntax.js';
import { type Cell, parseError, type Row, SplitInsideRecord } from './rows.js';
import { neverClosed, parseCsvChunks, readCsv, readCsvBatches, readCsvHeader, textAfterQuote } from './rows-csv.js';
import { parseJsonlChunks, readJsonl, readJsonlBatches } from './rows-jsonl.js';

// ---- reference implementation (the parsers before rows were batched and sliced) ----

async function* refLines(chunks: AsyncIterable<string>): AsyncGenerator<{ text: string; line: number }> {
  let carry = '';
  let line = 0;
  for await (const text of chunks) {
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

/** Where a line's JSON goes wrong: the one thing here that is not the original (which quoted JSON.parse's message). */
function refJsonError(file: string, line: number, text: string): IqpError {
  const found = findJsonSyntaxError(text)!;
  return parseError(file, line, found.offset + 1, `invalid JSON: ${found.reason}`);
}

function refJsonCell(value: unknown, file: string, line: number, key: string): Cell {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return value;
    if (!Number.isSafeInteger(value)) {
      throw parseError(file, line, 1, `"${key}": ${value} is beyond the integers JSON can carry exactly (±2^53); write it as a string`);
    }
    return BigInt(value);
  }
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 1n : 0n;
  return JSON.stringify(value);
}

async function* refJsonl(chunks: AsyncIterable<string>, file: string): AsyncGenerator<Row> {
  for await (const { text, line } of refLines(chunks)) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw refJsonError(file, line, text);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw parseError(file, line, 1, 'each line must be a JSON object whose keys are column names');
    }
    const columns = Object.keys(value);
    yield { line, columns, values: columns.map((c) => refJsonCell((value as Record<string, unknown>)[c], file, line, c)) };
  }
}

async function* refCsv(chunks: AsyncIterable<string>, file: string): AsyncGenerator<Row> {
  let header: string[] | null = null;
  let fields: Cell[] = [];
  let field = '';
  let quoted = false;
  let inQuotes = false;
  let afterQuote = false;
  let line = 1;
  let col = 0;
  let recordLine = 1;
  let openLine = 1;
  let openCol = 1;
  // Header errors name the column where the field starts (the one addition to the original).
  let fieldStart = 1;
  let starts: number[] = [];
  const endField = (): void => {
    starts.push(fieldStart);
    fields.push(quoted ? field : field === '' ? null : field);
    field = '';
    quoted = false;
    afterQuote = false;
  };
  const endRecord = function* (): Generator<Row> {
    endField();
    const record = fields;
    const at = starts;
    fields = [];
    starts = [];
    if (record.length === 1 && record[0] === null) return;
    if (!header) {
      header = record.map((c, i) => {
        if (c === null || c === '') throw parseError(file, recordLine, at[i]!, `header field ${i + 1} is empty`);
        return String(c);
      });
      const dup = header.findIndex((c, i) => header!.indexOf(c) !== i);
      if (dup >= 0) throw parseError(file, recordLine, at[dup]!, `column "${header[dup]}" appears twice in the header`);
      return;
    }
    if (record.length !== header.length) {
      throw parseError(file, recordLine, 1, `expected ${header.length} fields (as in the header), found ${record.length}`);
    }
    yield { line: recordLine, columns: header, values: record };
  };
  for await (const text of chunks) {
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
          field += '"';
          inQuotes = true;
          afterQuote = false;
        } else if (field === '' && !quoted) {
          quoted = true;
          inQuotes = true;
          openLine = line;
          openCol = col;
        } else {
          throw parseError(file, line, col, 'a quote inside an unquoted field (quote the whole field and double inner quotes)');
        }
      } else if (ch === 44) {
        endField();
        fieldStart = col + 1;
      } else if (ch === 10) {
        if (field.endsWith('\r') && !afterQuote) field = field.slice(0, -1);
        yield* endRecord();
        line += 1;
        col = 0;
        fieldStart = 1;
        recordLine = line;
      } else if (ch === 13) {
        if (afterQuote) continue;
        field += '\r';
      } else {
        if (afterQuote) throw textAfterQuote(file, line, col, openLine, openCol);
        field += text[i];
      }
    }
  }
  if (inQuotes) throw neverClosed(file, openLine, openCol);
  if (field !== '' || quoted || fields.length > 0) {
    if (field.endsWith('\r')) field = field.slice(0, -1);
    yield* endRecord();
  }
  if (!header) throw parseError(file, 1, 1, 'the file is empty (a header row naming the columns is required)');
}

// ---- harness ----

/** sfc32, so that a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

async function* chunked(text: string, cuts: readonly number[]): AsyncGenerator<string> {
  let start = 0;
  for (const cut of cuts) {
    yield text.slice(start, cut);
    start = cut;
  }
  yield text.slice(start);
}

function randomCuts(r: () => number, length: number): number[] {
  const n = Math.floor(r() * 6);
  return Array.from({ length: n }, () => Math.floor(r() * (length + 1))).sort((x, y) => x - y);
}

interface Outcome {
  rows: Row[];
  error: { code: string; message: string; details: unknown } | null;
}

async function collect(rows: AsyncIterable<Row> | AsyncIterable<Row[]>, batched: boolean): Promise<Outcome> {
  const out: Row[] = [];
  try {
    for await (const item of rows) {
      if (batched) out.push(...(item as Row[]));
      else out.push(item as Row);
    }
    return { rows: out, error: null };
  } catch (err) {
    if (!(err instanceof IqpError)) throw err;
    return { rows: out, error: { code: err.code, message: err.message, details: err.details } };
  }
}

const CSV_TOKENS = ['a', 'bc', 'é', '😀', ' ', ',', ',', '"', '"', '""', '\n', '\n', '\r\n', '\r', 'x y', '"q"', '"a,b"', '"l1\nl2"', '""""'];
const JSONL_LINES = [
  '{"a":1,"b":"x"}',
  '{"a":"x,y","b":null}',
  '{"b":2,"a":null}',
  '',
  '   ',
  '{"a":1.5,"b":true}',
  '{"a":{"x":[1,2]},"b":false}',
  '{"a":"é😀","b":"line\\nbreak"}',
  'not json',
  '[1,2]',
  '{"a":9007199254740993}',
  '{"a":',
  '"str"',
];

function randomCsv(r: () => number): string {
  const body = Array.from({ length: Math.floor(r() * 40) }, () => CSV_TOKENS[Math.floor(r() * CSV_TOKENS.length)]!).join('');
  const header = r() < 0.75 ? ['h1,h2', 'a,b,c', 'x', 'k,"quoted, header"'][Math.floor(r() * 4)]! + (r() < 0.5 ? '\n' : '\r\n') : '';
  return header + body;
}

function randomJsonl(r: () => number): string {
  const n = Math.floor(r() * 8);
  const good = r() < 0.6;
  const lines = Array.from({ length: n }, () => JSONL_LINES[Math.floor(r() * (good ? 8 : JSONL_LINES.length))]!);
  return lines.map((l) => l + (r() < 0.8 ? '\n' : '\r\n')).join('') + (r() < 0.3 ? JSONL_LINES[Math.floor(r() * 8)]! : '');
}

describe('row readers agree with the one-character-at-a-time reference', () => {
  it('CSV: random inputs in random chunks give the same rows, then the same error', async () => {
    const r = rng(4181);
    for (let n = 0; n < 4000; n++) {
      const text = randomCsv(r);
      const cuts = randomCuts(r, text.length);
      const expected = await collect(refCsv(chunked(text, cuts), 'data/t.csv'), false);
      const actual = await collect(parseCsvChunks(chunked(text, cuts), 'data/t.csv'), true);
      expect({ case: n, text, cuts, ...actual }).toEqual({ case: n, text, cuts, ...expected });
    }
  });

  it('JSONL: random inputs in random chunks give the same rows, then the same error', async () => {
    const r = rng(1597);
    for (let n = 0; n < 3000; n++) {
      const text = randomJsonl(r);
      const cuts = randomCuts(r, text.length);
      const expected = await collect(refJsonl(chunked(text, cuts), 'data/t.jsonl'), false);
      const actual = await collect(parseJsonlChunks(chunked(text, cuts), 'data/t.jsonl'), true);
      expect({ case: n, text, cuts, ...actual }).toEqual({ case: n, text, cuts, ...expected });
    }
  });

  it('long inputs (many batches), with a bad row somewhere or none, give the same rows and error', async () => {
    const r = rng(6765);
    const fields = ['plain', '', '"quoted, with comma"', '"multi\nline"', '"say ""hi"""', '""', 'é😀', '12.5'];
    const badCsv = ['x"y', '"a"b', '"never closed'];
    const jsonl = ['{"a":1,"b":"x"}', '{"a":null,"b":"y,z"}', '', '{"b":"q","a":2.5}', '{"a":"é😀","b":"l\\nl"}'];
    const badJsonl = ['{"a":', '[1]', '{"a":9007199254740993}'];
    let longest = 0;
    for (let n = 0; n < 40; n++) {
      const records = 500 + Math.floor(r() * 1500);
      const bad = r() < 0.7 ? Math.floor(r() * records) : -1;
      let csv = 'a,b\n';
      let json = '';
      for (let i = 0; i < records; i++) {
        const pick = () => fields[Math.floor(r() * fields.length)]!;
        csv += i === bad ? `${pick()},${badCsv[Math.floor(r() * badCsv.length)]!}\n` : `${pick()},${pick()}${r() < 0.2 ? '\r\n' : '\n'}`;
        json += `${i === bad ? badJsonl[Math.floor(r() * badJsonl.length)]! : jsonl[Math.floor(r() * jsonl.length)]!}\n`;
      }
      for (const [text, ref, actual] of [
        [csv, refCsv, parseCsvChunks],
        [json, refJsonl, parseJsonlChunks],
      ] as const) {
        const cuts = Array.from({ length: 1 + Math.floor(r() * 30) }, () => Math.floor(r() * (text.length + 1))).sort((x, y) => x - y);
        const expected = await collect(ref(chunked(text, cuts), 'data/t'), false);
        const got = await collect(actual(chunked(text, cuts), 'data/t'), true);
        expect(got.error).toEqual(expected.error);
        expect(got.rows).toEqual(expected.rows);
        longest = Math.max(longest, got.rows.length);
      }
    }
    expect(longest).toBeGreaterThan(3 * 512);
  });

  it('a batch before a bad row is handed over before the error is thrown', async () => {
    const seen: number[] = [];
    let error: unknown = null;
    try {
      for await (const batch of parseCsvChunks(chunked('a,b\n1,2\n3,4\n5,"x"y\n', []), 'data/t.csv')) seen.push(...batch.map((row) => row.line));
    } catch (err) {
      error = err;
    }
    expect(seen).toEqual([2, 3]);
    expect((error as IqpError).code).toBe('IQP_E_DATA_PARSE');
    expect((error as IqpError).message).toBe('data/t.csv:4:6: text after the closing quote of a field');
  });
});

describe('file readers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iqp-rows-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('read rows larger than one read chunk, in order, from CSV and JSONL', async () => {
    const long = 'x'.repeat(3 * 1024 * 1024);
    const csv = join(dir, 'big.csv');
    writeFileSync(csv, `\ufeffid,text\n1,"${long}"\n2,short\n3,"a ""b"" c"\r\n`);
    const rows: Row[] = [];
    for await (const row of readCsv(csv, 'data/big.csv')) rows.push(row);
    expect(rows.map((r) => [r.line, r.values[0], String(r.values[1]).length])).toEqual([
      [2, '1', long.length],
      [3, '2', 5],
      [4, '3', 7],
    ]);
    expect(rows[2]!.values[1]).toBe('a "b" c');

    const jsonl = join(dir, 'big.jsonl');
    writeFileSync(jsonl, `{"id":1,"text":"${long}"}\n\n{"id":2,"text":"short"}`);
    const jrows: Row[] = [];
    for await (const row of readJsonl(jsonl, 'data/big.jsonl')) jrows.push(row);
    expect(jrows.map((r) => [r.line, r.values[0]])).toEqual([
      [1, 1n],
      [3, 2n],
    ]);
  });

  async function rowsOf(batches: AsyncIterable<Row[]>): Promise<Cell[][]> {
    const out: Cell[][] = [];
    for await (const batch of batches) for (const row of batch) out.push([...row.values]);
    return out;
  }

  it('read parts of a file (a loading thread each): the parts together are the whole, and a CSV part after the first is given the header', async () => {
    const csv = join(dir, 'parts.csv');
    const text = '\ufeffid,text\n1,one\n2,"two, quoted"\n3,three\n';
    writeFileSync(csv, text);
    const bytes = Buffer.from(text);
    const cut = bytes.indexOf('2,"two');
    expect(await readCsvHeader(csv, 'data/parts.csv')).toEqual(['id', 'text']);
    const first = await rowsOf(readCsvBatches(csv, 'data/parts.csv', { start: 0, end: cut, last: false }));
    const second = await rowsOf(readCsvBatches(csv, 'data/parts.csv', { start: cut, end: bytes.length, last: true }, ['id', 'text']));
    expect([...first, ...second]).toEqual(await rowsOf(readCsvBatches(csv, 'data/parts.csv')));
    expect(second).toEqual([
      ['2', 'two, quoted'],
      ['3', 'three'],
    ]);

    const jsonl = join(dir, 'parts.jsonl');
    writeFileSync(jsonl, '{"id":1}\n{"id":2}\n{"id":3}');
    const jcut = Buffer.from('{"id":1}\n').length;
    const jfirst = await rowsOf(readJsonlBatches(jsonl, 'data/parts.jsonl', { start: 0, end: jcut, last: false }));
    const jsecond = await rowsOf(readJsonlBatches(jsonl, 'data/parts.jsonl', { start: jcut, end: 26, last: true }));
    expect([jfirst, jsecond]).toEqual([[[1n]], [[2n], [3n]]]);
  });

  it('a CSV part that does not end the file must end between records: one that ends inside a quoted field says so', async () => {
    const csv = join(dir, 'split.csv');
    const text = 'id,text\n1,"two\nlines"\n2,x\n';
    writeFileSync(csv, text);
    const inside = Buffer.from(text).indexOf('lines');
    await expect(rowsOf(readCsvBatches(csv, 'data/split.csv', { start: 0, end: inside, last: false }))).rejects.toBeInstanceOf(SplitInsideRecord);
    const between = Buffer.from(text).indexOf('2,x');
    expect(await rowsOf(readCsvBatches(csv, 'data/split.csv', { start: 0, end: between, last: false }))).toEqual([['1', 'two\nlines']]);
  });
});
