/**
 * schema.sql, applied safely. A pack source comes from whoever wrote it and `iqp build` runs its
 * schema on the builder's machine, so schema.sql may only create the pack's own tables, indexes,
 * views and triggers: ATTACH could write into any SQLite file the builder can (a registry's
 * database), VACUUM INTO writes files, PRAGMA changes the connection, and rows belong in data/.
 *
 * better-sqlite3 has no authorizer API, so the file is split into statements by a small SQL
 * tokenizer, every statement is checked before any runs, and each runs on its own through
 * `prepare`, which refuses a text holding more than one statement: a split that disagreed with
 * SQLite's could not smuggle a second statement through. Running statements one at a time also
 * lets an error name its line.
 */
import type Database from 'better-sqlite3';
import { IqpError } from '../errors.js';

export interface SqlStatement {
  /** The statement's text, from its first token to its semicolon (included when there is one). */
  readonly text: string;
  /** 1-based line and column of its first token. */
  readonly line: number;
  readonly column: number;
  /** Its tokens, comments left out. */
  readonly tokens: readonly SqlToken[];
}

export interface SqlToken {
  /** word: a keyword or bare name; name: a quoted name ("…", `…`, […]); string: '…'; other: anything else. */
  readonly kind: 'word' | 'name' | 'string' | 'other';
  /** Words as written; quoted names without their quotes; `;`, `.`, `(` and the like as themselves. */
  readonly value: string;
}

const isWordChar = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c >= 0x80;

/**
 * Splits SQL text into statements as SQLite's own sqlite3_complete() does: a semicolon ends a
 * statement, except inside a CREATE TRIGGER, whose body (statements of its own) ends at `; END ;`.
 */
export function splitStatements(sql: string): SqlStatement[] {
  const out: SqlStatement[] = [];
  let line = 1;
  let lineStart = 0;
  let tokens: SqlToken[] = [];
  let start = -1;
  let startLine = 0;
  let startColumn = 0;
  /** Trigger body state: 0 outside a trigger, 1 in one, 2 just after a `;`, 3 after `; END`. */
  let trigger = 0;
  const n = sql.length;
  /** Advances the line count over sql[from, to). */
  const lines = (from: number, to: number): void => {
    for (let k = sql.indexOf('\n', from); k >= 0 && k < to; k = sql.indexOf('\n', k + 1)) {
      line += 1;
      lineStart = k + 1;
    }
  };
  const end = (to: number): void => {
    if (start >= 0) out.push({ text: sql.slice(start, to), line: startLine, column: startColumn, tokens });
    tokens = [];
    start = -1;
    trigger = 0;
  };
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 10 || c === 13 || c === 32 || c === 9 || c === 12) {
      if (c === 10) {
        line += 1;
        lineStart = i + 1;
      }
      i += 1;
      continue;
    }
    if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      continue;
    }
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const close = sql.indexOf('*/', i + 2);
      const to = close < 0 ? n : close + 2;
      lines(i, to);
      i = to;
      continue;
    }
    if (start < 0) {
      start = i;
      startLine = line;
      startColumn = i - lineStart + 1;
    }
    let token: SqlToken;
    if (c === 39 || c === 34 || c === 96 || c === 91) {
      // '…' and "…" and `…` double their quote to escape it; […] has no escape.
      const close = c === 91 ? 93 : c;
      let j = i + 1;
      let value = '';
      for (;;) {
        const k = sql.indexOf(String.fromCharCode(close), j);
        if (k < 0) {
          value += sql.slice(j);
          j = n;
          break;
        }
        value += sql.slice(j, k);
        if (close !== 93 && sql.charCodeAt(k + 1) === close) {
          value += String.fromCharCode(close);
          j = k + 2;
          continue;
        }
        j = k + 1;
        break;
      }
      lines(i, j);
      token = { kind: c === 39 ? 'string' : 'name', value };
      i = j;
    } else if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j += 1;
      token = { kind: 'word', value: sql.slice(i, j) };
      i = j;
    } else {
      token = { kind: 'other', value: sql[i]! };
      i += 1;
    }
    tokens.push(token);
    if (token.kind === 'other' && token.value === ';') {
      if (trigger === 0) {
        end(i);
        continue;
      }
      if (trigger === 3) {
        end(i);
        continue;
      }
      trigger = 2;
      continue;
    }
    if (trigger === 0 && token.kind === 'word' && /^TRIGGER$/i.test(token.value)) {
      const words = tokens.map((t) => (t.kind === 'word' ? t.value.toUpperCase() : ''));
      if (words[0] === 'CREATE' && (tokens.length === 2 || (tokens.length === 3 && (words[1] === 'TEMP' || words[1] === 'TEMPORARY')))) trigger = 1;
    } else if (trigger === 2) {
      trigger = token.kind === 'word' && /^END$/i.test(token.value) ? 3 : 1;
    } else if (trigger === 3) {
      trigger = 1;
    }
  }
  end(n);
  return out;
}

