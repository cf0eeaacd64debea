/**
 * The sync plugin's SQL, and nothing else: every query names its user, so no code path can read
 * across accounts. Written for both dialects (the host numbers the `?` placeholders on PostgreSQL).
 */
import type { PluginDatabase } from '../../server/plugins/api.js';

export interface UserRow {
  readonly user_id: string;
  readonly head: number;
  readonly floor: number;
  readonly epoch: string;
}

export interface EntityRow {
  readonly entity: string;
  readonly entity_id: string;
  readonly version: number;
  readonly seq: number;
  readonly deleted: number;
  readonly payload: string | null;
  readonly device_id: string | null;
}

export interface VersionRow {
  readonly version: number;
  readonly deleted: number;
  readonly payload: string | null;
  readonly device_id: string | null;
}

export interface DeviceRow {
  readonly device_id: string;
  readonly user_id: string;
  readonly name: string | null;
  readonly acked: number;
  /** When acked was last recorded. */
  readonly acked_ms: number;
  readonly last_seen_ms: number;
}

export interface ConflictRow {
  readonly id: string;
  readonly user_id: string;
  readonly seq: number;
  readonly entity: string;
  readonly entity_id: string;
  readonly fields: string;
  readonly base: string | null;
  readonly winner: string | null;
  readonly loser: string | null;
  readonly winner_device: string | null;
  readonly loser_device: string | null;
  readonly summary: string;
  readonly status: 'open' | 'resolved';
  readonly resolution: string | null;
  readonly created_at: string;
  readonly resolved_at: string | null;
}

const ROW = 'entity, entity_id, version, seq, deleted, payload, device_id';

/** Ids per IN list: a few fixed sizes keep the prepared statements few. */
const CHUNK = 64;

/** `n` parenthesized lists of `width` placeholders, for multi-row VALUES. */
function tuples(n: number, width: number): string {
  const one = `(${Array.from({ length: width }, () => '?').join(', ')})`;
  return Array.from({ length: n }, () => one).join(', ');
}

