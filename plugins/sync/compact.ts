/**
 * Compaction: drops what no active device can still need. The horizon is the lowest cursor an
 * active device (seen within retention.max_days) has acknowledged by pulling; below it, tombstones
 * go, and so does every version of an entity but the newest (a device's queued edit may still be
 * based on that one). Live entities are never touched, so compaction never changes what a device
 * ends up with. A device that comes back with a cursor below the floor gets `reset`.
 * Mutation results older than max_days go too (a replay that late is a new push).
 */
import type { Core } from './core.js';

export interface CompactStats {
  readonly users: number;
  readonly tombstones: number;
  readonly versions: number;
  readonly mutations: number;
}

export async function compactUser(core: Core, userId: string): Promise<Omit<CompactStats, 'users'>> {
  const now = core.ctx.clock.nowMs();
  const since = now - core.config.retention.max_days * 86_400_000;
  return core.ctx.db.transaction(async (tx) => {
    const user = await core.store.user(userId, tx);
    if (!user) return { tombstones: 0, versions: 0, mutations: 0 };
    const active = (await core.store.devices(userId, tx)).filter((d) => d.last_seen_ms >= since);
    const horizon = Math.max(user.floor, active.length === 0 ? user.head : Math.min(...active.map((d) => d.acked)));
    const tombstones = await tx.run('DELETE FROM sync_rows WHERE user_id = ? AND deleted = 1 AND seq <= ?', [userId, horizon]);
    // A superseded version goes once a newer one (another superseded one, or the current row) is at or below the horizon.
    const superseded = await tx.run(
      `DELETE FROM sync_versions WHERE user_id = ? AND seq <= ? AND (
         NOT EXISTS (SELECT 1 FROM sync_rows r WHERE r.user_id = sync_versions.user_id AND r.entity = sync_versions.entity AND r.entity_id = sync_versions.entity_id)
         OR EXISTS (SELECT 1 FROM sync_rows r WHERE r.user_id = sync_versions.user_id AND r.entity = sync_versions.entity AND r.entity_id = sync_versions.entity_id AND r.seq <= ?)
         OR EXISTS (SELECT 1 FROM sync_versions n WHERE n.user_id = sync_versions.user_id AND n.entity = sync_versions.entity AND n.entity_id = sync_versions.entity_id
                    AND n.version > sync_versions.version AND n.seq <= ?))`,
      [userId, horizon, horizon, horizon],
    );
    const mutations = await tx.run('DELETE FROM sync_mutations WHERE user_id = ? AND created_ms < ?', [userId, since]);
    if (horizon !== user.floor) await tx.run('UPDATE sync_users SET floor = ? WHERE user_id = ?', [horizon, userId]);
    return { tombstones: tombstones.changes, versions: superseded.changes, mutations: mutations.changes };
  }, core.userTx(userId));
}

/** Compacts one user, or every user one transaction each (so clients keep syncing in between). */
export async function compact(core: Core, userId?: string): Promise<CompactStats> {
  const ids = userId ? [userId] : (await core.store.users()).map((u) => u.user_id);
  const total = { users: 0, tombstones: 0, versions: 0, mutations: 0 };
  for (const id of ids) {
    const s = await compactUser(core, id);
    total.users++;
    total.tombstones += s.tombstones;
    total.versions += s.versions;
    total.mutations += s.mutations;
  }
  return total;
}
