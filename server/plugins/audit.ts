/**
 * Where plugins' audit entries go: the registry's audit_log, written through the plugins' own
 * connection. There a write's durability costs one shared fdatasync off the event loop
 * (sqlite-db.ts), where the core's connection syncs every commit on it; a sync push audits every
 * push, so this is the difference between the audit log and the event loop taking turns.
 */
import type { NewAuditEntry } from '../stores/types.js';
import { auditRow, INSERT_AUDIT } from '../stores/sqlite/metadata.js';
import type { PluginDatabase } from './api.js';

export function pluginAudit(db: PluginDatabase): (entry: NewAuditEntry) => Promise<void> {
  return async (entry) => {
    await db.run(INSERT_AUDIT, auditRow(entry));
  };
}
