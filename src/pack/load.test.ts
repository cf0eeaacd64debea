import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSource } from './load.js';
import type { PackSource } from './source.js';

const dir = mkdtempSync(join(tmpdir(), 'iqp-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every kind of declared type, by SQLite's affinity rules, in an ordinary and a STRICT table. */
const SCHEMA = `
CREATE TABLE t (n INTEGER, big BIGINT, r REAL, fl FLOAT, num NUMERIC, dec DECIMAL(10,2), txt TEXT, vc VARCHAR(10), b BLOB, none, an ANY);
CREATE TABLE s (n INTEGER, i INT, r REAL, txt TEXT, an ANY) STRICT;
`;

/** Text that looks more or less like a number. */
const TEXTS = ['7', '-7', '0', '-0', '007', '+7', ' 7', '7 ', '123456789012345', '-123456789012345', '1234567890123456', '99999999999999999999', '3.5', '1e3', '0x10', 'abc', ''];

function source(format: 'csv' | 'jsonl', tables: Record<string, string[]>): PackSource {
  const sub = mkdtempSync(join(dir, `${format}-`));
  const dataFiles = Object.entries(tables).map(([table, columns]) => {
    const path = join(sub, `${table}.${format}`);
    const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;
    const body =
      format === 'csv'
        ? [columns.join(','), ...TEXTS.map((v) => columns.map(() => quote(v)).join(','))].join('\n')
        : TEXTS.map((v) => JSON.stringify(Object.fromEntries(columns.map((c) => [c, v])))).join('\n');
    writeFileSync(path, `${body}\n`);
    return { table, path, file: `data/${table}.${format}`, format };
  });
  return {
    dir: sub,
    authored: { package_id: 'test.affinity', package_type: 'custom', version: '1.0.0', language_code: 'en', name: 'n', description: 'd', min_app_version: '1.0.0' },
    schemaSql: SCHEMA,
    dataFiles,
  } as unknown as PackSource;
}

/** typeof and quote() of every cell, row by row, in rowid order. */
function cells(db: Database.Database, table: string, columns: string[]): string[][] {
  const list = columns.map((c) => `typeof(${c}) || ':' || quote(${c})`).join(', ');
  return (db.prepare(`SELECT ${list} FROM ${table} ORDER BY rowid`).raw().all() as string[][]).map((r) => [...r]);
}

describe('loadSource binds text as SQLite itself would store it', () => {
  const T = ['n', 'big', 'r', 'fl', 'num', 'dec', 'txt', 'vc', 'b', 'none', 'an'];
  // STRICT INTEGER, INT and REAL refuse text that is not a number; those columns get only the
  // texts SQLite accepts there (checked below against SQLite itself).
  const S = ['txt', 'an'];

  it.each(['csv', 'jsonl'] as const)('%s: numbers written as text land in each kind of column exactly as the text would', async (format) => {
    const reference = new Database(':memory:');
    reference.exec(SCHEMA);
    const insertT = reference.prepare(`INSERT INTO t (${T.join(', ')}) VALUES (${T.map(() => '?').join(', ')})`);
    const insertS = reference.prepare(`INSERT INTO s (${S.join(', ')}) VALUES (${S.map(() => '?').join(', ')})`);
    for (const v of TEXTS) {
      insertT.run(T.map(() => v));
      insertS.run(S.map(() => v));
    }
    const out = join(dir, `${format}.sqlite`);
    const result = await loadSource(source(format, { t: T, s: S }), out, () => {}, { threads: 1 });
    expect(result.rows).toBe(2 * TEXTS.length);
    const built = new Database(out, { readonly: true });
    // CSV: an unquoted empty field is NULL, a quoted one '' (the reference binds '').
    expect(cells(built, 't', T)).toEqual(cells(reference, 't', T));
    expect(cells(built, 's', S)).toEqual(cells(reference, 's', S));
    // The plain integers really are integers, and the rest kept as SQLite converts them.
    expect(built.prepare("SELECT typeof(n), n FROM t WHERE rowid = 1").raw().get()).toEqual(['integer', 7]);
    expect(built.prepare("SELECT typeof(txt), txt FROM t WHERE rowid = 1").raw().get()).toEqual(['text', '7']);
    built.close();
  });

  it('STRICT integer columns take plain integers written as text, as SQLite does', async () => {
    const ints = ['7', '-7', '0', '123456789012345'];
    const sub = mkdtempSync(join(dir, 'strict-'));
    const path = join(sub, 's.csv');
    writeFileSync(path, `n,i,r\n${ints.map((v) => `${v},${v},${v}`).join('\n')}\n`);
    const src = { ...source('csv', {}), schemaSql: SCHEMA, dataFiles: [{ table: 's', path, file: 'data/s.csv', format: 'csv' }] } as unknown as PackSource;
    const out = join(dir, 'strict.sqlite');
    await loadSource(src, out, () => {}, { threads: 1 });
    const reference = new Database(':memory:');
    reference.exec(SCHEMA);
    const insert = reference.prepare('INSERT INTO s (n, i, r) VALUES (?, ?, ?)');
    for (const v of ints) insert.run(v, v, v);
    const built = new Database(out, { readonly: true });
    expect(cells(built, 's', ['n', 'i', 'r'])).toEqual(cells(reference, 's', ['n', 'i', 'r']));
    expect(cells(built, 's', ['n'])[0]).toEqual(['integer:7']);
    built.close();
  });
});
