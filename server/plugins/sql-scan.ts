/**
 * Where SQL is code: the stretches outside string literals, quoted identifiers and comments (and
 * PostgreSQL's dollar-quoted bodies), as each engine lexes them. What looks at plugins' SQL
 * (numbering `?` placeholders, finding transaction statements in a migration) looks only there.
 */

export type SqlDialect = 'sqlite' | 'postgres';

const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/** [start, end) of each stretch of `sql` that is code in `dialect`, in order. Unterminated quotes and comments run to the end. */
export function codeSpans(sql: string, dialect: SqlDialect): Array<readonly [number, number]> {
  const pg = dialect === 'postgres';
  const spans: Array<readonly [number, number]> = [];
  let from = 0;
  let i = 0;
  const skipTo = (end: number) => {
    if (i > from) spans.push([from, i]);
    i = end;
    from = end;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "'") {
      // PostgreSQL's E'…' strings take backslash escapes; the E must start a token, not end an identifier.
      const escapes = pg && i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !IDENT.test(sql[i - 2]!));
      skipTo(quoted(sql, i, "'", escapes));
    } else if (c === '"' || (!pg && c === '`')) {
      skipTo(quoted(sql, i, c, false));
    } else if (!pg && c === '[') {
      const end = sql.indexOf(']', i + 1);
      skipTo(end === -1 ? sql.length : end + 1);
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      skipTo(end === -1 ? sql.length : end + 1);
    } else if (c === '/' && next === '*') {
      // PostgreSQL's nest; SQLite's end at the first */.
      const end = pg ? blockComment(sql, i) : sql.indexOf('*/', i + 2);
      skipTo(pg ? end : end === -1 ? sql.length : end + 2);
    } else if (pg && c === '$' && (i === 0 || !IDENT.test(sql[i - 1]!)) && DOLLAR_TAG.test(sql.slice(i, i + 66))) {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 66))![0];
      const end = sql.indexOf(tag, i + tag.length);
      skipTo(end === -1 ? sql.length : end + tag.length);
    } else {
      i++;
    }
  }
  if (from < sql.length) spans.push([from, sql.length]);
  return spans;
}

/** The index just past the literal or identifier opened by `q` at `start` (doubled quotes stay inside). */
function quoted(sql: string, start: number, q: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === q && sql[i + 1] === q) i += 2;
    else if (c === q) return i + 1;
    else i++;
  }
  return sql.length;
}

/** The index just past PostgreSQL's (nesting) block comment at `start`. */
function blockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return sql.length;
}

/** Statements that begin, end or nest a transaction, by their first word (PostgreSQL adds START and ABORT). */
const TRANSACTION_CONTROL: Record<SqlDialect, ReadonlySet<string>> = {
  sqlite: new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']),
  postgres: new Set(['BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE']),
};

/** The words of a CREATE statement (after CREATE) that make its BEGIN … END a body, not a transaction. */
const BODY_OWNERS: Record<SqlDialect, ReadonlySet<string>> = {
  // CREATE [TEMP] TRIGGER … BEGIN …; END
  sqlite: new Set(['TRIGGER']),
  // CREATE [OR REPLACE] FUNCTION|PROCEDURE … BEGIN ATOMIC …; END (a $$ body is a literal already)
  postgres: new Set(['FUNCTION', 'PROCEDURE']),
};

/**
 * The first statement of a migration script that begins, ends or nests a transaction (BEGIN,
 * COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE; on PostgreSQL also START and ABORT), by its first word;
 * null when there is none. A body inside a statement (a SQLite CREATE TRIGGER's BEGIN … END, a
 * PostgreSQL function's BEGIN ATOMIC … END, with CASE … END inside) is part of its statement;
 * words inside literals, identifiers, comments and PostgreSQL's $$ bodies are not code.
 */
export function transactionStatement(sql: string, dialect: SqlDialect): string | null {
  const control = TRANSACTION_CONTROL[dialect];
  const owners = BODY_OWNERS[dialect];
  let words = 0;
  let first = '';
  let body = false;
  let depth = 0;
  for (const [start, end] of codeSpans(sql, dialect)) {
    for (const [token] of sql.slice(start, end).matchAll(/[A-Za-z_][A-Za-z0-9_$]*|;/g)) {
      if (token === ';') {
        if (body && depth > 0) continue;
        words = 0;
        body = false;
        depth = 0;
        continue;
      }
      const word = token.toUpperCase();
      if (words === 0) {
        if (control.has(word)) return word;
        first = word;
      } else if (first === 'CREATE' && words <= 3 && owners.has(word)) {
        body = true;
      } else if (body && ((word === 'BEGIN' && depth === 0) || word === 'CASE')) {
        // Only the body's BEGIN opens (a column may be named begin); CASE is reserved.
        depth++;
      } else if (body && word === 'END') {
        depth--;
      }
      words++;
    }
  }
  return null;
}
