/**
 * Every error about a pack source names the place to fix: the file, the line, and the column
 * where there is one. These are the errors that used to name none (or the wrong one).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildRefused, templateSource } from './source-helpers.js';

describe('errors name their place', () => {
  it('a CSV header naming a column the table lacks: line 1 (the header) and the column of the name', async () => {
    const dir = templateSource();
    const text = readFileSync(join(dir, 'data/surahs.csv'), 'utf8').replace('name_transliterated', 'name_transliteratd');
    writeFileSync(join(dir, 'data/surahs.csv'), text);
    const err = await buildRefused(dir, 'IQP_E_DATA_ROW');
    const column = text.indexOf('name_transliteratd') + 1;
    expect(err.details).toEqual({ file: 'data/surahs.csv', line: 1, column });
    expect(err.message).toContain(`data/surahs.csv:1:${column}: `);
    expect(err.message).toContain('"name_transliteratd"');
  });

  it('a CSV header that names a column twice: the second one', async () => {
    const dir = templateSource();
    const header = 'number,name_arabic,number';
    writeFileSync(join(dir, 'data/surahs.csv'), `${header}\n1,a,2\n`);
    const err = await buildRefused(dir, 'IQP_E_DATA_PARSE');
    expect(err.details).toEqual({ file: 'data/surahs.csv', line: 1, column: header.lastIndexOf('number') + 1 });
  });

  it('a foreign key to nothing in a WITHOUT ROWID table: the line of the row', async () => {
    const dir = templateSource();
    writeFileSync(
      join(dir, 'data/footnotes.jsonl'),
      '{"surah":1,"ayah":1,"number":1,"text":"fine"}\n\n{"surah":1,"ayah":99,"number":1,"text":"no such ayah"}\n{"surah":1,"ayah":1,"number":2,"text":"fine"}\n',
    );
    const err = await buildRefused(dir, 'IQP_E_DATA_ROW');
    expect(err.details).toMatchObject({ file: 'data/footnotes.jsonl', line: 3, table: 'footnotes' });
    expect(err.message).toContain('data/footnotes.jsonl:3: ');
    expect(err.message).toContain('translations');
  });

  it('a foreign key to nothing in a rowid table, from a CSV file: the line of the row', async () => {
    const dir = templateSource('deck');
    const lines = readFileSync(join(dir, 'data/cards.csv'), 'utf8').trimEnd().split('\n');
    lines.splice(4, 0, 'zz-001,no-such-deck,99,front,back,,');
    writeFileSync(join(dir, 'data/cards.csv'), `${lines.join('\n')}\n`);
    const err = await buildRefused(dir, 'IQP_E_DATA_ROW');
    expect(err.details).toMatchObject({ file: 'data/cards.csv', line: 5, table: 'cards' });
  });

  it('a foreign key to nothing in a WITHOUT ROWID table, from a CSV file: the line of the row', async () => {
    const dir = templateSource('dataset');
    const lines = readFileSync(join(dir, 'data/food_nutrients.csv'), 'utf8').trimEnd().split('\n');
    lines.splice(4, 0, `${lines[4]!.split(',')[0]},no_such_nutrient,1`);
    writeFileSync(join(dir, 'data/food_nutrients.csv'), `${lines.join('\n')}\n`);
    const err = await buildRefused(dir, 'IQP_E_DATA_ROW');
    expect(err.details).toMatchObject({ file: 'data/food_nutrients.csv', line: 5, table: 'food_nutrients' });
  });

  it('a value that is not an integer for an INTEGER PRIMARY KEY: the line and the column named', async () => {
    const dir = templateSource();
    writeFileSync(join(dir, 'schema.sql'), `${readFileSync(join(dir, 'schema.sql'), 'utf8')}\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n`);
    writeFileSync(join(dir, 'data/notes.csv'), 'body,id\na,1\nb,two\n');
    const err = await buildRefused(dir, 'IQP_E_DATA_ROW');
    expect(err.details).toMatchObject({ file: 'data/notes.csv', line: 3, column_name: 'id' });
    expect(err.message).toContain('data/notes.csv:3: ');
    expect(err.message).toContain('"id"');
  });
});
