/**
 * schema.sql comes from whoever wrote the pack source, and iqp build runs it on the builder's
 * machine (often next to a registry's data directory). It may only create the pack's own tables,
 * indexes, views and triggers: anything that reaches another file is refused before a statement
 * runs, with the statement and its line, and nothing is written anywhere.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp, sh, tempDir } from '../e2e/helpers.js';
import { buildRefused, templateSource } from './source-helpers.js';

/** schema.sql with `extra` appended; returns the 1-based line where `marker` stands. */
function appendSchema(dir: string, extra: string, marker: string): number {
  const text = `${readFileSync(join(dir, 'schema.sql'), 'utf8')}\n${extra}`;
  writeFileSync(join(dir, 'schema.sql'), text);
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`marker ${marker} not in schema.sql`);
  return text.slice(0, at).split('\n').length;
}

/** A SQLite file standing in for a registry's database, outside the source folder. */
function victim(): { path: string; bytes: Buffer; mtimeMs: number } {
  const path = join(tempDir('iqp-victim-'), 'registry.sqlite');
  const made = sh('sqlite3', [path, "CREATE TABLE tokens (id TEXT PRIMARY KEY, role TEXT); INSERT INTO tokens VALUES ('t1', 'reader');"], tempDir());
  expect(made.code, made.stderr).toBe(0);
  return { path, bytes: readFileSync(path), mtimeMs: statSync(path).mtimeMs };
}

async function buildFails(dir: string, code: string, line: number, statement?: string) {
  const err = await buildRefused(dir, code);
  expect(err.message).toContain(`schema.sql:${line}:`);
  expect(err.details).toMatchObject({ file: 'schema.sql', line });
  if (statement) expect(err.details.statement).toBe(statement);
  return err;
}

describe('schema.sql may not reach outside the pack’s own database', () => {
  it('refuses ATTACH (and so cannot write into another SQLite file), naming the line', async () => {
    const dir = templateSource();
    const target = victim();
    const line = appendSchema(
      dir,
      `-- plant an admin token in the registry\nATTACH DATABASE '${target.path}' AS reg;\nINSERT INTO reg.tokens VALUES ('planted', 'admin');\nDETACH reg;\n`,
      'ATTACH',
    );
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, 'ATTACH');
    expect(readFileSync(target.path).equals(target.bytes)).toBe(true);
    expect(statSync(target.path).mtimeMs).toBe(target.mtimeMs);
    expect(sh('sqlite3', [target.path, 'SELECT group_concat(id) FROM tokens'], dir).stdout.trim()).toBe('t1');
  });

  it('refuses ATTACH spelled in lower case after a comment and a string holding a semicolon', async () => {
    const dir = templateSource();
    const target = victim();
    const line = appendSchema(
      dir,
      `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT DEFAULT 'a; b' /* ; */);\n  /* a comment\n  ; */ attach '${target.path}' as reg;\n`,
      'attach',
    );
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, 'ATTACH');
    expect(readFileSync(target.path).equals(target.bytes)).toBe(true);
  });

  it('refuses VACUUM INTO, and writes no copy', async () => {
    const dir = templateSource();
    const out = join(tempDir('iqp-stolen-'), 'copy.sqlite');
    const line = appendSchema(dir, `VACUUM INTO '${out}';\n`, 'VACUUM');
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, 'VACUUM');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses PRAGMA writable_schema', async () => {
    const dir = templateSource();
    const line = appendSchema(dir, 'PRAGMA writable_schema = ON;\n', 'PRAGMA writable');
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, 'PRAGMA');
  });

  it('refuses load_extension through a SELECT', async () => {
    const dir = templateSource();
    const line = appendSchema(dir, "SELECT load_extension('/tmp/evil.so');\n", 'SELECT load');
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, 'SELECT');
  });

  it('refuses DETACH', async () => {
    const dir = templateSource();
    const line = appendSchema(dir, 'DETACH DATABASE temp;\n', 'DETACH');
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, 'DETACH');
  });

  it.each([
    ['a table created in another schema', 'CREATE TABLE reg.notes (id INTEGER PRIMARY KEY);', 'CREATE TABLE'],
    ['a TEMP trigger (it could reach attached databases)', 'CREATE TEMP TRIGGER t AFTER INSERT ON surahs BEGIN SELECT 1; END;', 'CREATE TEMP TRIGGER'],
    ['rows inserted by schema.sql', "INSERT INTO surahs VALUES (1, 'a', 'b', NULL, 7, NULL);", 'INSERT'],
    ['a table made from a query', 'CREATE TABLE copy AS SELECT * FROM sqlite_schema;', 'CREATE TABLE'],
    ['a virtual table of a module that is not allowed', 'CREATE VIRTUAL TABLE s USING dbstat;', 'CREATE VIRTUAL TABLE'],
  ])('refuses %s', async (_name, statement, kind) => {
    const dir = templateSource();
    const line = appendSchema(dir, `\n\n${statement}\n`, statement);
    await buildFails(dir, 'IQP_E_SCHEMA_FORBIDDEN', line, kind);
  });

  it('names the line of a syntax error', async () => {
    const dir = templateSource();
    const line = appendSchema(dir, 'CREATE TABLE notes (\n  id INTEGER PRIMARY KEY,\n);\n', 'CREATE TABLE notes');
    const err = await buildFails(dir, 'IQP_E_SCHEMA_SQL', line);
    expect(err.message).toContain('syntax error');
  });

  it('still builds what packs legitimately use: triggers with semicolons and CASE … END, views, FTS5, main-qualified names', async () => {
    const dir = templateSource();
    appendSchema(
      dir,
      `CREATE TABLE main.notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TRIGGER notes_checked BEFORE INSERT ON notes
BEGIN
  SELECT CASE WHEN length(NEW.body) > 1000 THEN RAISE(ABORT, 'too long; really') END;
  SELECT 'end;';
END;
CREATE VIEW "short notes" AS SELECT id FROM notes WHERE length(body) < 10;
CREATE VIRTUAL TABLE search USING fts5(text);
CREATE UNIQUE INDEX IF NOT EXISTS [notes by body] ON notes (body);
`,
      'notes',
    );
    const r = await iqp(['build', '.', '--unsigned', '--out', 'p.iqp', '--json'], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json().manifest.tables.map((t: { name: string }) => t.name)).toContain('notes');
  });
});