/** `n` placeholders, for an IN list. */
function marks(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/**
 * A statement whose text depends on how many rows or ids it takes, built once per count: the same
 * string each time, so a push does not build kilobytes of placeholders inside its transaction and
 * the host's statement cache hashes each text once.
 */
function byCount(build: (n: number) => string): (n: number) => string {
  const made: string[] = [];
  return (n) => (made[n] ??= build(n));
}

const insertMutations = byCount((n) => `INSERT INTO sync_mutations (user_id, device_id, mutation_id, digest, result, created_ms) VALUES ${tuples(n, 6)}`);
const insertVersions = byCount(
  (n) => `INSERT INTO sync_versions (user_id, entity, entity_id, version, seq, deleted, payload, device_id) VALUES ${tuples(n, 8)}
         ON CONFLICT (user_id, entity, entity_id, version) DO NOTHING`,
);
const upsertRows = byCount(
  (n) => `INSERT INTO sync_rows (user_id, ${ROW}, updated_ms) VALUES ${tuples(n, 9)}
         ON CONFLICT (user_id, entity, entity_id) DO UPDATE SET version = excluded.version, seq = excluded.seq, deleted = excluded.deleted,
           payload = excluded.payload, device_id = excluded.device_id, updated_ms = excluded.updated_ms`,
);
const selectRows = byCount((n) => `SELECT ${ROW} FROM sync_rows WHERE user_id = ? AND (entity, entity_id) IN (VALUES ${tuples(n, 2)})`);
const selectMutations = byCount((n) => `SELECT mutation_id, digest, result FROM sync_mutations WHERE user_id = ? AND device_id = ? AND mutation_id IN (${marks(n)})`);
const selectDeviceNames = byCount((n) => `SELECT device_id, name FROM sync_devices WHERE user_id = ? AND device_id IN (${marks(n)})`);

export function entityKey(entity: string, entityId: string): string {
  return `${entity}\u0000${entityId}`;
}

export class Store {
  constructor(readonly db: PluginDatabase) {}

  user(userId: string, db = this.db): Promise<UserRow | undefined> {
    return db.get<UserRow>('SELECT user_id, head, floor, epoch FROM sync_users WHERE user_id = ?', [userId]);
  }

  /**
   * The user's row, made on first use, and claimed for this transaction: the no-op UPDATE takes
   * the row's lock, so a concurrent push, import or resolution of the same user (another request,
   * another server on PostgreSQL) waits for this one and is then retried as a serialization
   * failure, instead of building on the same head and colliding on a seq. SQLite's writers are
   * serialized already (BEGIN IMMEDIATE).
   */
  async ensureUser(userId: string, newEpoch: () => string, db: PluginDatabase): Promise<UserRow> {
    const claim = () => db.get<UserRow>('UPDATE sync_users SET head = head WHERE user_id = ? RETURNING user_id, head, floor, epoch', [userId]);
    // Every push but a user's first finds the row: one statement, and no epoch drawn for nothing.
    const found = await claim();
    if (found) return found;
    await db.run('INSERT INTO sync_users (user_id, head, floor, epoch) VALUES (?, 0, 0, ?) ON CONFLICT (user_id) DO NOTHING', [userId, newEpoch()]);
    return (await claim())!;
  }

  setHead(userId: string, head: number, db: PluginDatabase) {
    return db.run('UPDATE sync_users SET head = ? WHERE user_id = ?', [head, userId]);
  }

  device(deviceId: string, db = this.db): Promise<DeviceRow | undefined> {
    return db.get<DeviceRow>('SELECT device_id, user_id, name, acked, acked_ms, last_seen_ms FROM sync_devices WHERE device_id = ?', [deviceId]);
  }

  /** Binds a new device to the user; false when the id is another user's. */
  async claimDevice(deviceId: string, userId: string, name: string | null, nowMs: number, db: PluginDatabase): Promise<boolean> {
    await db.run(
      'INSERT INTO sync_devices (device_id, user_id, name, acked, created_ms, last_seen_ms) VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (device_id) DO NOTHING',
      [deviceId, userId, name, nowMs, nowMs],
    );
    const r = await db.run('UPDATE sync_devices SET last_seen_ms = ?, name = COALESCE(?, name) WHERE device_id = ? AND user_id = ?', [nowMs, name, deviceId, userId]);
    return r.changes === 1;
  }

  /**
   * The cursor a device last pulled with. Not durable: losing it in a power cut only leaves the
   * older ack, which keeps more history, so a pull does not wait for the disk to record it.
   */
  ack(deviceId: string, userId: string, seq: number, nowMs: number) {
    return this.db.transaction(
      (tx) => tx.run('UPDATE sync_devices SET acked = ?, acked_ms = ?, last_seen_ms = ? WHERE device_id = ? AND user_id = ?', [seq, nowMs, nowMs, deviceId, userId]),
      { durable: false },
    );
  }

  devices(userId: string, db = this.db): Promise<DeviceRow[]> {
    return db.all<DeviceRow>('SELECT device_id, user_id, name, acked, acked_ms, last_seen_ms FROM sync_devices WHERE user_id = ?', [userId]);
  }

  deviceNames(userId: string, ids: readonly string[], db: PluginDatabase): Promise<{ device_id: string; name: string | null }[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return db.all(selectDeviceNames(ids.length), [userId, ...ids]);
  }

  /** Stores a push's answers, a few statements of many rows each. */
  async saveMutations(userId: string, deviceId: string, rows: readonly { mutation_id: string; digest: string; result: string }[], nowMs: number, db: PluginDatabase): Promise<void> {
    for (let i = 0; i < rows.length; i += CHUNK) {
      const part = rows.slice(i, i + CHUNK);
      await db.run(
        insertMutations(part.length),
        part.flatMap((r) => [userId, deviceId, r.mutation_id, r.digest, r.result, nowMs]),
      );
    }
  }

  row(userId: string, entity: string, entityId: string, db: PluginDatabase): Promise<EntityRow | undefined> {
    return db.get<EntityRow>(`SELECT ${ROW} FROM sync_rows WHERE user_id = ? AND entity = ? AND entity_id = ?`, [userId, entity, entityId]);
  }

  /**
   * Writes an entity's new state. The state it replaces (`previous`) moves to sync_versions, where
   * later merges find their bases; the current state lives only in sync_rows.
   */
  write(userId: string, r: EntityRow, previous: EntityRow | undefined, nowMs: number, db: PluginDatabase): Promise<void> {
    return this.writeMany(userId, [r], previous ? [previous] : [], nowMs, db);
  }

  /**
   * write() for several entities in a few multi-row statements: `rows` holds at most one state per
   * entity (the newest), `previous` every state they replaced.
   */
  async writeMany(userId: string, rows: readonly EntityRow[], previous: readonly EntityRow[], nowMs: number, db: PluginDatabase): Promise<void> {
    for (let i = 0; i < previous.length; i += CHUNK) {
      const part = previous.slice(i, i + CHUNK);
      await db.run(
        insertVersions(part.length),
        part.flatMap((p) => [userId, p.entity, p.entity_id, p.version, p.seq, p.deleted, p.payload, p.device_id]),
      );
    }
    for (let i = 0; i < rows.length; i += CHUNK) {
      const part = rows.slice(i, i + CHUNK);
      await db.run(
        upsertRows(part.length),
        part.flatMap((r) => [userId, r.entity, r.entity_id, r.version, r.seq, r.deleted, r.payload, r.device_id, nowMs]),
      );
    }
  }

  /** The current rows of several entities (a push reads its batch's at once), by `entity\u0000entity_id`. */
  async rows(userId: string, keys: readonly (readonly [string, string])[], db: PluginDatabase): Promise<Map<string, EntityRow>> {
    const out = new Map<string, EntityRow>();
    for (let i = 0; i < keys.length; i += CHUNK) {
      const part = keys.slice(i, i + CHUNK);
      const found = await db.all<EntityRow>(selectRows(part.length), [userId, ...part.flat()]);
      for (const r of found) out.set(entityKey(r.entity, r.entity_id), r);
    }
    return out;
  }

  /** The stored results of several mutation ids of one device, by id. */
  async mutations(userId: string, deviceId: string, ids: readonly string[], db: PluginDatabase): Promise<Map<string, { digest: string; result: string }>> {
    const out = new Map<string, { digest: string; result: string }>();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const found = await db.all<{ mutation_id: string; digest: string; result: string }>(selectMutations(part.length), [userId, deviceId, ...part]);
      for (const r of found) out.set(r.mutation_id, r);
    }
    return out;
  }

  /** The superseded versions after `after` up to `upto`, oldest first (who wrote them, and their states); the current one is the row. */
  versions(userId: string, entity: string, entityId: string, after: number, upto: number, db: PluginDatabase): Promise<VersionRow[]> {
    return db.all<VersionRow>(
      'SELECT version, deleted, payload, device_id FROM sync_versions WHERE user_id = ? AND entity = ? AND entity_id = ? AND version > ? AND version <= ? ORDER BY version',
      [userId, entity, entityId, after, upto],
    );
  }

  version(userId: string, entity: string, entityId: string, version: number, db: PluginDatabase): Promise<VersionRow | undefined> {
    return db.get<VersionRow>('SELECT version, deleted, payload, device_id FROM sync_versions WHERE user_id = ? AND entity = ? AND entity_id = ? AND version = ?', [userId, entity, entityId, version]);
  }

  /** Entity states with after < seq <= upto, in seq order. */
  changes(userId: string, after: number, upto: number, limit: number, db = this.db): Promise<EntityRow[]> {
    return db.all<EntityRow>(`SELECT ${ROW} FROM sync_rows WHERE user_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`, [userId, after, upto, limit]);
  }

  conflictsBySeq(userId: string, after: number, upto: number, limit: number, db = this.db): Promise<ConflictRow[]> {
    return db.all<ConflictRow>('SELECT * FROM sync_conflicts WHERE user_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?', [userId, after, upto, limit]);
  }

  insertConflict(c: ConflictRow, db: PluginDatabase) {
    return db.run(
      `INSERT INTO sync_conflicts (id, user_id, seq, entity, entity_id, fields, base, winner, loser, winner_device, loser_device, summary, status, resolution, created_at, resolved_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [c.id, c.user_id, c.seq, c.entity, c.entity_id, c.fields, c.base, c.winner, c.loser, c.winner_device, c.loser_device, c.summary, c.status, c.resolution, c.created_at, c.resolved_at],
    );
  }

  conflict(userId: string, id: string, db = this.db): Promise<ConflictRow | undefined> {
    return db.get<ConflictRow>('SELECT * FROM sync_conflicts WHERE user_id = ? AND id = ?', [userId, id]);
  }

  listConflicts(userId: string, status: 'open' | 'resolved' | 'all', after: string, limit: number): Promise<ConflictRow[]> {
    const byStatus = status === 'all' ? '' : 'AND status = ? ';
    return this.db.all<ConflictRow>(`SELECT * FROM sync_conflicts WHERE user_id = ? ${byStatus}AND id > ? ORDER BY id LIMIT ?`, [userId, ...(status === 'all' ? [] : [status]), after, limit]);
  }

  resolveConflict(userId: string, id: string, seq: number, resolution: string, at: string, db: PluginDatabase) {
    return db.run("UPDATE sync_conflicts SET status = 'resolved', resolution = ?, resolved_at = ?, seq = ? WHERE user_id = ? AND id = ? AND status = 'open'", [resolution, at, seq, userId, id]);
  }

  /** Live entities in (entity, entity_id) order, after a position: the export's order. */
  live(userId: string, after: readonly [string, string] | null, limit: number, db = this.db): Promise<EntityRow[]> {
    return after
      ? db.all<EntityRow>(`SELECT ${ROW} FROM sync_rows WHERE user_id = ? AND deleted = 0 AND (entity > ? OR (entity = ? AND entity_id > ?)) ORDER BY entity, entity_id LIMIT ?`, [userId, after[0], after[0], after[1], limit])
      : db.all<EntityRow>(`SELECT ${ROW} FROM sync_rows WHERE user_id = ? AND deleted = 0 ORDER BY entity, entity_id LIMIT ?`, [userId, limit]);
  }

  /** Everything kept for a user (account deletion, replace import of the rows). */
  async removeUser(userId: string, db: PluginDatabase): Promise<void> {
    for (const table of ['sync_rows', 'sync_versions', 'sync_mutations', 'sync_conflicts', 'sync_devices', 'sync_users']) await db.run(`DELETE FROM ${table} WHERE user_id = ?`, [userId]);
  }

  async clearRows(userId: string, db: PluginDatabase): Promise<void> {
    await db.run('DELETE FROM sync_rows WHERE user_id = ?', [userId]);
    await db.run('DELETE FROM sync_versions WHERE user_id = ?', [userId]);
  }

  users(db = this.db): Promise<UserRow[]> {
    return db.all<UserRow>('SELECT user_id, head, floor, epoch FROM sync_users ORDER BY user_id');
  }
}
