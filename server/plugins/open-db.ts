/**
 * The plugins' database for a registry: its own connection to the data directory's SQLite file, or
 * its own pool on the PostgreSQL database that holds the registry's metadata (`database_url`), so
 * plugin tables and audit entries live beside the core's whichever database that is.
 */
import { type DatabaseChoice, databasePath } from '../config.js';
import { PgPluginDatabase } from './pg-db.js';
import { SqlitePluginDatabase } from './sqlite-db.js';
import type { PluginStorage } from './storage.js';

export interface OpenedPluginDatabase {
  readonly db: PluginStorage;
  close(): Promise<void>;
}

export function openPluginDatabase(dataDir: string, database: DatabaseChoice): OpenedPluginDatabase {
  if (database.kind === 'postgres') {
    const db = new PgPluginDatabase({ connectionString: database.url, poolSize: database.poolSize });
    return { db, close: () => db.close() };
  }
  const db = new SqlitePluginDatabase(databasePath(dataDir));
  return { db, close: async () => db.close() };
}
