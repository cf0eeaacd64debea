/**
 * The files of a pack source, as someone else may hand them over: links that lead out of the
 * folder, files that are not files, text that is not UTF-8, iqp.json that is not JSON. Each is
 * refused with its code and its place, nothing is read through a link, and nothing is written.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp, tempDir } from '../e2e/helpers.js';
import { buildRefused, templateSource } from './source-helpers.js';

const SECRET = 'SECRET-ADMIN-TOKEN-7f3a';

/** A file outside the source whose first line must never be echoed. */
function secretFile(): string {
  const path = join(tempDir('iqp-secret-'), 'token.txt');
  writeFileSync(path, `${SECRET}\nmore\n`);
  return path;
}

/** Replaces `rel` in the source with a symbolic link to `target`. */
function link(dir: string, rel: string, target: string): void {
  rmSync(join(dir, rel), { recursive: true, force: true });
  symlinkSync(target, join(dir, rel));
}

function refused(dir: string, args: string[], code: string) {
  return buildRefused(dir, code, { args, never: SECRET });
}

describe('links and other non-files in a source are refused without being followed', () => {
  it.each([
    ['a data file', 'data/translations.jsonl'],
    ['a CSV data file', 'data/surahs.csv'],
    ['iqp.json', 'iqp.json'],
    ['schema.sql', 'schema.sql'],
  ])('%s that is a symbolic link to a file outside the source', async (_name, rel) => {
    const dir = templateSource();
    link(dir, rel, secretFile());
    const err = await refused(dir, [], 'IQP_E_SOURCE_SYMLINK');
    expect(err.message).toContain(rel);
    expect(err.details).toMatchObject({ file: rel });
  });

  it('a data folder that is a symbolic link', async () => {
    const dir = templateSource();
    const elsewhere = join(tempDir('iqp-elsewhere-'), 'data');
    renameSync(join(dir, 'data'), elsewhere);
    symlinkSync(elsewhere, join(dir, 'data'));
    const err = await refused(dir, [], 'IQP_E_SOURCE_SYMLINK');
    expect(err.details).toMatchObject({ file: 'data' });
  });

  it('a link to a file inside the source, too (a link is never read)', async () => {
    const dir = templateSource();
    cpSync(join(dir, 'data/footnotes.jsonl'), join(dir, 'notes.jsonl'));
    link(dir, 'data/footnotes.jsonl', '../notes.jsonl');
    await refused(dir, [], 'IQP_E_SOURCE_SYMLINK');
  });

  it('iqp.json that is a link, with --content', async () => {
    const dir = templateSource();
    link(dir, 'iqp.json', secretFile());
    execFileSync('sqlite3', [join(dir, 'c.sqlite'), 'CREATE TABLE t (a);']);
    await refused(dir, ['--content', 'c.sqlite'], 'IQP_E_SOURCE_SYMLINK');
  });

  it('a data file that is a named pipe (reading it would wait forever)', async () => {
    const dir = templateSource();
    execFileSync('mkfifo', [join(dir, 'data/verses.jsonl')]);
    const err = await refused(dir, [], 'IQP_E_SOURCE_CONFIG');
    expect(err.message).toContain('data/verses.jsonl');
  });

  it('a data entry that is a folder', async () => {
    const dir = templateSource();
    mkdirSync(join(dir, 'data/verses.jsonl'));
    writeFileSync(join(dir, 'data/verses.jsonl/x'), '');
    await refused(dir, [], 'IQP_E_SOURCE_CONFIG');
  });
});

describe('text that is not UTF-8 is refused where it stands, never replaced', () => {
  it('iqp.json: IQP_E_SOURCE_CONFIG with the line and column of the bad byte', async () => {
    const dir = templateSource();
    const text = readFileSync(join(dir, 'iqp.json'), 'utf8');
    const at = text.indexOf('Example English');
    const line = text.slice(0, at).split('\n').length;
    const column = at - text.lastIndexOf('\n', at - 1);
    writeFileSync(join(dir, 'iqp.json'), Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xe9]), Buffer.from(text.slice(at))]));
    const err = await refused(dir, [], 'IQP_E_SOURCE_CONFIG');
    expect(err.message).toContain(`iqp.json:${line}:${column}:`);
    expect(err.message).toContain('UTF-8');
    expect(err.details).toMatchObject({ file: 'iqp.json', line, column });
  });

  it('schema.sql: IQP_E_SCHEMA_SQL with the line and column of the bad byte', async () => {
    const dir = templateSource();
    writeFileSync(join(dir, 'schema.sql'), Buffer.concat([Buffer.from(`${readFileSync(join(dir, 'schema.sql'), 'utf8')}\n-- caf`), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
    const lines = readFileSync(join(dir, 'schema.sql'), 'latin1').split('\n');
    const err = await refused(dir, [], 'IQP_E_SCHEMA_SQL');
    expect(err.details).toMatchObject({ file: 'schema.sql', line: lines.length - 1, column: 7 });
  });

  it('a data file: IQP_E_DATA_PARSE with the line and column (also in the JSONL reader)', async () => {
    const dir = templateSource();
    writeFileSync(join(dir, 'data/translations.jsonl'), Buffer.concat([Buffer.from('{"surah":1,"ayah":1,"text":"a"}\n{"surah":1,"ayah":2,"text":"'), Buffer.from([0xf0, 0x28, 0x8c, 0x28]), Buffer.from('"}\n')]));
    const err = await refused(dir, [], 'IQP_E_DATA_PARSE');
    expect(err.details).toMatchObject({ file: 'data/translations.jsonl', line: 2, column: 29 });
  });
});

describe('iqp.json that is not JSON is located by line and column', () => {
  it.each([
    ['a missing comma', (t: string) => t.replace('"version": "1.0.0",', '"version": "1.0.0"'), '"language_code"'],
    ['a trailing comma', (t: string) => t.replace(/"\n}\s*$/, '",\n}\n'), '}'],
    ['a single-quoted string', (t: string) => t.replace('"en"', "'en'"), "'en'"],
  ])('%s', async (_name, edit, marker) => {
    const dir = templateSource();
    const text = edit(readFileSync(join(dir, 'iqp.json'), 'utf8'));
    writeFileSync(join(dir, 'iqp.json'), text);
    const at = marker === '}' ? text.lastIndexOf('}') : text.indexOf(marker);
    const line = text.slice(0, at).split('\n').length;
    const column = at - text.lastIndexOf('\n', at - 1);
    for (const args of [[], ['--content', 'missing.sqlite']]) {
      const err = await refused(dir, args, 'IQP_E_SOURCE_CONFIG');
      expect(err.message).toContain(`iqp.json:${line}:${column}:`);
      expect(err.details).toMatchObject({ file: 'iqp.json', line, column });
    }
  });

  it('a byte order mark at the start is accepted (editors write one)', async () => {
    const dir = templateSource();
    writeFileSync(join(dir, 'iqp.json'), `\ufeff${readFileSync(join(dir, 'iqp.json'), 'utf8')}`);
    const r = await iqp(['build', '.', '--unsigned', '--out', 'p.iqp', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
  });
});
