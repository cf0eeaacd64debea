/**
 * Applying the migrations, and what they produce: the schema a registry.sqlite at a given version
 * must have, so that a restore can refuse a database with anything more, less or different (an
 * added trigger would run inside every later request).
 */
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

export const LATEST_SCHEMA = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Applies the migrations not yet applied, up to `upTo`, one transaction each; returns their versions. */
export function applyMigrations(db: Database.Database, upTo = LATEST_SCHEMA, now: () => Date = () => new Date()): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT');
  const done = new Set(appliedVersions(db));
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version) || m.version > upTo) continue;
    db.transaction(() => {
      db.exec(m.up);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now().toISOString());
    })();
    applied.push(m.version);
  }
  return applied;
}

/** The versions recorded as applied, ascending; none when the ledger does not exist yet. */
export function appliedVersions(db: Database.Database): number[] {
  const ledger = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  return ledger ? (db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all() as number[]) : [];
}

export interface SchemaObject {
  readonly type: string;
  readonly name: string;
  readonly tbl_name: string;
  readonly sql: string | null;
}

/**
 * Every schema object (tables, indexes, triggers, views) by name. SQLite's own statistics tables
 * (sqlite_stat*, made by ANALYZE or PRAGMA optimize) are left out: they steer the query planner
 * only, and a healthy registry may have them.
 */
export function schemaObjects(db: Database.Database): Map<string, SchemaObject> {
  const rows = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_stat%' ESCAPE '\\' ORDER BY name").all() as SchemaObject[];
  return new Map(rows.map((r) => [r.name, r]));
}

/** The schema the migrations up to `version` produce on a fresh database. */
export function expectedSchema(version: number): Map<string, SchemaObject> {
  const db = new Database(':memory:');
  try {
    applyMigrations(db, version);
    return schemaObjects(db);
  } finally {
    db.close();
  }
}

/** How `actual` differs from `expected`, one phrase per object ("extra trigger steal"); empty when equal. */
export function schemaDifferences(actual: Map<string, SchemaObject>, expected: Map<string, SchemaObject>): string[] {
  const out: string[] = [];
  for (const [name, a] of actual) {
    const e = expected.get(name);
    if (!e) out.push(`extra ${a.type} ${name}`);
    else if (e.type !== a.type || e.tbl_name !== a.tbl_name || e.sql !== a.sql) out.push(`changed ${a.type} ${name}`);
  }
  for (const [name, e] of expected) if (!actual.has(name)) out.push(`missing ${e.type} ${name}`);
  return out;
}
