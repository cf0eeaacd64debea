/**
 * The plugins whose tables move with the registry: every plugin the source's ledger records (a
 * disabled plugin's data is still the registry's) and every enabled one, found through server.json
 * as the server finds them. Their migrations must be exactly the ones the source has applied (the
 * copy maps tables as those migrations left them), and each must have a PostgreSQL script; the
 * target then gets them applied as `iqp server start` would apply them.
 */
import { IqpError } from '../../src/errors.js';
import { startOrder } from '../plugins/deps.js';
import { readPluginManifest } from '../plugins/loader.js';
import type { LoadedManifest } from '../plugins/manifest.js';
import { applyPluginMigrations, migrationScript, pendingMigrations } from '../plugins/migrations.js';
import { PgPluginDatabase } from '../plugins/pg-db.js';
import { readServerFile } from '../plugins/server-file.js';
import type { LedgerRow } from '../plugins/storage.js';

/** The manifests of the registry's plugins, in dependency order. */
export function registryPlugins(dataDir: string, ledger: ReadonlyMap<string, readonly LedgerRow[]>): LoadedManifest[] {
  const file = readServerFile(dataDir);
  const ids = new Set([...Object.entries(file.plugins).filter(([, e]) => e.enabled).map(([id]) => id), ...ledger.keys()]);
  const manifests = new Map<string, LoadedManifest>();
  for (const id of ids) {
    const entry = file.plugins[id];
    if (!entry) {
      throw new IqpError('IQP_E_PLUGIN_MISSING', `The registry holds tables of plugin ${id} (its migrations are in the ledger), but server.json does not name it, so its PostgreSQL migrations cannot be found.`, { plugin: id }, {
        hint: `Enable the plugin (\`iqp plugins enable ${id}\`; it may be disabled again afterwards), then run migrate-store again.`,
      });
    }
    manifests.set(id, readPluginManifest(id, entry.source, dataDir));
  }
  const { order } = startOrder([...manifests.values()].map((m) => ({ id: m.id, version: m.version, requires: m.requires ?? {} })));
  // Plugins caught in a cycle of requirements still have tables: they go last, by id.
  const rest = [...manifests.keys()].filter((id) => !order.includes(id)).sort();
  return [...order, ...rest].map((id) => manifests.get(id)!);
}

/**
 * Refuses plugins whose migrations the source has not all applied (its tables are older than the
 * target's would be), applied ones the plugin no longer lists or that changed
 * (IQP_E_PLUGIN_MIGRATION), and migrations without a PostgreSQL script.
 */
export async function checkPlugins(manifests: readonly LoadedManifest[], ledger: ReadonlyMap<string, readonly LedgerRow[]>, dataDir: string): Promise<void> {
  for (const manifest of manifests) {
    const pending = await pendingMigrations({ dialect: 'sqlite', appliedMigrations: async (id) => [...(ledger.get(id) ?? [])] }, manifest);
    if (pending.length > 0) {
      throw new IqpError('IQP_E_CONFIG', `Plugin ${manifest.id}'s migrations ${pending.map((m) => m.id).join(', ')} have not been applied to ${dataDir}.`, { plugin: manifest.id, pending: pending.map((m) => m.id) }, {
        hint: 'Bring it up to date first, with the settings it runs with now (no database_url): start this iqp on it once with the plugin enabled (plugins migrate at start) and stop it; then run migrate-store.',
      });
    }
    const unwritten = (manifest.migrations ?? []).find((m) => migrationScript(m, 'postgres') === undefined);
    if (unwritten) {
      throw new IqpError('IQP_E_PLUGIN_MIGRATION', `Plugin ${manifest.id}: migration ${unwritten.id} has no "postgres" script, so its tables cannot be made in PostgreSQL.`, { plugin: manifest.id, migration: unwritten.id });
    }
  }
}

/** Applies the plugins' pending PostgreSQL migrations under the plugins' migration lock; returns what ran, by plugin. */
export async function migratePlugins(url: string, manifests: readonly LoadedManifest[], now: () => Date): Promise<Record<string, string[]>> {
  const db = new PgPluginDatabase({ connectionString: url, poolSize: 2, applicationName: 'iqp-migrate-store' });
  try {
    const unlock = await db.lockMigrations();
    try {
      const applied: Record<string, string[]> = {};
      for (const manifest of manifests) applied[manifest.id] = await applyPluginMigrations(db, manifest, () => now().toISOString());
      return applied;
    } finally {
      await unlock();
    }
  } finally {
    await db.close();
  }
}
