/**
 * Plugins' own schema migrations, recorded in the core's `plugin_migrations` ledger. Forward only:
 * each pending migration runs in one transaction with its ledger row; a recorded migration the
 * plugin no longer lists, or whose SQL changed since it ran (by checksum), refuses the plugin,
 * since its tables are no longer what its code expects. A migration may create, change and drop
 * only objects named `<id>_…` on tables named so: anything else rolls it back. Callers hold the
 * data directory's lock (server start does; commands take it for the moment).
 */
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { IqpError } from '../../src/errors.js';
import type { PluginManifest, PluginMigration } from './api.js';
import type { SqlitePluginDatabase } from './sqlite-db.js';

interface LedgerRow {
  readonly migration_id: string;
  readonly checksum: string;
}

export function checksum(m: PluginMigration): string {
  return createHash('sha256').update(m.sqlite, 'utf8').digest('hex');
}

const refused = (id: string, message: string, migration?: string) =>
  new IqpError('IQP_E_PLUGIN_MIGRATION', `Plugin ${id}: ${message}`, { plugin: id, ...(migration ? { migration } : {}) });

/** The migrations of `manifest` not yet applied, after checking the applied ones are still the plugin's. */
export function pendingMigrations(db: Database.Database, manifest: PluginManifest): PluginMigration[] {
  const rows = db.prepare('SELECT migration_id, checksum FROM plugin_migrations WHERE plugin_id = ? ORDER BY migration_id').all(manifest.id) as LedgerRow[];
  const listed = new Map((manifest.migrations ?? []).map((m) => [m.id, m]));
  for (const row of rows) {
    const m = listed.get(row.migration_id);
    if (!m) throw refused(manifest.id, `migration ${row.migration_id} was applied to this registry, but version ${manifest.version} no longer lists it; migrations are forward-only.`, row.migration_id);
    if (checksum(m) !== row.checksum) throw refused(manifest.id, `migration ${row.migration_id} changed since it was applied (its SQL differs); a released migration must never change.`, row.migration_id);
  }
  const done = new Set(rows.map((r) => r.migration_id));
  return (manifest.migrations ?? []).filter((m) => !done.has(m.id));
}

type Objects = Map<string, { type: string; tbl_name: string; sql: string | null }>;

function objects(db: Database.Database): Objects {
  const rows = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as { type: string; name: string; tbl_name: string; sql: string | null }[];
  return new Map(rows.map((r) => [r.name, r]));
}

/** Whether a schema object belongs to plugin `id`: named `<id>_…`, on a table named so. */
export function ownedBy(id: string, o: { name: string; tbl_name: string }): boolean {
  const prefix = `${id}_`;
  return o.name.startsWith(prefix) && o.tbl_name.startsWith(prefix);
}

/** What a migration did outside the plugin's own names, one phrase each ("created table accounts"). */
function trespasses(id: string, before: Objects, after: Objects): string[] {
  const out: string[] = [];
  for (const [name, o] of after) {
    const was = before.get(name);
    if (ownedBy(id, { name, tbl_name: o.tbl_name })) continue;
    if (!was) out.push(`created ${o.type} ${name}`);
    else if (was.sql !== o.sql || was.tbl_name !== o.tbl_name) out.push(`changed ${o.type} ${name}`);
  }
  for (const [name, o] of before) if (!after.has(name) && !ownedBy(id, { name, tbl_name: o.tbl_name })) out.push(`dropped ${o.type} ${name}`);
  return out;
}

/** Applies the pending migrations, each in its own transaction with its ledger row; returns their ids. */
export async function applyPluginMigrations(pdb: SqlitePluginDatabase, manifest: PluginManifest, now: () => string): Promise<string[]> {
  const db = pdb.db;
  const applied: string[] = [];
  for (const m of pendingMigrations(db, manifest)) {
    await pdb
      .transaction(async () => {
        const before = objects(db);
        pdb.execScript(m.sqlite);
        const wrong = trespasses(manifest.id, before, objects(db));
        if (wrong.length > 0) {
          throw refused(manifest.id, `migration ${m.id} touched what is not the plugin's (${wrong.join(', ')}); a plugin's tables, indexes and triggers are named ${manifest.id}_…. It was rolled back.`, m.id);
        }
        db.prepare('INSERT INTO plugin_migrations (plugin_id, migration_id, checksum, applied_at) VALUES (?, ?, ?, ?)').run(manifest.id, m.id, checksum(m), now());
      })
      .catch((err: unknown) => {
        if (err instanceof IqpError) throw err;
        throw refused(manifest.id, `migration ${m.id} failed and was rolled back: ${(err as Error)?.message ?? err}`, m.id);
      });
    applied.push(m.id);
  }
  return applied;
}

/**
 * Names of the schema objects that belong to plugins recorded in the ledger (for a restore's schema
 * check: they are not the core's migrations' to vouch for, but they are the registry's data).
 */
export function pluginObjectNames(db: Database.Database): Set<string> {
  const ledger = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plugin_migrations'").get();
  if (!ledger) return new Set();
  const ids = db.prepare('SELECT DISTINCT plugin_id FROM plugin_migrations').pluck().all() as string[];
  return new Set([...objects(db)].filter(([name, o]) => ids.some((id) => ownedBy(id, { name, tbl_name: o.tbl_name }))).map(([name]) => name));
}
