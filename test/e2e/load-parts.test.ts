/**
 * Big data files load on several threads (the main thread and workers, each a part of the file)
 * and must give exactly the pack one thread gives; where a part cannot be loaded apart, or a row
 * is bad, the build behaves as on one thread. Files here are just over the size that is split
 * (two parts of 16 MiB plus the first part's 2 MiB head start).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EPOCH, iqp, listTree, tempDir, TEMPLATES } from './helpers.js';

const BIG = 36 * 1024 * 1024;

const EXTRA_TABLES = `
CREATE TABLE notes (
  id   INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  body TEXT NOT NULL CHECK (length(body) > 0)
);
CREATE TABLE glossary (
  term TEXT NOT NULL UNIQUE,
  body TEXT NOT NULL
);
CREATE INDEX notes_by_kind ON notes (kind, id);
`;

/** A translation pack source with two more tables, notes (rowid alias) and glossary (plain rowid, UNIQUE term). */
function source(): string {
  const dir = join(tempDir(), 'src');
  cpSync(join(TEMPLATES, 'translation'), dir, { recursive: true });
  writeFileSync(join(dir, 'schema.sql'), readFileSync(join(dir, 'schema.sql'), 'utf8') + EXTRA_TABLES);
  return dir;
}

const filler = 'Notes are long enough that a few hundred thousand of them make a file worth splitting.';

/** data/notes.jsonl of at least BIG bytes: line n is id n, unless `line` says otherwise. Returns the number of lines. */
function writeNotes(dir: string, line: (n: number) => string | null = () => null): number {
  const lines: string[] = [];
  let size = 0;
  for (let n = 1; size < BIG; n++) {
    const text = line(n) ?? JSON.stringify({ id: n, kind: `k${n % 7}`, body: `${n} ${filler}` });
    lines.push(text);
    size += Buffer.byteLength(text) + 1;
  }
  writeFileSync(join(dir, 'data', 'notes.jsonl'), `${lines.join('\n')}\n`);
  return lines.length;
}

/** data/glossary.csv of at least BIG bytes; `body(n, size)` is record n's second field as written, `size` the bytes before it. */
function writeGlossary(dir: string, body: (n: number, size: number) => string = (n) => `"${n}, quoted: ""${filler}"""`): void {
  const records = ['term,body'];
  let size = 0;
  for (let n = 1; size < BIG; n++) {
    const record = `term${String(n).padStart(7, '0')},${body(n, size)}`;
    records.push(record);
    size += Buffer.byteLength(record) + 1;
  }
  writeFileSync(join(dir, 'data', 'glossary.csv'), `${records.join('\n')}\n`);
}

/** Builds with its own TMPDIR, and checks that nothing is left there (the parts' databases included). */
async function build(dir: string, threads: number, out: string) {
  const tmp = join(dir, '..', `tmp-${threads}`);
  mkdirSync(tmp, { recursive: true });
  const r = await iqp(['build', '.', '--unsigned', '--threads', String(threads), '--out', out, '--json'], { cwd: dir, env: { SOURCE_DATE_EPOCH: EPOCH, TMPDIR: tmp }, timeoutMs: 120_000 });
  expect(listTree(tmp), 'temporary files left behind').toEqual([]);
  return r;
}

async function builtOn(dir: string, threads: number): Promise<{ sha256: string; rows: number; threads: number }> {
  const r = await build(dir, threads, `t${threads}.iqp`);
  expect(r.code, r.stderr).toBe(0);
  const j = r.json();
  return { sha256: j.sha256, rows: j.rows_loaded, threads: j.load_threads };
}

