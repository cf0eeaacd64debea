/**
 * What a restore checks in an extracted backup before anything is moved into place, beyond the
 * checksums: the database is sound, has exactly the schema the migrations produce at the backup's
 * schema version (no extra trigger, view or index, none missing), and every blob it refers to is in
 * the backup (plugins' own tables, recorded in the plugin_migrations ledger, are theirs). A backup made by `iqp server backup` always passes; a hand-made or tampered one may not.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { IqpError } from '../src/errors.js';
import { pluginObjectNames } from './plugins/sqlite-schema.js';
import { blobRefs } from './stores/sqlite/metadata.js';
import { appliedVersions, expectedSchema, schemaDifferences, schemaObjects } from './stores/sqlite/schema.js';

/** Where a blob sits, in a data directory and in a backup alike. */
export function blobPath(sha: string): string {
  return `blobs/sha256/${sha.slice(0, 2)}/${sha}`;
}

export const invalidBackup = (message: string, details?: Record<string, unknown>) => new IqpError('IQP_E_BACKUP_INVALID', `The backup is damaged or inconsistent: ${message}`, details);

/** Checks `database` (extracted into `dir`) against the backup's schema version; throws IQP_E_BACKUP_INVALID. */
export function checkBackupDatabase(dir: string, database: string, schemaVersion: number): void {
  let db: Database.Database;
  try {
    // Read-write: the extracted copy is ours, and a database left in WAL mode cannot be opened read-only without its -shm.
    db = new Database(join(dir, database), { fileMustExist: true });
  } catch (err) {
    throw invalidBackup(`${database} cannot be opened (${(err as Error).message}).`);
  }
  try {
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } catch (err) {
      throw invalidBackup(`${database} is not a readable SQLite database (${(err as Error).message}).`);
    }
    const integrity = db.prepare('PRAGMA integrity_check').pluck().all() as string[];
    if (integrity.length !== 1 || integrity[0] !== 'ok') throw invalidBackup(`${database} fails integrity_check: ${integrity.slice(0, 3).join('; ')}`);

    const versions = appliedVersions(db);
    const expectedVersions = Array.from({ length: schemaVersion }, (_, i) => i + 1);
    if (versions.join() !== expectedVersions.join()) {
      throw invalidBackup(`${database} records schema migrations [${versions.join(', ')}], backup.json says schema version ${schemaVersion}.`);
    }
    // Plugins' own tables (named <id>_… by a plugin the ledger records) are data, not core schema.
    const pluginObjects = pluginObjectNames(db);
    const actual = new Map([...schemaObjects(db)].filter(([name]) => !pluginObjects.has(name)));
    const differences = schemaDifferences(actual, expectedSchema(schemaVersion));
    if (differences.length > 0) {
      throw invalidBackup(`${database}'s schema is not what iqp's migrations 1–${schemaVersion} make: ${differences.join(', ')}.`, { schema_differences: differences });
    }
    const dangling = db.prepare('PRAGMA foreign_key_check').all() as { table: string }[];
    if (dangling.length > 0) throw invalidBackup(`${dangling.length} row(s) in ${database} refer to rows that do not exist (first in ${dangling[0]!.table}).`);

    const missing = blobRefs(db).filter((sha) => !existsSync(join(dir, blobPath(sha))));
    if (missing.length > 0) {
      throw invalidBackup(`${missing.length} blob(s) the database refers to are not in the backup, e.g. ${missing[0]}.`, { missing_blobs: missing.slice(0, 20) });
    }
  } finally {
    db.close();
  }
}
