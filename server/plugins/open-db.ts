/**
 * The plugins' database for a registry: its own connection to the data directory's SQLite file, or
 * its own pool on the PostgreSQL database that holds the registry's metadata (`database_url`), so
 * plugin tables and audit entries live beside the core's whichever database that is.
 */
import { type DatabaseChoice, databasePath } from '../config.js';
import { SqlitePluginDatabase } from './sqlite-db.js';
import type { PluginStorage } from './storage.js';

export interface OpenedPluginDatabase {
  readonly db: PluginStorage;
  close(): Promise<void>;
}

/** `server`: the connection of a server process (SQLite: checkpoints on a worker thread, its failures logged here). */
export async function openPluginDatabase(dataDir: string, database: DatabaseChoice, server?: { log: (line: Record<string, unknown>) => void }): Promise<OpenedPluginDatabase> {
  if (database.kind === 'postgres') {
    // Loaded only for PostgreSQL: node-pg is not needed by the embedded registry.
    const { PgPluginDatabase } = await import('./pg-db.js');
    const db = new PgPluginDatabase({ connectionString: database.url, poolSize: database.poolSize });
    return { db, close: () => db.close() };
  }
  const db = new SqlitePluginDatabase(
    databasePath(dataDir),
    server ? { checkpointThread: { onFallBack: (why) => server.log({ level: 'warn', msg: `plugin database: ${why}; SQLite checkpoints the WAL itself again` }) } } : {},
  );
  return {
    db,
    close: async () => {
      await db.checkpoints?.close();
      db.close();
    },
  };
}
