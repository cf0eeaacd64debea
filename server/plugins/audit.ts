/**
 * Where plugins' audit entries go: the registry's audit_log, written through the plugins' own
 * database, so the core's connection or pool is never shared with plugin work.
 *
 * SQLite: there a write's durability costs one shared fdatasync off the event loop
 * (sqlite-db.ts), where the core's connection syncs every commit on it; a sync push audits every
 * push, so this is the difference between the audit log and the event loop taking turns.
 * PostgreSQL: the same row through PgPluginDatabase, which numbers the placeholders; the core's
 * schema there (server/stores/postgres/migrations.ts) has the same columns, with `id` an identity
 * and `details` JSON text, so `iqp audit` reads plugin entries as it reads the core's.
 */
import type { NewAuditEntry } from '../stores/types.js';
import { auditRow, INSERT_AUDIT } from '../stores/sqlite/metadata.js';
import type { PluginDatabase } from './api.js';

export function pluginAudit(db: PluginDatabase): (entry: NewAuditEntry, tx?: PluginDatabase) => Promise<void> {
  return async (entry, tx) => {
    // Both dialects: `?` placeholders, and no column whose type differs between the two schemas.
    await (tx ?? db).run(INSERT_AUDIT, auditRow(entry));
  };
}
