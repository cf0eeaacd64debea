/** Small SQL pieces both PostgreSQL stores use. */
import type pg from 'pg';
import type { NewAuditEntry } from '../types.js';

/** Where a statement runs: the pool (one statement, its own snapshot) or a transaction's client. */
export type Queryable = pg.Pool | pg.PoolClient;

/** One audit row; JSON.stringify throws on details it cannot write, which aborts the transaction. */
export async function insertAudit(c: Queryable, entry: NewAuditEntry): Promise<void> {
  await c.query('INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)', [
    entry.at,
    entry.actor,
    entry.action,
    entry.target,
    entry.details === null ? null : JSON.stringify(entry.details),
  ]);
}

/** Numbered parameters for a statement whose conditions depend on the call: `$n` per value added. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** `WHERE a AND b` for the given conditions, or nothing. */
export function where(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
}
