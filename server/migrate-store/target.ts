/**
 * The PostgreSQL database a registry moves to: reaching it, what its catalog says of the registry's
 * schema there (tables, columns and their types, identity columns and sequences, foreign keys),
 * which of the registry's tables already hold rows, and counts to check a copy against.
 */
import pg from 'pg';
import { IqpError } from '../../src/errors.js';
import { quoteIdent } from './source.js';

export interface TargetColumn {
  readonly name: string;
  /** information_schema's data_type: 'text', 'bigint', 'boolean', 'jsonb', 'USER-DEFINED'… */
  readonly dataType: string;
  /** NOT NULL and no default: a row must give it. */
  readonly required: boolean;
  /** GENERATED … AS IDENTITY: an explicit value needs OVERRIDING SYSTEM VALUE. */
  readonly identity: boolean;
  /** The sequence behind an identity or serial column, to move past the copied ids. */
  readonly sequence: string | null;
}

export interface TargetTable {
  readonly name: string;
  readonly columns: ReadonlyMap<string, TargetColumn>;
  /** Tables its foreign keys refer to (itself left out). */
  readonly references: ReadonlySet<string>;
}

const COLUMNS = `
  SELECT c.table_name AS table, c.column_name AS name, c.data_type AS "dataType",
         (c.is_nullable = 'NO' AND c.column_default IS NULL AND c.is_identity = 'NO') AS required,
         c.is_identity = 'YES' AS identity,
         pg_get_serial_sequence(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name), c.column_name) AS sequence
    FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
   WHERE c.table_schema = current_schema()
   ORDER BY c.table_name, c.ordinal_position`;

const REFERENCES = `
  SELECT t.relname AS table, r.relname AS refers
    FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
   WHERE k.contype = 'f' AND t.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;

/**
 * A failure of the target database as an operator can act on it; `what` says what was being done.
 * Messages name database_url, never its value (it may hold a password).
 */
export function pgFailure(err: unknown, what: string, details: Record<string, unknown> = {}): IqpError {
  if (err instanceof IqpError) return err;
  const e = err as { code?: string; message?: string };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = `${what} in the PostgreSQL database (database_url) failed: ${e.message ?? String(err)}`;
  // 28: the role cannot sign in; 3D: no such database; 42501: a privilege the role lacks.
  if (code.startsWith('28') || code === '3D000' || code === '42501') {
    return new IqpError('IQP_E_CONFIG', message, { ...details, sqlstate: code }, { cause: err, hint: 'Check database_url: the role, its password, the database, and that the role owns the registry\'s schema (it made the tables, or may make them).' });
  }
  // 22: a value the column cannot hold; 23: a constraint SQLite did not enforce.
  if (code.startsWith('22') || code.startsWith('23')) {
    return new IqpError('IQP_E_STORE_INCOMPATIBLE', message, { ...details, sqlstate: code }, { cause: err });
  }
  return new IqpError('IQP_E_UNAVAILABLE', message, { ...details, ...(code ? { sqlstate: code } : {}) }, { cause: err, hint: 'Check that the database is reachable and running; nothing is kept of a copy that did not finish, so run the command again.' });
}

export class PgTarget {
  readonly pool: pg.Pool;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2, application_name: 'iqp-migrate-store' });
    // An idle connection the server drops is an 'error' event; unhandled, it would end the process.
    this.pool.on('error', () => undefined);
  }

  async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(text, params)).rows;
  }

  /** The schema the registry's tables are in (the first of search_path that exists); reaching the database at all is checked here. */
  async schema(): Promise<string> {
    let rows: { schema: string | null; encoding: string }[];
    try {
      rows = await this.query('SELECT current_schema() AS schema, current_setting(\'server_encoding\') AS encoding');
    } catch (err) {
      throw pgFailure(err, 'Connecting');
    }
    const { schema, encoding } = rows[0]!;
    if (schema === null) throw new IqpError('IQP_E_CONFIG', 'The search_path of database_url names no schema that exists.', undefined, { hint: 'Create the schema, or fix search_path (options=-c search_path=… in database_url).' });
    if (encoding !== 'UTF8') throw new IqpError('IQP_E_CONFIG', `The PostgreSQL database's encoding is ${encoding}; iqp needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8').`);
    return schema;
  }

  /** Every table of the schema with its columns and foreign keys. */
  async catalog(): Promise<Map<string, TargetTable>> {
    const out = new Map<string, { name: string; columns: Map<string, TargetColumn>; references: Set<string> }>();
    for (const { table, ...column } of await this.query<TargetColumn & { table: string }>(COLUMNS)) {
      let t = out.get(table);
      if (!t) out.set(table, (t = { name: table, columns: new Map(), references: new Set() }));
      t.columns.set(column.name, column);
    }
    for (const { table, refers } of await this.query<{ table: string; refers: string }>(REFERENCES)) if (table !== refers) out.get(table)?.references.add(refers);
    return out;
  }

  /** Those of `tables` that hold a row, on `c` (inside a transaction) or the pool. */
  async holding(tables: readonly string[], c: pg.Pool | pg.PoolClient = this.pool): Promise<string[]> {
    const out: string[] = [];
    for (const t of tables) if ((await c.query(`SELECT 1 FROM ${quoteIdent(t)} LIMIT 1`)).rowCount) out.push(t);
    return out;
  }

  async count(table: string): Promise<number> {
    return Number((await this.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(table)}`))[0]!.n);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
