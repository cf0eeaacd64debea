/**
 * Conflict records: listed for the user, and resolved by keeping the winner, the loser or a new
 * payload. A resolution is a new version of the entity (it syncs to every device like any other
 * change) and moves the record to a new sequence number, so pulls carry the resolution too.
 */
import type { Core } from './core.js';
import type { Doc } from './merge.js';
import type { ConflictViewT } from './routes/schemas.js';
import { conflictView } from './views.js';

export type Keep = 'winner' | 'loser' | Doc;

export async function listConflicts(core: Core, userId: string, status: 'open' | 'resolved' | 'all', after: string, limit: number) {
  const rows = await core.store.listConflicts(userId, status, after, limit + 1);
  const page = rows.slice(0, limit);
  return { conflicts: page.map(conflictView), next: rows.length > limit ? page[page.length - 1]!.id : null };
}

export async function resolveConflict(core: Core, userId: string, id: string, deviceId: string, keep: Keep): Promise<{ conflict: ConflictViewT; version: number; seq: number }> {
  const out = await core.ctx.db.transaction(async (tx) => {
    await core.active(userId, tx);
    await core.claimDevice(userId, deviceId, null, tx);
    const c = await core.store.conflict(userId, id, tx);
    if (!c) throw core.ctx.error('IQP_E_NOT_FOUND', `No conflict ${id} on this account.`);
    if (c.status !== 'open') throw core.ctx.error('IQP_E_SYNC_CONFLICT_RESOLVED', `Conflict ${id} was resolved at ${c.resolved_at}.`);
    const chosen = keep === 'winner' ? c.winner : keep === 'loser' ? c.loser : JSON.stringify(keep);
    const entity = core.entities.get(c.entity);
    if (chosen !== null && entity) {
      // A kept payload is held to the entity's limits as a pushed one is (a stored side already was).
      const bytes = Buffer.byteLength(chosen);
      if (bytes > entity.maxPayloadBytes) throw core.ctx.error('IQP_E_SYNC_PAYLOAD_TOO_LARGE', `The payload is ${bytes} bytes; ${c.entity} takes at most ${entity.maxPayloadBytes}.`, { details: { field: 'body.keep' } });
      const bad = entity.check(JSON.parse(chosen) as Doc);
      if (bad) throw core.ctx.error('IQP_E_SYNC_PAYLOAD_INVALID', bad.message, { details: { field: `body.keep${bad.field.replace(/^payload/, '')}` } });
    }
    const user = await core.ensureUser(userId, tx);
    const current = await core.store.row(userId, c.entity, c.entity_id, tx);
    // An entity whose row compaction (or a replace import) removed continues above the floor, as a push does.
    const version = current ? current.version + 1 : user.floor + 1;
    const seq = user.head + 1;
    await core.store.write(
      userId,
      { entity: c.entity, entity_id: c.entity_id, version, seq, deleted: chosen === null ? 1 : 0, payload: chosen, device_id: deviceId },
      current,
      core.ctx.clock.nowMs(),
      tx,
    );
    await core.store.resolveConflict(userId, id, seq + 1, typeof keep === 'string' ? keep : 'payload', core.ctx.clock.now(), tx);
    await core.store.setHead(userId, seq + 1, tx);
    return { conflict: conflictView((await core.store.conflict(userId, id, tx))!), version, seq };
  }, core.userTx(userId));
  core.notifier.changed(userId);
  await core.ctx.audit({ action: 'conflict_resolved', actor: `user:${userId}`, target: `device:${deviceId}`, details: { conflict: id, keep: typeof keep === 'string' ? keep : 'payload' } });
  return out;
}
