/**
 * The plugin migrations' PostgreSQL side: applying one migration with its ledger row, the schema
 * objects of the registry's schema as pg_catalog describes them (to tell what a migration
 * touched), and the advisory lock under which servers starting at once migrate one at a time.
 */
import type pg from 'pg';
import type { PluginMigration } from './api.js';
import { refuseTrespass, transactionControlRefusal } from './migrations.js';
import type { PgPluginDatabase } from './pg-db.js';
import type { SchemaObject } from './storage.js';

/** The advisory lock key of plugin migrations ('iqpp' in ASCII; the core's is 'iqp'); lock keys are database-wide. */
const PLUGIN_MIGRATION_LOCK = 0x69717070;

/**
 * Every object of the schema `$1` (an oid) a migration could create, change or drop: relations
 * with their columns, constraints and definitions; indexes; triggers (named per table); functions
 * (by signature, as overloads share a name); types of their own (enums, domains, ranges, composites).
 */
const OBJECTS = `
  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END AS type,
         c.relname::text AS name, c.relname::text AS "table",
         concat_ws(' | ',
           (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                              || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
              FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
           (SELECT string_agg(con.conname || ' ' || pg_get_constraintdef(con.oid), ', ' ORDER BY con.conname) FROM pg_constraint con WHERE con.conrelid = c.oid),
           CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
           (SELECT concat_ws(' ', s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle) FROM pg_sequence s WHERE s.seqrelid = c.oid)
         ) AS definition
    FROM pg_class c
   WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT 'index', i.relname::text, t.relname::text, pg_get_indexdef(i.oid)
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
   WHERE i.relnamespace = $1
  UNION ALL
  SELECT 'trigger', tg.tgname::text, t.relname::text, pg_get_triggerdef(tg.oid)
    FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
   WHERE NOT tg.tgisinternal AND t.relnamespace = $1
  UNION ALL
  SELECT 'function', p.oid::regprocedure::text, p.proname::text, CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE p.prosrc END
    FROM pg_proc p
   WHERE p.pronamespace = $1
  UNION ALL
  SELECT 'type', t.typname::text, t.typname::text,
         concat_ws(' ', t.typtype, format_type(t.typbasetype, t.typtypmod),
           (SELECT string_agg(pg_get_constraintdef(con.oid), ', ' ORDER BY con.conname) FROM pg_constraint con WHERE con.contypid = t.oid),
           (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
    FROM pg_type t
   WHERE t.typnamespace = $1 AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))`;

async function objects(c: pg.PoolClient, namespace: number): Promise<SchemaObject[]> {
  return (await c.query<SchemaObject>(OBJECTS, [namespace])).rows;
}

/**
 * The migration's postgres script and its ledger row in one READ COMMITTED transaction (DDL has
 * nothing to serialize against; the migration lock keeps other servers out). The schema is the
 * one current when it starts, even if the script moves search_path.
 */
export async function applyPgMigration(db: PgPluginDatabase, pluginId: string, migration: PluginMigration, checksum: string, at: string): Promise<void> {
  const script = migration.postgres;
  if (script === undefined) throw new Error(`migration ${migration.id} has no postgres script`);
  // Refused before any of it runs: a COMMIT in it would commit what ran before it, beyond rolling back.
  const refusal = transactionControlRefusal(pluginId, migration.id, script, 'postgres');
  if (refusal) throw refusal;
  await db.withClient(async (c) => {
    await c.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    const { rows } = await c.query<{ oid: number; name: string }>('SELECT oid::int8 AS oid, nspname::text AS name FROM pg_namespace WHERE nspname = current_schema()');
    const schema = rows[0];
    if (!schema) throw new Error('the search_path names no schema that exists');
    const before = await objects(c, schema.oid);
    await c.query(script);
    refuseTrespass(pluginId, migration.id, before, await objects(c, schema.oid));
    await c.query(`INSERT INTO ${c.escapeIdentifier(schema.name)}.plugin_migrations (plugin_id, migration_id, checksum, applied_at) VALUES ($1, $2, $3, $4)`, [
      pluginId,
      migration.id,
      checksum,
      at,
    ]);
    await c.query('COMMIT');
  });
}

/**
 * A session advisory lock on a connection kept for it (a session lock belongs to the connection
 * that took it), held until the returned function runs; a server that dies meanwhile loses its
 * connection and so the lock.
 */
export async function lockPgMigrations(pool: pg.Pool): Promise<() => Promise<void>> {
  const c = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken = err);
  c.on('error', onError);
  const end = () => {
    c.off('error', onError);
    c.release(broken);
  };
  try {
    await c.query('SELECT pg_advisory_lock($1)', [PLUGIN_MIGRATION_LOCK]);
  } catch (err) {
    broken ??= err as Error;
    end();
    throw err;
  }
  return async () => {
    await c.query('SELECT pg_advisory_unlock($1)', [PLUGIN_MIGRATION_LOCK]).catch((err: unknown) => (broken ??= err as Error));
    end();
  };
}
