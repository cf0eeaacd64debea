/**
 * One PostgreSQL database as the registry's stores use it: a pool, the change feed, and the one
 * way the stores write what the change counter counts (write()). Both PostgresMetadataStore and
 * PostgresReleaseStore run over one of these, as the SQLite ones share one connection.
 */
import pg from 'pg';
import { IqpError } from '../../../src/errors.js';
import { ChangeFeed } from './changes.js';
import { sessionConfig } from './session.js';

export interface PostgresOptions {
  /** postgres:// URL of the database. */
  readonly connectionString: string;
  /** Connections in the pool (default 10); the change listener has one more of its own. */
  readonly poolSize?: number;
  /** The schema of the registry's tables (default: the server's search_path, usually public). */
  readonly schema?: string;
  /** application_name of the pool's connections (default 'iqp'); the listener's adds '-listen'. */
  readonly applicationName?: string;
  /** How often the change counter is read as a backstop to notifications (default 1000 ms). */
  readonly pollMs?: number;
}

const INT8 = 20;

/**
 * bigint (ids, sizes, counts, sequences) as a number, as the interfaces carry them: pg's default is
 * a string. Past 2^53 a number would be wrong, so such a value is refused rather than rounded.
 */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new IqpError('IQP_E_INTERNAL', `The database returned ${text}, past the integers iqp can represent.`);
  return n;
}

// Per connection rather than pg.types.setTypeParser, which would change every pg user in the process.
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 ? parseInt8 : pg.types.getTypeParser(oid, format))) as pg.CustomTypesConfig['getTypeParser'],
};

const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const LOCK_COUNTER = 'SELECT generation FROM registry_changes WHERE singleton = 1 FOR UPDATE';
const READ_COUNTER = 'SELECT generation FROM registry_changes WHERE singleton = 1';

export class PgDatabase {
  readonly pool: pg.Pool;
  readonly changes: ChangeFeed;
  #closed = false;

  constructor(options: PostgresOptions) {
    if (options.schema !== undefined && !SCHEMA.test(options.schema)) {
      throw new IqpError('IQP_E_CONFIG', `Invalid PostgreSQL schema name ${JSON.stringify(options.schema)}: use letters, digits and underscores.`);
    }
    const appName = options.applicationName ?? 'iqp';
    // Every counted write holds the change counter's lock (write()): a server that stalls or
    // vanishes inside one must not hold every other server's writes for ever, hence the idle
    // transaction timeout and TCP keepalives (which also notice a listening connection gone silent).
    const settings = ['-c idle_in_transaction_session_timeout=60s', ...(options.schema === undefined ? [] : [`-c search_path=${options.schema}`])];
    const client: pg.ClientConfig = { ...sessionConfig(options.connectionString, settings), types, keepAlive: true };
    this.pool = new pg.Pool({ ...client, application_name: appName, max: options.poolSize ?? 10 });
    // An idle pooled connection the server drops (restart, pg_terminate_backend) is an 'error'
    // event; the pool discards it and connects anew when needed. Unhandled, it would end the process.
    this.pool.on('error', () => undefined);
    this.changes = new ChangeFeed({
      listener: () => new pg.Client({ ...client, application_name: `${appName}-listen` }),
      read: async () => (await this.pool.query<{ generation: number }>(READ_COUNTER)).rows[0]!.generation,
      pollMs: options.pollMs ?? 1000,
    });
  }

  /** One statement on a pooled connection: a single consistent snapshot. */
  async query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(text, params)).rows;
  }

  /**
   * A transaction of a write the change counter counts (packs, keys, releases, profiles). It first
   * locks the counter's row. Every such write updates that row (the triggers), so these
   * transactions already run one at a time from their first write to their commit. Taking the
   * lock first costs them little (only a refusal, which writes nothing, now waits its turn) and
   * makes each method's read-check-write atomic under READ COMMITTED, as SQLite's BEGIN
   * IMMEDIATE does: two servers inserting one id@version get 'created' and then 'identical' or
   * 'conflict', and a release's status and its channel's sequence cannot change between being
   * checked and being written. It also takes locks in one order, so these writes never
   * deadlock. (SERIALIZABLE would need retries for the same result.) The counter read back
   * before commit raises this process's generation at once.
   */
  async write<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    // Checked out, a client's connection error has no pool listener; the next query fails with it.
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    c.on('error', onError);
    try {
      await c.query('BEGIN');
      let result: T;
      let counter: number;
      try {
        await c.query(LOCK_COUNTER);
        result = await fn(c);
        counter = (await c.query<{ generation: number }>(READ_COUNTER)).rows[0]!.generation;
        await c.query('COMMIT');
      } catch (err) {
        // A connection that cannot even roll back is discarded, not returned to the pool.
        await c.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
        throw err;
      }
      this.changes.raise(counter);
      return result;
    } finally {
      c.off('error', onError);
      c.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.changes.stop();
    await this.pool.end();
  }
}
