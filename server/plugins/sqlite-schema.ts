/**
 * The plugin migrations' SQLite side: the schema objects as sqlite_master lists them (to tell what
 * a migration touched), and which of them belong to plugins the ledger records (for a restore's
 * schema check).
 */
import type Database from 'better-sqlite3';
import { ownedBy } from './migrations.js';
import type { SchemaObject } from './storage.js';

export function sqliteObjects(db: Database.Database): SchemaObject[] {
  const rows = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").all() as { type: string; name: string; tbl_name: string; sql: string | null }[];
  return rows.map((r) => ({ type: r.type, name: r.name, table: r.tbl_name, definition: r.sql }));
}

/**
 * Names of the schema objects that belong to plugins recorded in the ledger (for a restore's schema
 * check: they are not the core's migrations' to vouch for, but they are the registry's data).
 */
export function pluginObjectNames(db: Database.Database): Set<string> {
  const ledger = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'plugin_migrations'").get();
  if (!ledger) return new Set();
  const ids = db.prepare('SELECT DISTINCT plugin_id FROM plugin_migrations').pluck().all() as string[];
  const names = new Set(sqliteObjects(db).filter((o) => ids.some((id) => ownedBy(id, o))).map((o) => o.name));
  // The indexes SQLite makes for a plugin table's PRIMARY KEY and UNIQUE constraints
  // (sqlite_autoindex_<table>_<n>) are the plugin's too.
  const automatic = db.prepare("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name LIKE 'sqlite\\_autoindex\\_%' ESCAPE '\\'").all() as { name: string; tbl_name: string }[];
  for (const a of automatic) {
    const prefix = `sqlite_autoindex_${a.tbl_name}_`;
    if (names.has(a.tbl_name) && a.name.startsWith(prefix) && /^\d+$/.test(a.name.slice(prefix.length))) names.add(a.name);
  }
  return names;
}