/** Virtual table modules a pack may use: full-text search and spatial indexes, which only hold the pack's own rows. */
const VIRTUAL_MODULES = new Set(['fts3', 'fts4', 'fts5', 'rtree', 'rtree_i32', 'geopoly']);

const ALLOWED = 'a pack schema may only create tables, indexes, views and triggers in its own database';

function forbidden(statement: SqlStatement, kind: string, reason: string): IqpError {
  return new IqpError(
    'IQP_E_SCHEMA_FORBIDDEN',
    `schema.sql:${statement.line}: ${reason}`,
    { file: 'schema.sql', line: statement.line, column: statement.column, statement: kind },
  );
}

/**
 * Refuses a statement that is not CREATE [UNIQUE] INDEX, CREATE TABLE (…), CREATE VIEW,
 * CREATE TRIGGER or CREATE VIRTUAL TABLE … USING an allowed module, in the main database.
 */
export function checkStatement(statement: SqlStatement): void {
  const t = statement.tokens;
  const word = (k: number): string => (t[k]?.kind === 'word' ? t[k]!.value.toUpperCase() : '');
  const first = word(0) || t[0]!.value;
  if (first !== 'CREATE') {
    const what = first === 'INSERT' || first === 'REPLACE' || first === 'UPDATE' || first === 'DELETE' ? `${first} is not allowed: rows belong in data/<table>.jsonl or .csv` : `${first} is not allowed`;
    throw forbidden(statement, first, `${what}; ${ALLOWED}.`);
  }
  let k = 1;
  if (word(k) === 'TEMP' || word(k) === 'TEMPORARY') {
    const kind = `CREATE TEMP ${word(k + 1) || t[k + 1]?.value || ''}`.trim();
    throw forbidden(statement, kind, `${kind} is not allowed: temporary objects are not part of the pack (and could reach other databases); ${ALLOWED}.`);
  }
  if (word(k) === 'UNIQUE') k += 1;
  let object = word(k);
  if (object === 'VIRTUAL' && word(k + 1) === 'TABLE') {
    object = 'VIRTUAL TABLE';
    k += 1;
  }
  const kind = `CREATE ${object || t[k]?.value || ''}`.trim();
  if (!['TABLE', 'INDEX', 'VIEW', 'TRIGGER', 'VIRTUAL TABLE'].includes(object)) throw forbidden(statement, kind, `${kind} is not allowed; ${ALLOWED}.`);
  k += 1;
  if (word(k) === 'IF' && word(k + 1) === 'NOT' && word(k + 2) === 'EXISTS') k += 3;
  // The object's name, possibly schema.name: the schema may only be main.
  if (t[k + 1]?.kind === 'other' && t[k + 1]!.value === '.') {
    const schema = t[k]!.value;
    if (schema.toLowerCase() !== 'main') {
      throw forbidden(statement, kind, `${kind} ${schema}.${t[k + 2]?.value ?? ''} is not allowed: objects go in the pack's own database (main), not ${schema}; ${ALLOWED}.`);
    }
    k += 2;
  }
  const after = t[k + 1];
  if (object === 'TABLE' && after?.kind === 'word' && after.value.toUpperCase() === 'AS') {
    throw forbidden(statement, kind, `CREATE TABLE … AS is not allowed: rows belong in data/<table>.jsonl or .csv; ${ALLOWED}.`);
  }
  if (object === 'VIRTUAL TABLE') {
    const module = after?.kind === 'word' && after.value.toUpperCase() === 'USING' ? (t[k + 2]?.value ?? '') : '';
    if (!VIRTUAL_MODULES.has(module.toLowerCase())) {
      throw forbidden(statement, kind, `CREATE VIRTUAL TABLE … USING ${module || '?'} is not allowed: a pack may use ${[...VIRTUAL_MODULES].join(', ')}.`);
    }
  }
}

/**
 * Applies schema.sql to `db`: every statement is checked first (IQP_E_SCHEMA_FORBIDDEN), then each
 * runs on its own (IQP_E_SCHEMA_SQL with its line when SQLite refuses it).
 */
export function applySchemaSql(db: Database.Database, sql: string): void {
  const statements = splitStatements(sql).filter((s) => !(s.tokens.length === 1 && s.tokens[0]!.value === ';'));
  for (const statement of statements) checkStatement(statement);
  for (const statement of statements) {
    try {
      db.prepare(statement.text).run();
    } catch (err) {
      throw new IqpError('IQP_E_SCHEMA_SQL', `schema.sql:${statement.line}: ${(err as Error).message}`, {
        file: 'schema.sql',
        line: statement.line,
        column: statement.column,
      });
    }
  }
  // Belt and braces: whatever the statements were, the connection still sees only its own database.
  const schemas = (db.prepare('PRAGMA database_list').all() as { name: string }[]).map((d) => d.name);
  const other = schemas.filter((name) => name !== 'main' && name !== 'temp');
  if (other.length > 0) throw new IqpError('IQP_E_SCHEMA_FORBIDDEN', `schema.sql attached ${other.join(', ')}; ${ALLOWED}.`, { file: 'schema.sql' });
}
