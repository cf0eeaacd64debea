/**
 * Plugins' own schema migrations, recorded in the core's `plugin_migrations` ledger. Forward only:
 * each pending migration runs in one transaction with its ledger row; a recorded migration the
 * plugin no longer lists, or whose SQL changed since it ran (by checksum of this dialect's
 * script), refuses the plugin, since its tables are no longer what its code expects. A migration
 * may create, change and drop only objects named `<id>_…` on tables named so: anything else rolls
 * it back. Callers hold the data directory's lock (server start does; commands take it for the
 * moment), and the storage's migration lock (other servers on a PostgreSQL database).
 */
import { createHash } from 'node:crypto';
import { IqpError } from '../../src/errors.js';
import type { PluginManifest, PluginMigration } from './api.js';
import { type SqlDialect, transactionStatement } from './sql-scan.js';
import type { PluginStorage, SchemaObject } from './storage.js';

/** The script a migration runs on `dialect`; undefined when the plugin did not write one. */
export function migrationScript(m: PluginMigration, dialect: 'sqlite' | 'postgres'): string | undefined {
  return dialect === 'sqlite' ? m.sqlite : m.postgres;
}

/** SHA-256 of the script that runs (SQLite: `sqlite`, as the ledgers of existing registries record). */
export function checksum(m: PluginMigration, dialect: 'sqlite' | 'postgres' = 'sqlite'): string {
  return createHash('sha256')
    .update(migrationScript(m, dialect) ?? '', 'utf8')
    .digest('hex');
}

const refused = (id: string, message: string, migration?: string) =>
  new IqpError('IQP_E_PLUGIN_MIGRATION', `Plugin ${id}: ${message}`, { plugin: id, ...(migration ? { migration } : {}) });

/** IQP_E_PLUGIN_MIGRATION naming the plugin and its migration: "Plugin <id>: migration <m> <message>". */
export const migrationError = (id: string, migration: string, message: string) => refused(id, `migration ${migration} ${message}`, migration);

/**
 * Why a migration script may not run, before any of it does: one that begins or ends a transaction
 * itself would commit part of the migration beyond rolling back (the host runs each in a
 * transaction of its own, with its ledger row). Null when it may.
 */
export function transactionControlRefusal(pluginId: string, migrationId: string, script: string, dialect: SqlDialect): IqpError | null {
  const control = transactionStatement(script, dialect);
  if (!control) return null;
  const words = dialect === 'postgres' ? 'BEGIN, START, COMMIT, END, ROLLBACK, ABORT, SAVEPOINT and RELEASE' : 'BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT and RELEASE';
  return migrationError(pluginId, migrationId, `holds ${control}: a migration runs in the transaction the host opens for it, with its ledger row; leave ${words} out of it. Nothing of it ran.`);
}

/**
 * The migrations of `manifest` not yet applied, after checking the applied ones are still the
 * plugin's and each pending one has a script here. Only the ledger is read: a ledger from any
 * source (a registry's SQLite file being moved elsewhere) can be checked.
 */
export async function pendingMigrations(storage: Pick<PluginStorage, 'dialect' | 'appliedMigrations'>, manifest: PluginManifest): Promise<PluginMigration[]> {
  const rows = await storage.appliedMigrations(manifest.id);
  const listed = new Map((manifest.migrations ?? []).map((m) => [m.id, m]));
  for (const row of rows) {
    const m = listed.get(row.migration_id);
    if (!m) throw refused(manifest.id, `migration ${row.migration_id} was applied to this registry, but version ${manifest.version} no longer lists it; migrations are forward-only.`, row.migration_id);
    if (checksum(m, storage.dialect) !== row.checksum) throw refused(manifest.id, `migration ${row.migration_id} changed since it was applied (its SQL differs); a released migration must never change.`, row.migration_id);
  }
  const done = new Set(rows.map((r) => r.migration_id));
  const pending = (manifest.migrations ?? []).filter((m) => !done.has(m.id));
  const unwritten = pending.find((m) => migrationScript(m, storage.dialect) === undefined);
  if (unwritten) throw refused(manifest.id, `migration ${unwritten.id} has no "${storage.dialect}" script, and this registry's database is ${storage.dialect === 'postgres' ? 'PostgreSQL' : 'SQLite'}.`, unwritten.id);
  return pending;
}

/** Whether a schema object belongs to plugin `id`: named `<id>_…`, on a table named so. */
export function ownedBy(id: string, o: { name: string; table: string }): boolean {
  const prefix = `${id}_`;
  return o.name.startsWith(prefix) && o.table.startsWith(prefix);
}

/** Triggers are named per table on PostgreSQL; every other name is unique among its kind. */
const keyOf = (o: SchemaObject) => (o.type === 'trigger' ? `trigger ${o.name} on ${o.table}` : `${o.type} ${o.name}`);

/** What a migration did outside the plugin's own names, one phrase each ("created table accounts"). */
export function trespasses(id: string, before: readonly SchemaObject[], after: readonly SchemaObject[]): string[] {
  const was = new Map(before.map((o) => [keyOf(o), o]));
  const now = new Map(after.map((o) => [keyOf(o), o]));
  const out: string[] = [];
  for (const [key, o] of now) {
    if (ownedBy(id, o)) continue;
    const old = was.get(key);
    if (!old) out.push(`created ${o.type} ${o.name}`);
    else if (old.definition !== o.definition || old.table !== o.table) out.push(`changed ${o.type} ${o.name}`);
  }
  for (const [key, o] of was) if (!now.has(key) && !ownedBy(id, o)) out.push(`dropped ${o.type} ${o.name}`);
  return out;
}

/** Throws (so the migration's transaction rolls back) when the migration touched what is not the plugin's. */
export function refuseTrespass(pluginId: string, migrationId: string, before: readonly SchemaObject[], after: readonly SchemaObject[]): void {
  const wrong = trespasses(pluginId, before, after);
  if (wrong.length > 0) {
    throw refused(pluginId, `migration ${migrationId} touched what is not the plugin's (${wrong.join(', ')}); a plugin's tables, indexes and triggers are named ${pluginId}_…. It was rolled back.`, migrationId);
  }
}

/** Applies the pending migrations, each in its own transaction with its ledger row; returns their ids. */
export async function applyPluginMigrations(storage: PluginStorage, manifest: PluginManifest, now: () => string): Promise<string[]> {
  const applied: string[] = [];
  for (const m of await pendingMigrations(storage, manifest)) {
    await storage.applyMigration(manifest.id, m, checksum(m, storage.dialect), now()).catch((err: unknown) => {
      if (err instanceof IqpError) throw err;
      // A script that committed part of itself (sqlite-db.ts execScript) is not "rolled back".
      const partly = (err as { committed?: unknown } | null)?.committed === true;
      throw refused(manifest.id, `migration ${m.id} failed${partly ? '' : ' and was rolled back'}: ${(err as Error)?.message ?? err}`, m.id);
    });
    applied.push(m.id);
  }
  return applied;
}
