/**
 * Plugins inside a CLI command (`iqp users …`): the data directory's enabled plugins loaded in
 * mode 'command' (register, config, migrations, start; no routes served), `fn` run with their
 * services, then stopped. Works beside a running server, as `iqp token` does: the core's schema and
 * pending plugin migrations are applied under the data directory's lock, taken for that moment only
 * (and refused while a server holds it, since that server runs the schema it started with).
 */
import { pluginAudit } from './audit.js';
import type { DatabaseChoice } from '../config.js';
import { openStores } from '../datadir.js';
import { lockDataDir } from '../lock.js';
import { IqpError } from '../../src/errors.js';
import type { ServiceRef } from './api.js';
import { PluginHost } from './host.js';
import { openPluginDatabase } from './open-db.js';
import type { ServerFile } from './server-file.js';

export interface OfflinePlugins {
  /** A service a running plugin provides; IQP_E_PLUGIN_UNAVAILABLE when none does (not enabled, or it failed). */
  service<S>(ref: ServiceRef<S>): S;
}

/**
 * `options.lockHeld`: the caller holds the data directory's lock already (a server's primary
 * process), so migrations need not take it. `options.database`: where the registry keeps its
 * metadata, and so the plugins their tables (default the data directory's SQLite file); on
 * PostgreSQL, migrations take its advisory lock instead of the directory's. `options.serverFile`:
 * server.json as the caller read it (default: read it now).
 */
export async function withPlugins<T>(dataDir: string, command: string, fn: (host: OfflinePlugins) => Promise<T>, options: { lockHeld?: boolean; database?: DatabaseChoice; serverFile?: ServerFile } = {}): Promise<T> {
  const who = `iqp ${command}`;
  const database = options.database ?? { kind: 'sqlite' };
  const stores = await openStores(dataDir, who, { database, blobs: { kind: 'fs' } });
  const opened = await openPluginDatabase(dataDir, database);
  const db = opened.db;
  try {
    const host = await PluginHost.start({
      dataDir,
      mode: 'command',
      db,
      // A command's stderr is for people: a plugin's warnings and errors, one line each.
      log: (line) => {
        if (line['level'] === 'warn' || line['level'] === 'error') process.stderr.write(`${who}: ${line['plugin'] ? `plugin ${String(line['plugin'])}: ` : ''}${String(line['msg'])}${line['error'] ? ` (${String(line['error'])})` : ''}\n`);
      },
      audit: pluginAudit(db),
      ...(options.serverFile ? { serverFile: options.serverFile } : {}),
      ...(options.lockHeld || database.kind === 'postgres' ? {} : { lockForMigrations: () => lockDataDir(dataDir, `${who} (plugin migrations)`) }),
    });
    try {
      return await fn({
        service<S>(ref: ServiceRef<S>): S {
          const impl = host.service(ref);
          if (impl !== null) return impl;
          const failed = host.status().failed;
          throw new IqpError(
            'IQP_E_PLUGIN_UNAVAILABLE',
            `No running plugin provides ${ref.id}${failed.length > 0 ? ` (failed: ${failed.map((f) => `${f.id}: ${f.message}`).join('; ')})` : ''}.`,
            { service: ref.id },
            { hint: 'Enable the plugin that provides it (`iqp plugins list`, `iqp plugins enable <id>`), and fix what the message says failed.' },
          );
        },
      });
    } finally {
      await host.stop();
    }
  } finally {
    await opened.close();
    await stores.meta.close();
  }
}
