/** Stored rows as the protocol shows them. */
import type { ChangeT, ConflictViewT } from './routes/schemas.js';
import type { ConflictRow, EntityRow } from './store.js';

const json = (text: string | null) => (text === null ? null : (JSON.parse(text) as Record<string, unknown>));

export function changeView(r: EntityRow): ChangeT {
  return { entity: r.entity, entity_id: r.entity_id, op: r.deleted ? 'delete' : 'upsert', payload: r.deleted ? null : json(r.payload), version: r.version, seq: r.seq };
}

export function conflictView(c: ConflictRow): ConflictViewT {
  return {
    id: c.id,
    entity: c.entity,
    entity_id: c.entity_id,
    seq: c.seq,
    fields: JSON.parse(c.fields) as string[],
    base: json(c.base),
    winner: json(c.winner),
    loser: json(c.loser),
    winner_device: c.winner_device,
    loser_device: c.loser_device,
    summary: c.summary,
    status: c.status,
    resolution: c.resolution as ConflictViewT['resolution'],
    created_at: c.created_at,
    resolved_at: c.resolved_at,
  };
}
