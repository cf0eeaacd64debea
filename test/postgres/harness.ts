/**
 * What the PostgreSQL store tests share: the test server (test/postgres/global-setup.ts), a visible
 * skip when there is none, and a fresh schema per test, dropped after it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, inject } from 'vitest';
import type { PostgresOptions } from '../../server/stores/postgres/db.js';

const url = inject('pgUrl');
const skip = inject('pgSkip');

/** describe(); without a test PostgreSQL, skipped with the reason in its name, never silently. */
export function describePg(name: string, fn: () => void): void {
  describe.skipIf(url === null)(url === null ? `${name} [SKIPPED: no test PostgreSQL: ${skip}]` : name, fn);
}

export interface TestSchema {
  readonly name: string;
  /** Options of a store over this schema; small pools, as tests open several stores at once. */
  options(extra?: Partial<PostgresOptions>): PostgresOptions;
  /** The database_url a registry (or a command) uses to live in this schema, with any further query parameters (application_name…). */
  url(params?: Record<string, string>): string;
  /** SQL on a connection of its own, as an operator with psql would run it (no parameters: several statements). */
  sql(text: string, params?: unknown[]): Promise<pg.QueryResult>;
  drop(): Promise<void>;
}

/** An empty schema of its own, so tests (and test files running at once) never see each other's rows. */
export async function freshSchema(): Promise<TestSchema> {
  if (url === null) throw new Error('no test PostgreSQL');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const sql = async (text: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url, options: `-c search_path=${name}`, application_name: 'iqp-test' });
    await client.connect();
    try {
      return await client.query(text, params);
    } finally {
      await client.end();
    }
  };
  await sql(`CREATE SCHEMA ${name}`);
  return {
    name,
    options: (extra = {}) => ({ connectionString: url, schema: name, poolSize: 4, ...extra }),
    url: (params = {}) => {
      const u = new URL(url);
      u.searchParams.set('options', `-c search_path=${name}`);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.href;
    },
    sql,
    drop: async () => void (await sql(`DROP SCHEMA ${name} CASCADE`)),
  };
}
