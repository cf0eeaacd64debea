import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { applySchemaSql, splitStatements } from './schema-sql.js';

const starts = (sql: string) => splitStatements(sql).map((s) => [s.line, s.column, s.text]);

describe('splitStatements', () => {
  it('splits at semicolons outside strings, quoted names and comments, with each start line and column', () => {
    const sql = "CREATE TABLE a (x TEXT DEFAULT 'a;b', \"c;d\" INT, `e;f` INT, [g;h] INT); -- x; y\n  /* ;\n ; */ CREATE INDEX i ON a (x);\nCREATE VIEW v AS SELECT 'it''s;' AS s";
    expect(starts(sql)).toEqual([
      [1, 1, "CREATE TABLE a (x TEXT DEFAULT 'a;b', \"c;d\" INT, `e;f` INT, [g;h] INT);"],
      [3, 7, 'CREATE INDEX i ON a (x);'],
      [4, 1, "CREATE VIEW v AS SELECT 'it''s;' AS s"],
    ]);
  });

  it('keeps a trigger body (statements, CASE … END) in its CREATE TRIGGER, as sqlite3_complete does', () => {
    const trigger = "CREATE TEMPORARY TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT CASE WHEN 1 THEN 2 END;\n  UPDATE a SET x = 'end;';\nEND;";
    const out = splitStatements(`${trigger}\nCREATE TABLE b (y);`);
    expect(out.map((s) => s.text)).toEqual([trigger, 'CREATE TABLE b (y);']);
    expect(out[1]!.line).toBe(5);
  });

  it('counts lines inside multi-line strings and names', () => {
    expect(starts("CREATE TABLE a (x DEFAULT 'one\ntwo');\nCREATE TABLE \"b\nc\" (y);").map((s) => s[0])).toEqual([1, 3]);
  });

  it('runs to the end of the text when a comment or string is never closed (SQLite then refuses it)', () => {
    expect(splitStatements("CREATE TABLE a (x); /* open ; ATTACH 'f' AS g;")).toHaveLength(1);
    expect(splitStatements("CREATE TABLE a (x DEFAULT '); ATTACH 'f' AS g;").map((s) => s.tokens[0]!.value)).toEqual(['CREATE']);
  });
});

describe('applySchemaSql', () => {
  it('runs each statement and names the line of the one SQLite refuses', () => {
    const db = new Database(':memory:');
    expect(() => applySchemaSql(db, 'CREATE TABLE a (x);\n\nCREATE TABLE a (y);\n')).toThrow(/^schema\.sql:3: table a already exists/);
    db.close();
  });

  it('refuses a string that is never closed as SQLite would, without running what follows it', () => {
    const db = new Database(':memory:');
    expect(() => applySchemaSql(db, "CREATE TABLE a (x DEFAULT '); ATTACH ':memory:' AS g;")).toThrow(/^schema\.sql:1: /);
    expect((db.prepare('PRAGMA database_list').all() as { name: string }[]).map((d) => d.name)).toEqual(['main']);
    db.close();
  });
});
