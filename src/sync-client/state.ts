/**
 * How the client lays its durable state out in a SyncStore. Everything the client must not lose
 * lives here, and every change that must land together is one write() (queue removal with the
 * versions it produced; the cursor with the versions and snapshot marks of its page).
 */
import type { Change, JsonObject, Op } from './protocol.js';
import type { SyncStore } from './store.js';

export const K = {
  /**
   * q/<counter, 16 digits>-<random>: one queued mutation, in the order it was made. The random
   * part keeps two clients on one store (two tabs) from writing the same key when they take the
   * same counter; keys an older version wrote, q/<counter>, sort in their place among these.
   */
  queue: 'q/',
  /** v/<entity>/<id>: the version this device last saw ({v, d?: 1 when it was a delete}). */
  version: 'v/',
  /** h/<entity>/<id>: a pulled change held back because the entity had queued mutations. */
  held: 'h/',
  /** s/<entity>/<id>: mentioned by the snapshot in progress. */
  seen: 's/',
  cursor: 'm/cursor',
  counter: 'm/counter',
  /** Present while a snapshot (after a reset, or from a null cursor) is being paged. */
  snapshot: 'm/snapshot',
  deviceId: 'm/device_id',
  refreshToken: 'auth/refresh_token',
  /** The id of the account whose sync state this store holds: recorded at its first sign-in. */
  account: 'auth/account',
} as const;

/**
 * A mutation as committed locally. base_version is fixed when the mutation is made: the server
 * keys a replay on it (a replay with another base_version is IQP_E_SYNC_MUTATION_REUSED), and it
 * counts versions this device wrote itself as seen, so two offline edits both carry the version
 * seen before them.
 */
export interface QueuedMutation {
  mutation_id: string;
  entity: string;
  entity_id: string;
  op: Op;
  payload?: JsonObject;
  base_version?: number;
  client_ts?: string;
}

export interface KnownVersion {
  v: number;
  /** 1: the last thing seen was a delete. */
  d?: 1;
}

/** entity cannot contain '/', so this is unambiguous. */
export function entityKey(entity: string, entityId: string): string {
  return `${entity}/${entityId}`;
}

export function splitEntityKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

export function queueKey(counter: number, suffix: string): string {
  return `${K.queue}${String(counter).padStart(16, '0')}-${suffix}`;
}

export async function readQueue(store: SyncStore): Promise<Array<[string, QueuedMutation]>> {
  return (await store.scan(K.queue)).map(([k, v]) => [k, JSON.parse(v) as QueuedMutation]);
}

/** The entities with at least one queued mutation. */
export async function queuedEntities(store: SyncStore): Promise<Set<string>> {
  const out = new Set<string>();
  for (const [, m] of await readQueue(store)) out.add(entityKey(m.entity, m.entity_id));
  return out;
}

export async function readKnown(store: SyncStore, ek: string): Promise<KnownVersion | undefined> {
  const raw = await store.get(K.version + ek);
  return raw === undefined ? undefined : (JSON.parse(raw) as KnownVersion);
}

export function knownValue(version: number, deleted: boolean): string {
  return JSON.stringify(deleted ? { v: version, d: 1 } : { v: version });
}

export function readHeld(raw: string): Change {
  return JSON.parse(raw) as Change;
}
