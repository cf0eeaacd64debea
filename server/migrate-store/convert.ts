/**
 * A SQLite value as the PostgreSQL column it moves to takes it. SQLite keeps whatever a column is
 * given; PostgreSQL's columns have types, so each value is turned into what its target column
 * holds: integers (read as bigints, never rounded) into integer, numeric and boolean columns, text
 * into text, JSON and timestamps (as stored: iqp keeps RFC 3339 text), BLOBs into bytea. A value
 * that has no faithful form there (a fraction in an integer column, a number where a timestamp is
 * wanted, a U+0000 in text) is refused by name rather than altered.
 */
import { IqpError } from '../../src/errors.js';
import type { SqliteValue } from './source.js';

/** The value to send as a query parameter (text, or a Buffer for bytea), or null. */
export type PgParam = string | Buffer | boolean | null;

export type Converter = (value: SqliteValue) => PgParam;

export interface ColumnRef {
  readonly table: string;
  readonly column: string;
  /** information_schema.columns.data_type of the target column. */
  readonly dataType: string;
}

const INTEGER = new Set(['smallint', 'integer', 'bigint']);
const NUMBER = new Set(['numeric', 'real', 'double precision']);
const TIME = new Set(['timestamp without time zone', 'timestamp with time zone', 'date', 'time without time zone', 'time with time zone', 'interval']);

function kind(value: SqliteValue): string {
  return value === null ? 'NULL' : Buffer.isBuffer(value) ? 'a BLOB' : typeof value === 'string' ? 'text' : typeof value === 'bigint' ? 'an integer' : 'a real number';
}

export function unconvertible(ref: ColumnRef, value: SqliteValue, why = ''): IqpError {
  return new IqpError(
    'IQP_E_STORE_INCOMPATIBLE',
    `${ref.table}.${ref.column} holds ${kind(value)} that a PostgreSQL ${ref.dataType} column cannot take${why ? ` (${why})` : ''}.`,
    { table: ref.table, column: ref.column, type: ref.dataType },
  );
}

function text(ref: ColumnRef, value: string): string {
  if (value.includes('\u0000')) throw unconvertible(ref, value, 'PostgreSQL text cannot hold U+0000');
  return value;
}

function integer(ref: ColumnRef, value: SqliteValue): PgParam {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  if (typeof value === 'string') return text(ref, value);
  throw unconvertible(ref, value);
}

function boolean(ref: ColumnRef, value: SqliteValue): PgParam {
  // SQLite has no booleans: 0 and 1 stand for them.
  if (value === 0n || value === 0) return false;
  if (value === 1n || value === 1) return true;
  if (typeof value === 'string' && /^(t|f|true|false|0|1)$/i.test(value)) return value;
  throw unconvertible(ref, value, 'booleans are 0 or 1');
}

/** The converter of one target column, chosen once per column rather than per value. */
export function converter(ref: ColumnRef): Converter {
  const type = ref.dataType;
  const convert: Converter = (() => {
    if (type === 'boolean') return (v: SqliteValue) => boolean(ref, v);
    if (INTEGER.has(type)) return (v: SqliteValue) => integer(ref, v);
    if (type === 'bytea') {
      return (v: SqliteValue) => {
        if (Buffer.isBuffer(v)) return v;
        if (typeof v === 'string') return Buffer.from(v, 'utf8');
        throw unconvertible(ref, v);
      };
    }
    if (NUMBER.has(type)) {
      return (v: SqliteValue) => {
        if (typeof v === 'bigint' || typeof v === 'number') return String(v);
        if (typeof v === 'string') return text(ref, v);
        throw unconvertible(ref, v);
      };
    }
    if (TIME.has(type)) {
      // A number could be seconds or milliseconds: no guess is made.
      return (v: SqliteValue) => {
        if (typeof v === 'string') return text(ref, v);
        throw unconvertible(ref, v, 'times move as the text they are stored as');
      };
    }
    // text, character varying, json, jsonb, uuid, enums (USER-DEFINED) and the rest: their text form.
    return (v: SqliteValue) => {
      if (typeof v === 'string') return text(ref, v);
      if (typeof v === 'bigint' || typeof v === 'number') return String(v);
      throw unconvertible(ref, v as SqliteValue);
    };
  })();
  return (v) => (v === null ? null : convert(v));
}
