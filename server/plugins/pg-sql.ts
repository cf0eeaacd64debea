/**
 * What lets one plugin's SQL and rows mean the same on PostgreSQL as on SQLite: `?` placeholders
 * numbered to `$1…`, and result values read as better-sqlite3 gives them (integers as numbers
 * where exact and bigints beyond 2^53, booleans as 1 and 0).
 */
import pg from 'pg';

const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/**
 * `sql` with each `?` outside string literals, quoted identifiers, dollar-quoted bodies and
 * comments replaced by `$1`, `$2`, … in order. A `?` is always a placeholder: PostgreSQL's jsonb
 * operators `?`, `?|` and `?&` are written jsonb_exists(), jsonb_exists_any(), jsonb_exists_all().
 */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let i = 0;
  const copyUntil = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '?') {
      out += `$${++n}`;
      i++;
    } else if (c === "'") {
      // E'…' strings take backslash escapes; the E must start a token, not end an identifier.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !IDENT.test(sql[i - 2]!));
      copyUntil(quoted(sql, i, "'", escapes));
    } else if (c === '"') {
      copyUntil(quoted(sql, i, '"', false));
    } else if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      copyUntil(end === -1 ? sql.length : end + 1);
    } else if (c === '/' && next === '*') {
      copyUntil(blockComment(sql, i));
    } else if (c === '$' && (i === 0 || !IDENT.test(sql[i - 1]!)) && DOLLAR_TAG.test(sql.slice(i, i + 66))) {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 66))![0];
      const end = sql.indexOf(tag, i + tag.length);
      copyUntil(end === -1 ? sql.length : end + tag.length);
    } else {
      out += c;
      i++;
    }
  }
  return out;
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

/** The index just past the block comment at `start`; PostgreSQL's nest. */
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

const BOOL = 16;
const INT8 = 20;
const NUMERIC = 1700;

/** An integer's text as better-sqlite3 reads it (safeIntegers, narrowed): a number where exact, else a bigint. */
function exactInteger(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/**
 * pg's parsers for this adapter's connections only (pg.types.setTypeParser would change every pg
 * user in the process, the core's stores included). bigint (count(*), sums, BIGINT columns) is a
 * string by default; numeric (sum() of bigints) too. SQLite has no booleans: its comparisons and
 * EXISTS give 1 and 0, which plugin code compares with `=== 1`.
 */
export const PLUGIN_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      if (oid === INT8) return exactInteger;
      if (oid === NUMERIC) return (text: string) => (/^-?\d+$/.test(text) ? exactInteger(text) : Number(text));
      if (oid === BOOL) return (text: string) => (text === 't' ? 1 : 0);
    }
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};
