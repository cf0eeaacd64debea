/**
 * Applying the PostgreSQL migrations. Several servers may start at once against one database, so
 * the whole run holds a session advisory lock: the first applies what is pending, the others
 * wait, then find the ledger up to date. Each migration and its ledger row commit together.
 */
import type pg from 'pg';
import { IqpError } from '../../../src/errors.js';
import { PG_MIGRATIONS } from './migrations.js';

/** The advisory lock key of iqp's migrations ('iqp' in ASCII); lock keys are database-wide. */
const MIGRATION_LOCK = 0x697170;

export const LATEST_PG_SCHEMA = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;

/** Applies the migrations not yet applied, one transaction each; returns their versions. */
export async function applyPgMigrations(pool: pg.Pool, now: () => Date = () => new Date()): Promise<number[]> {
  const c = await pool.connect();
  // A connection that fails here is discarded, and its session lock ends with it.
  let broken: Error | undefined;
  const keep = (err: unknown) => void (broken = err as Error);
  c.on('error', keep);
  try {
    await checkEncoding(c);
    // On this one connection: a session lock belongs to the connection that took it.
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)');
      const done = new Set((await c.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
      const applied: number[] = [];
      for (const m of PG_MIGRATIONS) {
        if (done.has(m.version)) continue;
        await c.query('BEGIN');
        try {
          await c.query(m.up);
          await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now().toISOString()]);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(keep);
          throw err;
        }
        applied.push(m.version);
      }
      return applied;
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(keep);
    }
  } finally {
    c.off('error', keep);
    c.release(broken);
  }
}

/** Text must round-trip byte for byte and compare as in SQLite: UTF-8 only. */
async function checkEncoding(c: pg.PoolClient): Promise<void> {
  const { rows } = await c.query<{ server_encoding: string }>('SHOW server_encoding');
  const encoding = rows[0]!.server_encoding;
  if (encoding !== 'UTF8') {
    throw new IqpError('IQP_E_CONFIG', `The PostgreSQL database's encoding is ${encoding}; iqp needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8').`);
  }
}