describe('iqp build: big data files load in parts, with the result of one thread', () => {
  it('a big JSONL file (INTEGER PRIMARY KEY) and a big CSV file (UNIQUE column) load on two threads into the very same pack', async () => {
    const dir = source();
    const notes = writeNotes(dir);
    writeGlossary(dir);
    const two = await builtOn(dir, 2);
    const one = await builtOn(dir, 1);
    expect(two.threads).toBe(2);
    expect(one.threads).toBe(1);
    expect(two.rows).toBe(one.rows);
    expect(two.rows).toBeGreaterThan(notes);
    expect(two.sha256).toBe(one.sha256);
  });

  it('rows of a later part without the INTEGER PRIMARY KEY: the load starts again on one thread (rowids as one thread gives them)', async () => {
    const dir = source();
    // Every 1000th row in the second half leaves its id to SQLite, which gives the largest id so
    // far plus one: one billion and up, for a row of the first part has that id.
    const total = writeNotes(dir);
    writeNotes(dir, (n) => {
      if (n === 3) return JSON.stringify({ id: 1e9, kind: 'big', body: 'the largest id' });
      return n > total / 2 + 100 && n % 1000 === 0 ? JSON.stringify({ kind: 'auto', body: `row ${n}` }) : null;
    });
    const two = await builtOn(dir, 2);
    const one = await builtOn(dir, 1);
    expect(two.sha256).toBe(one.sha256);
    expect(two.threads).toBe(1);
  });

  it('a CSV file whose quoted fields span lines, so that the cut falls inside a record: the load starts again on one thread', async () => {
    const dir = source();
    // One record from 40 % to 65 % of the file, a quoted field of many lines: every line break
    // there is inside it, so a cut near the middle falls inside the record.
    let long = false;
    writeGlossary(dir, (n, size) => {
      if (long || size < BIG * 0.4) return `"${n}, one line"`;
      long = true;
      return `"${Array(Math.floor((BIG * 0.25) / 36)).fill('a line of a long, quoted CSV field.').join('\n')}"`;
    });
    const two = await builtOn(dir, 2);
    const one = await builtOn(dir, 1);
    expect(two.sha256).toBe(one.sha256);
    expect(two.threads).toBe(1);
  });

  describe('a bad row is reported as one thread reports it: the first in the file, with its line', () => {
    const late = (total: number): number => Math.floor(total * 0.8);
    const cases: Array<[string, (total: number) => (n: number) => string | null, string, (total: number) => RegExp]> = [
      ['a CHECK violation in a later part', (t) => (n) => (n === late(t) ? JSON.stringify({ id: n, kind: 'k', body: '' }) : null), 'IQP_E_DATA_ROW', (t) => new RegExp(`notes\\.jsonl:${late(t)}: .*CHECK`)],
      ['a key that repeats one from the first part', (t) => (n) => (n === late(t) ? JSON.stringify({ id: 5, kind: 'k', body: 'again' }) : null), 'IQP_E_DATA_ROW', (t) => new RegExp(`notes\\.jsonl:${late(t)}: .*UNIQUE`)],
      ['a line that is not JSON in a later part', (t) => (n) => (n === late(t) ? '{"id": 1,' : null), 'IQP_E_DATA_PARSE', (t) => new RegExp(`notes\\.jsonl:${late(t)}:\\d+: invalid JSON`)],
      [
        'a bad row in the first part and another in a later one',
        (t) => (n) => (n === 1000 ? JSON.stringify({ id: n, kind: null, body: 'x' }) : n === late(t) ? '{' : null),
        'IQP_E_DATA_ROW',
        () => /notes\.jsonl:1000: .*NOT NULL/,
      ],
    ];
    it.each(cases)('%s', async (_name, bad, code, where) => {
      const dir = source();
      const total = writeNotes(dir);
      writeNotes(dir, bad(total));
      const r = await build(dir, 2, 'bad.iqp');
      expect(r.code, r.stdout).not.toBe(0);
      const err = r.json().error;
      expect(err.code).toBe(code);
      expect(err.message).toMatch(where(total));
      expect(existsSync(join(dir, 'bad.iqp')), 'a pack was written').toBe(false);
      const one = await build(dir, 1, 'bad.iqp');
      expect(one.json().error).toEqual(err);
    });
  });
});
