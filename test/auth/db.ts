/** The auth plugin's tables on a real SQLite file, for the stores' tests (no registry around them). */
import { join } from 'node:path';
import manifest from '../../plugins/auth/iqp-plugin.json' with { type: 'json' };
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';

export function openDatabase(dir: string): SqlitePluginDatabase {
  const db = new SqlitePluginDatabase(join(dir, 'registry.sqlite'));
  // A second process on the same data directory finds the tables made.
  const made = db.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'auth_users'").get();
  if (!made) for (const m of manifest.migrations) db.execScript(m.sqlite);
  return db;
}

