/**
 * Data files built to exhaust the builder: rows nested deeper than any reader should follow,
 * lines and CSV records far longer than a row. Each is refused with IQP_E_DATA_PARSE at its line
 * and column, in bounded memory, and nothing is written.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp, sh } from '../e2e/helpers.js';
import { buildRefused, templateSource } from './source-helpers.js';

const MiB = 1024 * 1024;

function refused(dir: string, args: string[], env: Record<string, string> = {}) {
  return buildRefused(dir, 'IQP_E_DATA_PARSE', { args, env });
}

describe('nesting', () => {
  it('a JSONL row nested 100,000 deep is refused at the line and column where it passes 1,000 levels', async () => {
    const dir = templateSource();
    const prefix = '{"surah":1,"ayah":2,"text":';
    writeFileSync(join(dir, 'data/translations.jsonl'), `{"surah":1,"ayah":1,"text":"a"}\n${prefix}${'['.repeat(100_000)}${']'.repeat(100_000)}}\n`);
    const err = await refused(dir, []);
    // The row object is level 1, so the 999th bracket is level 1,000 and the next one too deep.
    const column = prefix.length + 1000;
    expect(err.details).toEqual({ file: 'data/translations.jsonl', line: 2, column });
    expect(err.message).toContain(`data/translations.jsonl:2:${column}: `);
  });

  it('brackets inside strings are not nesting, and JSON nested within the limit is stored as JSON text', async () => {
    const dir = templateSource();
    const deep = `${'['.repeat(999)}${']'.repeat(999)}`;
    writeFileSync(join(dir, 'data/translations.jsonl'), `{"surah":1,"ayah":1,"text":"${'['.repeat(5000)}"}\n{"surah":1,"ayah":2,"text":${deep}}\n`);
    writeFileSync(join(dir, 'data/footnotes.jsonl'), '');
    const r = await iqp(['build', '.', '--unsigned', '--out', 'p.iqp', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
    sh('mkdir', ['x'], dir);
    sh('tar', ['--zstd', '-xf', 'p.iqp', '-C', 'x'], dir);
    expect(sh('sqlite3', ['x/content.sqlite', 'SELECT json_valid(text) FROM translations WHERE ayah = 2'], dir).stdout.trim()).toBe('1');
  });
});

describe('line and record length', () => {
  it('a JSONL line longer than --max-line-bytes is refused at its line, at the first byte past the limit', async () => {
    const dir = templateSource();
    writeFileSync(join(dir, 'data/translations.jsonl'), `{"surah":1,"ayah":1,"text":"a"}\n{"surah":1,"ayah":2,"text":"b"}\n{"surah":1,"ayah":3,"text":"${'x'.repeat(5000)}"}\n`);
    const err = await refused(dir, ['--max-line-bytes', '4096']);
    expect(err.details).toEqual({ file: 'data/translations.jsonl', line: 3, column: 4097 });
    expect(err.message).toContain('--max-line-bytes');
  });

  it('the default limit (16 MiB) stops a 64 MiB line before it is held in memory', async () => {
    const dir = templateSource();
    writeFileSync(join(dir, 'data/translations.jsonl'), `{"surah":1,"ayah":1,"text":"${'x'.repeat(64 * MiB)}"}\n`);
    // Far less heap than the line (and JSON.parse's copy of it) would take.
    const err = await refused(dir, [], { NODE_OPTIONS: '--max-old-space-size=96' });
    expect(err.details).toEqual({ file: 'data/translations.jsonl', line: 1, column: 16 * MiB + 1 });
  });

  it('a CSV line longer than the limit is refused, and so is a CSV record whose quoted field spreads over many short lines', async () => {
    const dir = templateSource();
    const header = readFileSync(join(dir, 'data/surahs.csv'), 'utf8').split('\n')[0];
    writeFileSync(join(dir, 'data/surahs.csv'), `${header}\n1,a,b,,7,\n2,${'y'.repeat(5000)},b,,7,\n`);
    const long = await refused(dir, ['--max-line-bytes', '4096']);
    expect(long.details).toEqual({ file: 'data/surahs.csv', line: 3, column: 4097 });
    writeFileSync(join(dir, 'data/surahs.csv'), `${header}\n1,a,b,,7,\n2,"${'line\n'.repeat(2000)}",b,,7,\n`);
    const record = await refused(dir, ['--max-line-bytes', '4096']);
    expect(record.details).toMatchObject({ file: 'data/surahs.csv', line: 3 });
    expect(record.message).toContain('record');
  });

  it.each([['0'], ['-5'], ['1.5'], ['lots']])('--max-line-bytes %s is a usage error', async (value) => {
    const dir = templateSource();
    const r = await iqp(['build', '.', '--unsigned', '--json', '--max-line-bytes', value], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.json().error.code).toBe('IQP_E_USAGE');
  });
});
