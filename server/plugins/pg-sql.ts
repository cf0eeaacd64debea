/**
 * What lets one plugin's SQL and rows mean the same on PostgreSQL as on SQLite: `?` placeholders
 * numbered to `$1…`, and result values read as better-sqlite3 gives them (integers as numbers
 * where exact and bigints beyond 2^53, booleans as 1 and 0).
 */
import pg from 'pg';
import { codeSpans } from './sql-scan.js';

/**
 * `sql` with each `?` outside string literals, quoted identifiers, dollar-quoted bodies and
 * comments replaced by `$1`, `$2`, … in order. A `?` is always a placeholder: PostgreSQL's jsonb
 * operators `?`, `?|` and `?&` are written jsonb_exists(), jsonb_exists_any(), jsonb_exists_all().
 */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let last = 0;
  for (const [start, end] of codeSpans(sql, 'postgres')) {
    out += sql.slice(last, start) + sql.slice(start, end).replace(/\?/g, () => `$${++n}`);
    last = end;
  }
  return out + sql.slice(last);
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
