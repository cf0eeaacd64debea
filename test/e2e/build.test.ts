import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEMPLATE_NAMES } from '../../src/pack/requirements.js';
import { EPOCH, iqp, listTree, sh, tempDir, TEMPLATES } from './helpers.js';

let keys: string;

beforeAll(async () => {
  keys = tempDir('iqp-keys-');
  const r = await iqp(['keygen', '--out', 'author', '--no-passphrase'], { cwd: keys });
  expect(r.code, r.stderr).toBe(0);
});

function source(template: string): string {
  const dir = join(tempDir(), template);
  cpSync(join(TEMPLATES, template), dir, { recursive: true });
  return dir;
}

describe('iqp build → standard tools', () => {
  it.each(TEMPLATE_NAMES)('a %s pack extracts with GNU tar + zstd, passes sha256sum -c, opens in sqlite3 and verifies with minisign -V', async (template) => {
    const dir = source(template);
    const r = await iqp(['build', dir, '--key', join(keys, 'author.key'), '--out', join(dir, 'out.iqp'), '--json'], { cwd: dir, env: { SOURCE_DATE_EPOCH: EPOCH } });
    expect(r.code, r.stderr).toBe(0);
    const built = r.json();
    const x = join(dir, 'x');
    mkdirSync(x);
    // Entries in format order, regular files only.
    const listing = sh('bash', ['-c', `zstd -dc ${join(dir, 'out.iqp')} | tar -tvf -`], dir);
    expect(listing.code, listing.stderr).toBe(0);
    const lines = listing.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).pop())).toEqual(['manifest.json', 'content.sqlite', 'checksums.sha256', 'manifest.json.minisig']);
    for (const l of lines) expect(l).toMatch(/^-rw-r--r-- 0\/0 /);
    expect(sh('tar', ['--zstd', '-xf', join(dir, 'out.iqp'), '-C', x], dir).code).toBe(0);
    const sums = sh('sha256sum', ['-c', 'checksums.sha256'], x);
    expect(sums.code, sums.stderr).toBe(0);
    expect(sums.stdout).toBe('manifest.json: OK\ncontent.sqlite: OK\n');
    const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual(built.manifest);
    expect(manifest.created_at).toBe('2026-01-01T00:00:00Z');
    const sqlite = sh('sqlite3', [join(x, 'content.sqlite'), 'PRAGMA integrity_check; PRAGMA journal_mode; PRAGMA page_size; PRAGMA application_id;'], x);
    expect(sqlite.stdout.trim().split('\n')).toEqual(['ok', 'delete', '4096', String(0x49515031)]);
    for (const table of manifest.tables) {
      const count = sh('sqlite3', [join(x, 'content.sqlite'), `SELECT count(*) FROM "${table.name}"`], x);
      expect(Number(count.stdout.trim())).toBe(table.row_count);
    }
    const mini = sh('minisign', ['-V', '-p', join(keys, 'author.pub'), '-m', 'manifest.json'], x);
    expect(mini.code, mini.stderr).toBe(0);
    expect(mini.stdout).toContain(`Trusted comment: iqp-pack package_id=${manifest.package_id} version=${manifest.version} manifest_sha256=`);
    // The archive's own hash is what the build reported.
    expect(sh('sha256sum', [join(dir, 'out.iqp')], dir).stdout.split(' ')[0]).toBe(built.sha256);
  });

  it('is reproducible: the same source and key give byte-identical packs, wherever they are built', async () => {
    const a = source('translation');
    const b = source('translation');
    const env = { SOURCE_DATE_EPOCH: EPOCH };
    const key = join(keys, 'author.key');
    expect((await iqp(['build', a, '--key', key, '--out', join(a, 'p.iqp')], { cwd: a, env })).code).toBe(0);
    expect((await iqp(['build', '.', '--key', key, '--out', 'p.iqp', '--level', '6'], { cwd: b, env })).code).toBe(0);
    const first = readFileSync(join(a, 'p.iqp'));
    expect(readFileSync(join(b, 'p.iqp')).equals(first)).toBe(true);
    // A different time is a different pack.
    expect((await iqp(['build', a, '--key', key, '--out', join(a, 'q.iqp')], { cwd: a, env: { SOURCE_DATE_EPOCH: '1767225601' } })).code).toBe(0);
    expect(readFileSync(join(a, 'q.iqp')).equals(first)).toBe(false);
  });

  it('packs a prebuilt database with --content, and builds unsigned only when asked', async () => {
    const dir = source('deck');
    const db = join(dir, 'prebuilt.sqlite');
    expect(sh('sqlite3', [db, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('a'),('b'),('c');"], dir).code).toBe(0);
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8')), package_type: 'notes' }));
    const r = await iqp(['build', '.', '--content', db, '--unsigned', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.signer_key_id).toBeNull();
    expect(out.manifest.tables).toEqual([{ name: 'notes', row_count: 3, columns: ['id', 'body'] }]);
    const v = await iqp(['verify', out.path, '--json'], { cwd: dir });
    expect(v.code).toBe(1);
    expect(v.json().error.code).toBe('IQP_E_PACK_UNSIGNED');
    const ok = await iqp(['verify', out.path, '--allow-unsigned', '--json'], { cwd: dir });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.json().signer_key_id).toBeNull();
  });

  it('uses a key made by minisign -G, and its signature verifies with both tools', async () => {
    const dir = source('recitation');
    expect(sh('minisign', ['-G', '-W', '-p', 'mini.pub', '-s', 'mini.key'], dir).code).toBe(0);
    const r = await iqp(['build', '.', '--key', 'mini.key', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const v = await iqp(['verify', r.json().path, '--pubkey', 'mini.pub', '--json'], { cwd: dir });
    expect(v.code, v.stdout).toBe(0);
    const x = join(dir, 'x');
    mkdirSync(x);
    sh('tar', ['--zstd', '-xf', r.json().path, '-C', x], dir);
    expect(sh('minisign', ['-V', '-p', join(dir, 'mini.pub'), '-m', 'manifest.json'], x).code).toBe(0);
  });

  it('decrypts a passphrase-protected key from IQP_PASSPHRASE, and refuses a wrong one', async () => {
    const dir = source('deck');
    expect((await iqp(['keygen', '--out', 'k'], { cwd: dir, env: { IQP_PASSPHRASE: 's3cret' } })).code).toBe(0);
    const wrong = await iqp(['build', '.', '--key', 'k.key', '--json'], { cwd: dir, env: { IQP_PASSPHRASE: 'nope' } });
    expect(wrong.code).toBe(2);
    expect(wrong.json().error.code).toBe('IQP_E_KEY_PASSPHRASE');
    const none = await iqp(['build', '.', '--key', 'k.key', '--json'], { cwd: dir });
    expect(none.json().error.code).toBe('IQP_E_PASSPHRASE_REQUIRED');
    expect(listTree(dir).filter((p) => p.endsWith('.iqp'))).toEqual([]);
    const ok = await iqp(['build', '.', '--key', 'k.key'], { cwd: dir, env: { IQP_PASSPHRASE: 's3cret' } });
    expect(ok.code, ok.stderr).toBe(0);
  }, 60_000);

  it('takes the key from IQP_KEY or the config file, flag first', async () => {
    const dir = source('deck');
    const viaEnv = await iqp(['build', '.', '--json'], { cwd: dir, env: { IQP_KEY: join(keys, 'author.key') } });
    expect(viaEnv.code, viaEnv.stdout).toBe(0);
    writeFileSync(join(dir, 'iqp.config.json'), JSON.stringify({ key: join(keys, 'author.key'), level: 3 }));
    const viaFile = await iqp(['build', '.', '--json'], { cwd: dir });
    expect(viaFile.code, viaFile.stdout).toBe(0);
    expect(viaFile.json().level).toBe(3);
    expect((await iqp(['build', '.', '--json', '--level', '9'], { cwd: dir })).json().level).toBe(9);
    expect((await iqp(['build', '.', '--json'], { cwd: dir, env: { IQP_LEVEL: '4' } })).json().level).toBe(4);
  });
});

const SURAHS_HEADER = 'number,name_arabic,name_transliterated,name_translated,ayah_count,revelation_place';

describe('iqp build: bad input gets a coded error naming the place, and no pack is written', () => {
  const cases: Array<[string, (dir: string) => void, string, RegExp?]> = [
    ['a JSONL line that is not JSON', (d) => writeFileSync(join(d, 'data/translations.jsonl'), '{"surah":1,"ayah":1,"text":"a"}\n{"surah":1, "ayah":2 "text":"b"}\n'), 'IQP_E_DATA_PARSE', /data\/translations\.jsonl:2:\d+/],
    ['a JSONL line that is an array', (d) => writeFileSync(join(d, 'data/translations.jsonl'), '[1,2]\n'), 'IQP_E_DATA_PARSE', /translations\.jsonl:1:1/],
    ['a CSV row with too few fields', (d) => writeFileSync(join(d, 'data/surahs.csv'), 'number,name_arabic,name_transliterated,name_translated,ayah_count,revelation_place\n1,الفاتحة,Al-Fatihah\n'), 'IQP_E_DATA_PARSE', /surahs\.csv:2:1/],
    ['a CSV quote left open', (d) => writeFileSync(join(d, 'data/surahs.csv'), 'number,name_arabic\n1,"open\n'), 'IQP_E_DATA_PARSE', /surahs\.csv:2:3: a quoted field is never closed/],
    // The file ends inside the field: the place to look is its opening quote, not the record's start.
    ['a CSV quote left open in the last record, lines after it', (d) => writeFileSync(join(d, 'data/surahs.csv'), 'number,name_arabic\n1,ok\n2,x,"open\nmore\n'), 'IQP_E_DATA_PARSE', /surahs\.csv:3:5: a quoted field is never closed/],
    [
      'a CSV quote left open, closed by the next line’s first quote',
      (d) => writeFileSync(join(d, 'data/surahs.csv'), `${SURAHS_HEADER}\n1,الفاتحة,Al-Fatiha,"The Opening,7,makkah\n112,الإخلاص,Al-Ikhlas,"Sincerity",4,makkah\n`),
      'IQP_E_DATA_PARSE',
      /surahs\.csv:3:24: text after the closing quote of a field.* line 2, column 21/,
    ],
    ['a stray quote in a CSV field', (d) => writeFileSync(join(d, 'data/surahs.csv'), 'number,name_arabic\n1,ab"c\n'), 'IQP_E_DATA_PARSE', /surahs\.csv:2:5/],
    ['an unknown column', (d) => writeFileSync(join(d, 'data/translations.jsonl'), '{"surah":1,"ayah":1,"txt":"a"}\n'), 'IQP_E_DATA_ROW', /translations\.jsonl:1: .*"txt"/],
    ['a NOT NULL violation', (d) => writeFileSync(join(d, 'data/translations.jsonl'), '{"surah":1,"ayah":1,"text":null}\n'), 'IQP_E_DATA_ROW', /translations\.jsonl:1: .*NOT NULL/],
    ['a wrong type in a STRICT table', (d) => writeFileSync(join(d, 'data/translations.jsonl'), '{"surah":"one","ayah":1,"text":"a"}\n'), 'IQP_E_DATA_ROW', /translations\.jsonl:1:/],
    ['a duplicate primary key', (d) => writeFileSync(join(d, 'data/translations.jsonl'), '{"surah":1,"ayah":1,"text":"a"}\n{"surah":1,"ayah":1,"text":"b"}\n'), 'IQP_E_DATA_ROW', /translations\.jsonl:2:/],
    ['a data file for no table', (d) => writeFileSync(join(d, 'data/verses.jsonl'), '{"a":1}\n'), 'IQP_E_DATA_TABLE_UNKNOWN', /verses/],
    ['two data files for one table', (d) => writeFileSync(join(d, 'data/surahs.jsonl'), '{}\n'), 'IQP_E_SOURCE_CONFIG'],
    ['a data file of another kind', (d) => writeFileSync(join(d, 'data/notes.txt'), 'x'), 'IQP_E_SOURCE_CONFIG'],
    ['schema.sql that fails', (d) => writeFileSync(join(d, 'schema.sql'), '-- surahs\n\nCREATE TABLE surahs (number INTEGER PRIMARY KEY,;'), 'IQP_E_SCHEMA_SQL', /schema\.sql:3: /],
    ['a missing required table', (d) => writeFileSync(join(d, 'schema.sql'), readFileSync(join(d, 'schema.sql'), 'utf8').replace(/CREATE TABLE footnotes[\s\S]*?\) STRICT;/, '').replace(/CREATE TABLE translations/, 'CREATE TABLE ayat')), 'IQP_E_DATA_TABLE_UNKNOWN'],
    ['a missing iqp.json', (d) => rmSync(join(d, 'iqp.json')), 'IQP_E_SOURCE_MISSING'],
    ['iqp.json that is not JSON', (d) => writeFileSync(join(d, 'iqp.json'), '{ "package_id": '), 'IQP_E_SOURCE_CONFIG'],
    ['an unknown iqp.json field', (d) => patch(d, { colour: 'red' }), 'IQP_E_SOURCE_CONFIG', /colour/],
    ['a bad version', (d) => patch(d, { version: '1.0' }), 'IQP_E_MANIFEST_SEMVER', /version/],
    ['a bad min_app_version', (d) => patch(d, { min_app_version: 'v2' }), 'IQP_E_MANIFEST_SEMVER', /min_app_version/],
    ['a bad language code', (d) => patch(d, { language_code: 'en_US' }), 'IQP_E_MANIFEST_LANGUAGE'],
    ['a bad package id', (d) => patch(d, { package_id: 'Has Spaces' }), 'IQP_E_SOURCE_CONFIG', /package_id "Has Spaces"/],
    ['a foreign key to nothing', (d) => writeFileSync(join(d, 'data/footnotes.jsonl'), '{"surah":99,"ayah":1,"number":1,"text":"x"}\n'), 'IQP_E_DATA_ROW', /foreign key/],
    // Rows go into SQLite many to a statement: the error still names the row, wherever it falls.
    ['a duplicate key deep inside a long file', (d) => writeFileSync(join(d, 'data/translations.jsonl'), longTranslations(200, { 150: '{"surah":1,"ayah":10,"text":"again"}' })), 'IQP_E_DATA_ROW', /translations\.jsonl:150: .*UNIQUE/],
    [
      'a duplicate deep inside a long file, in a table whose key says ON CONFLICT FAIL (which keeps earlier rows of a failed statement)',
      (d) => {
        const schema = readFileSync(join(d, 'schema.sql'), 'utf8');
        const failing = schema.replace('PRIMARY KEY (surah, ayah)\n) STRICT, WITHOUT ROWID;', 'PRIMARY KEY (surah, ayah) ON CONFLICT FAIL\n) STRICT, WITHOUT ROWID;');
        if (failing === schema) throw new Error('the translation template no longer has the key this case marks ON CONFLICT FAIL');
        writeFileSync(join(d, 'schema.sql'), failing);
        writeFileSync(join(d, 'data/translations.jsonl'), longTranslations(200, { 150: '{"surah":1,"ayah":10,"text":"again"}' }));
      },
      'IQP_E_DATA_ROW',
      /translations\.jsonl:150: .*UNIQUE/,
    ],
    [
      'a CHECK violation among rows whose keys come in varying orders',
      (d) => writeFileSync(join(d, 'data/translations.jsonl'), longTranslations(260, { 201: '{"text":"   ","ayah":201,"surah":1}' }, 3)),
      'IQP_E_DATA_ROW',
      /translations\.jsonl:201: .*CHECK/,
    ],
  ];

  /** `rows` JSONL rows of surah 1, ayah = line, with some lines replaced; every `reorderEvery`th row lists its keys in another order. */
  function longTranslations(rows: number, replace: Record<number, string>, reorderEvery = 0): string {
    const lines = Array.from({ length: rows }, (_, i) => {
      const line = i + 1;
      if (replace[line]) return replace[line];
      return reorderEvery && line % reorderEvery === 0 ? `{"ayah":${line},"text":"t${line}","surah":1}` : `{"surah":1,"ayah":${line},"text":"t${line}"}`;
    });
    return `${lines.join('\n')}\n`;
  }

  function patch(dir: string, fields: Record<string, unknown>): void {
    const p = join(dir, 'iqp.json');
    writeFileSync(p, JSON.stringify({ ...JSON.parse(readFileSync(p, 'utf8')), ...fields }));
  }

  it('every mistake in iqp.json is bad source data: exit 1, as the other data errors', async () => {
    for (const fields of [{ package_id: 'Has Spaces' }, { package_type: 'Translation' }, { version: '1.0' }, { language_code: 'en_US' }, { name: ' ' }, { colour: 'red' }]) {
      const dir = source('translation');
      patch(dir, fields);
      const r = await iqp(['build', '.', '--unsigned', '--json'], { cwd: dir });
      const field = Object.keys(fields)[0];
      expect({ field, exit: r.code }, r.stdout).toEqual({ field, exit: 1 });
    }
  });

  it.each(cases)('%s', async (_name, mutate, code, where) => {
    const dir = source('translation');
    mutate(dir);
    const before = listTree(dir);
    const r = await iqp(['build', '.', '--key', join(keys, 'author.key'), '--json'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    const err = r.json().error;
    expect(err.code, JSON.stringify(err)).toBe(code);
    if (where) expect(err.message).toMatch(where);
    expect(err.hint).toBeTruthy();
    expect(listTree(dir)).toEqual(before);
  });

  it('a missing key is a usage error (exit 2) naming --key and --unsigned', async () => {
    const dir = source('deck');
    const r = await iqp(['build', '.'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('IQP_E_KEY_REQUIRED');
    expect(r.stderr).toContain('--unsigned');
    expect(listTree(dir).some((p) => p.endsWith('.iqp'))).toBe(false);
  });

  it('an interrupted build leaves no partial pack and no temp files', async () => {
    const dir = source('dataset');
    // Enough rows that the build is still loading when it is interrupted.
    const rows: string[] = [];
    for (let i = 0; i < 2_000_000; i++) rows.push(`{"id":${i + 1000},"food_id":1,"nutrient_id":1,"amount":${i}}`);
    writeFileSync(join(dir, 'data', 'zz_bulk.jsonl'), rows.join('\n'));
    writeFileSync(join(dir, 'schema.sql'), `${readFileSync(join(dir, 'schema.sql'), 'utf8')}\nCREATE TABLE zz_bulk (id INTEGER PRIMARY KEY, food_id INTEGER, nutrient_id INTEGER, amount REAL) STRICT;\n`);
    const { spawn } = await import('node:child_process');
    const { BIN, baseEnv } = await import('./helpers.js');
    const tmp = tempDir('iqp-tmp-');
    const child = spawn(process.execPath, [BIN, 'build', '.', '--unsigned'], { cwd: dir, env: baseEnv({ TMPDIR: tmp }), stdio: 'ignore' });
    const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    // Interrupt once the build is writing its content database (the watcher's event), not after a guessed delay.
    const { watch } = await import('node:fs');
    await new Promise<void>((resolve) => {
      const watcher = watch(tmp, { recursive: true }, (_event, name) => {
        if (String(name ?? '').endsWith('content.sqlite')) {
          watcher.close();
          resolve();
        }
      });
      if (listTree(tmp).some((p) => p.endsWith('content.sqlite'))) {
        watcher.close();
        resolve();
      }
    });
    child.kill('SIGTERM');
    expect(await closed).toBe(143);
    expect(listTree(dir).filter((p) => p.includes('.iqp'))).toEqual([]);
    expect(listTree(tmp)).toEqual([]);
    expect(existsSync(join(dir, 'example.dataset.foods-1.0.0.iqp'))).toBe(false);
  });
});

describe('iqp build: content rules hold whatever the source says', () => {
  it('binds JSONL integers exactly: 7 in a TEXT column is "7", not "7.0"', async () => {
    const dir = source('translation');
    writeFileSync(join(dir, 'data/translations.jsonl'), '{"surah":1,"ayah":1,"text":7}\n{"surah":1,"ayah":2,"text":"x"}\n');
    rmSync(join(dir, 'data/footnotes.jsonl'));
    const r = await iqp(['build', '.', '--unsigned', '--out', 'p.iqp'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    mkdirSync(join(dir, 'x'));
    sh('tar', ['--zstd', '-xf', 'p.iqp', '-C', 'x'], dir);
    const q = sh('sqlite3', ['x/content.sqlite', "SELECT typeof(text) || ':' || text FROM translations WHERE ayah = 1"], dir);
    expect(q.stdout.trim()).toBe('text:7');
  });

  it('refuses schema.sql that sets pragmas (page size, application_id, journal mode are the format’s), naming the line', async () => {
    const dir = source('deck');
    writeFileSync(join(dir, 'schema.sql'), `-- format settings\nPRAGMA page_size = 65536;\n${readFileSync(join(dir, 'schema.sql'), 'utf8')}`);
    const before = listTree(dir);
    const r = await iqp(['build', '.', '--unsigned', '--out', 'p.iqp', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(1);
    expect(r.json().error).toMatchObject({ code: 'IQP_E_SCHEMA_FORBIDDEN', details: { line: 2, statement: 'PRAGMA' } });
    expect(listTree(dir)).toEqual(before);
  });

  it.each([
    ['invalid UTF-8, located', (d: string) => writeFileSync(join(d, 'data/surahs.csv'), Buffer.concat([Buffer.from('number,name_arabic\n1,ab'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')])), 'IQP_E_DATA_PARSE', /surahs\.csv:2:5: .*UTF-8/],
    ['a column named twice in a CSV header', (d: string) => writeFileSync(join(d, 'data/surahs.csv'), 'number,number\n1,2\n'), 'IQP_E_DATA_PARSE', /surahs\.csv:1:8: .*twice/],
    ['an integer JSON cannot carry exactly', (d: string) => writeFileSync(join(d, 'data/translations.jsonl'), '{"surah":9007199254740993,"ayah":1,"text":"a"}\n'), 'IQP_E_DATA_PARSE', /translations\.jsonl:1:/],
  ])('rejects %s', async (_name, mutate, code, where) => {
    const dir = source('translation');
    mutate(dir);
    const r = await iqp(['build', '.', '--unsigned', '--json'], { cwd: dir });
    expect(r.json().error.code).toBe(code);
    expect(r.json().error.message).toMatch(where);
  });

  it('refuses a --content database that fails integrity_check, small or big (checked while it compresses), and writes no pack', async () => {
    const dir = source('deck');
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8')), package_type: 'notes' }));
    // Rows with an index, then the index's definition swapped for another column: SQLite opens
    // and counts it happily, and only integrity_check finds the index and the table disagree.
    for (const rows of [3, 100_000]) {
      const db = join(dir, `broken-${rows}.sqlite`);
      const made = sh('sqlite3', [
        db,
        `CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); CREATE INDEX notes_body ON notes(body);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows}) INSERT INTO notes(body) SELECT printf('%.200c', char(65 + i % 26)) || i FROM n;
         PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE INDEX notes_body ON notes(id)' WHERE name = 'notes_body';`,
      ], dir);
      expect(made.code, made.stderr).toBe(0);
      // The big one is over 32 MiB: checked on a worker thread while the pack is written.
      if (rows > 3) expect(statSync(db).size).toBeGreaterThan(32 * 1024 ** 2);
      const before = listTree(dir);
      const r = await iqp(['build', '.', '--content', db, '--unsigned', '--out', `out-${rows}.iqp`, '--json'], { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.json().error.code).toBe('IQP_E_CONTENT_INTEGRITY');
      expect(r.json().error.message).toContain('missing from index notes_body');
      expect(listTree(dir)).toEqual(before);
    }
  });

  it('refuses a --content database in WAL mode, or one that lacks its type’s required tables', async () => {
    const dir = source('translation');
    const wal = join(dir, 'wal.sqlite');
    sh('sqlite3', [wal, "PRAGMA journal_mode=WAL; CREATE TABLE t(a); INSERT INTO t VALUES (1);"], dir);
    const r1 = await iqp(['build', '.', '--content', wal, '--unsigned', '--json'], { cwd: dir });
    expect(r1.json().error.code).toBe('IQP_E_CONTENT_INVALID');
    expect(r1.json().error.message).toContain('WAL');
    const plain = join(dir, 'plain.sqlite');
    sh('sqlite3', [plain, 'CREATE TABLE t(a); INSERT INTO t VALUES (1);'], dir);
    const r2 = await iqp(['build', '.', '--content', plain, '--unsigned', '--json'], { cwd: dir });
    expect(r2.json().error.code).toBe('IQP_E_TEMPLATE_REQUIREMENT');
    expect(listTree(dir).filter((p) => p.endsWith('.iqp'))).toEqual([]);
  });
});

describe('iqp build: what an author forgot is a warning, and an error with --strict', () => {
  it.each([
    ['an empty data file', (d: string) => writeFileSync(join(d, 'data/translations.jsonl'), '')],
    ['a missing data file', (d: string) => rmSync(join(d, 'data/translations.jsonl'))],
  ])('a required table with no rows (%s)', async (_name, mutate) => {
    const dir = source('translation');
    mutate(dir);
    // Footnotes refer to translations; without them there are none either.
    writeFileSync(join(dir, 'data/footnotes.jsonl'), '');
    const human = await iqp(['build', '.', '--unsigned', '--out', 'a.iqp'], { cwd: dir });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toMatch(/warning: .*translations.* no rows/);
    const json = await iqp(['build', '.', '--unsigned', '--out', 'b.iqp', '--json'], { cwd: dir });
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    expect(json.json().warnings).toContainEqual(expect.objectContaining({ code: 'IQP_E_REQUIRED_TABLE_EMPTY', details: { table: 'translations' } }));
    const before = listTree(dir);
    const strict = await iqp(['build', '.', '--unsigned', '--out', 'c.iqp', '--strict', '--json'], { cwd: dir });
    expect(strict.code).toBe(1);
    expect(strict.json().error).toMatchObject({ code: 'IQP_E_REQUIRED_TABLE_EMPTY', details: { table: 'translations' } });
    expect(listTree(dir)).toEqual(before);
  });

  it('description, license and attribution still those of a template (or init’s placeholders)', async () => {
    const dir = source('translation');
    const authored = JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8'));
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...authored, language_code: 'fr', name: 'Le Coran en français', license: 'TODO: the license of this content' }));
    const r = await iqp(['build', '.', '--unsigned', '--out', 'a.iqp', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
    const fields = r.json().warnings.map((w: { details: { field: string } }) => w.details.field).sort();
    expect(fields).toEqual(['attribution', 'description', 'license']);
    const strict = await iqp(['build', '.', '--unsigned', '--out', 'b.iqp', '--strict', '--json'], { cwd: dir });
    expect(strict.code).toBe(1);
    expect(strict.json().error.code).toBe('IQP_E_SOURCE_CONFIG');
    expect(existsSync(join(dir, 'b.iqp'))).toBe(false);
    // Written by the author: no warnings, and --strict builds.
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...authored, description: 'Traduction française.', license: 'CC-BY-4.0', attribution: 'Traduction : X.' }));
    const ok = await iqp(['build', '.', '--unsigned', '--out', 'c.iqp', '--strict', '--json'], { cwd: dir });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.json().warnings).toEqual([]);
  });

  it('a package_type a letter or two off a template’s (a typo) is a warning with a suggestion; an app-defined type is not', async () => {
    const dir = source('translation');
    const authored = JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8'));
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...authored, package_type: 'translaton' }));
    const typeWarnings = (r: { json(): { warnings: Array<{ details: { field?: string } }> } }) => r.json().warnings.filter((w) => w.details.field === 'package_type');
    const json = await iqp(['build', '.', '--unsigned', '--out', 'a.iqp', '--json'], { cwd: dir });
    expect(json.code, json.stdout).toBe(0);
    expect(typeWarnings(json)).toEqual([expect.objectContaining({ code: 'IQP_E_SOURCE_CONFIG', message: expect.stringMatching(/"translaton".*Did you mean translation\?/) })]);
    const human = await iqp(['build', '.', '--unsigned', '--out', 'b.iqp'], { cwd: dir });
    expect(human.stderr).toMatch(/warning: iqp\.json: "package_type" .*Did you mean translation\?/);
    const strict = await iqp(['build', '.', '--unsigned', '--out', 'c.iqp', '--strict', '--json'], { cwd: dir });
    expect(strict.code).toBe(1);
    expect(strict.json().error.code).toBe('IQP_E_SOURCE_CONFIG');
    // A type of the app's own, near no template's, builds without a word about it.
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...authored, package_type: 'quran-notes' }));
    const custom = await iqp(['build', '.', '--unsigned', '--out', 'd.iqp', '--json'], { cwd: dir });
    expect(custom.code, custom.stdout).toBe(0);
    expect(typeWarnings(custom)).toEqual([]);
  });

  it('a real licence (one a template also uses) is the author’s choice; copied text names the template it came from', async () => {
    const dir = source('deck');
    const authored = JSON.parse(readFileSync(join(dir, 'iqp.json'), 'utf8'));
    const own = { description: 'Cartes de vocabulaire.', attribution: 'Cartes : Équipe X.' };
    // CC0-1.0 is three templates' licence, "Public domain" the translation template's.
    for (const license of ['CC0-1.0', 'Public domain']) {
      writeFileSync(join(dir, 'iqp.json'), JSON.stringify({ ...authored, ...own, license }));
      const ok = await iqp(['build', '.', '--unsigned', '--out', 'a.iqp', '--strict', '--json'], { cwd: dir });
      expect(ok.code, ok.stdout).toBe(0);
      expect(ok.json().warnings).toEqual([]);
    }
    // The deck's own example text is the deck template's, not whichever template was read last.
    writeFileSync(join(dir, 'iqp.json'), JSON.stringify(authored));
    const human = await iqp(['build', '.', '--unsigned', '--out', 'b.iqp'], { cwd: dir });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toContain('"description" is still the deck template\'s example text');
    expect(human.stderr).not.toContain('"license"');
    expect(human.stderr).not.toMatch(/recitation|translation|dataset/);
  });
});

describe('iqp build: CSV fields quoted over several lines (RFC 4180)', () => {
  it('keep their line breaks, doubled quotes and commas', async () => {
    const dir = source('translation');
    writeFileSync(join(dir, 'data/surahs.csv'), `${SURAHS_HEADER}\r\n1,الفاتحة,Al-Fatiha,"The ""Opening"",\r\nof the Book",7,makkah\r\n112,الإخلاص,Al-Ikhlas,"Sincerity,\nor Purity of Faith",4,makkah\r\n`);
    const r = await iqp(['build', '.', '--unsigned', '--out', 'a.iqp', '--json'], { cwd: dir });
    expect(r.code, r.stdout).toBe(0);
    const x = join(dir, 'x');
    mkdirSync(x);
    expect(sh('tar', ['--zstd', '-xf', join(dir, 'a.iqp'), '-C', x], dir).code).toBe(0);
    const names = sh('sqlite3', ['-json', join(x, 'content.sqlite'), 'SELECT name_translated FROM surahs ORDER BY number'], x);
    expect(JSON.parse(names.stdout)).toEqual([{ name_translated: 'The "Opening",\r\nof the Book' }, { name_translated: 'Sincerity,\nor Purity of Faith' }]);
  });
});

describe('iqp build --out', () => {
  it('a trailing slash means a folder: a missing one is refused (nothing written), an existing one gets <id>-<version>.iqp', async () => {
    const dir = source('deck');
    const before = listTree(dir);
    for (const out of ['nodir/', `nodir${'/'}/`]) {
      const r = await iqp(['build', '.', '--unsigned', '--out', out, '--json'], { cwd: dir });
      expect(r.code, r.stdout).toBe(2);
      expect(r.json().error.code).toBe('IQP_E_FILE_NOT_FOUND');
      expect(r.json().error.hint).toContain('mkdir');
      expect(listTree(dir)).toEqual(before);
      expect(existsSync(join(dir, 'nodir'))).toBe(false);
    }
    mkdirSync(join(dir, 'packs'));
    const ok = await iqp(['build', '.', '--unsigned', '--out', 'packs/', '--json'], { cwd: dir });
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.json().path).toBe(join(dir, 'packs', 'example.deck.arabic-vocab-1.0.0.iqp'));
  });
});
