/**
 * A device's copy of a user's data, checksummed the way the registry checksums its export
 * (`GET /v1/sync/export`: one line per live entity in (entity, entity_id) order, the trailer's
 * sha256 over those lines). Equal checksums mean the device holds exactly the registry's state.
 */
import { createHash } from 'node:crypto';
import type { JsonObject } from '../sync-client/protocol.js';

export interface HeldRow {
  readonly version: number;
  readonly payload: JsonObject;
}

/** The export's line for `entity/entity_id`. */
export function exportLine(key: string, row: HeldRow): string {
  const slash = key.indexOf('/');
  return `{"entity":${JSON.stringify(key.slice(0, slash))},"entity_id":${JSON.stringify(key.slice(slash + 1))},"version":${row.version},"payload":${JSON.stringify(row.payload)}}\n`;
}

/** sha256 over the export lines of `rows`, keyed `entity/entity_id`, in the export's order. */
export function exportChecksum(rows: ReadonlyMap<string, HeldRow>): string {
  const hash = createHash('sha256');
  for (const key of [...rows.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) hash.update(exportLine(key, rows.get(key)!));
  return hash.digest('hex');
}
