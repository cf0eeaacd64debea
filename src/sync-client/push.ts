/**
 * Pushing the queue: oldest first, in batches, each batch's results recorded in one store write
 * (the mutations leave the queue together with the versions they produced). A crash before that
 * write replays the same mutations with the same ids, which the server answers with the original
 * results.
 */
import type { Engine, Rejection } from './engine.js';
import { CLIENT_CODES, SyncError } from './errors.js';
import { CODES, type Mutation, type MutationResult, type PushRequest, type PushResult } from './protocol.js';
import { K, type QueuedMutation, entityKey, knownValue, readQueue } from './state.js';
import { TooLarge } from './transport.js';

/** The mutation as sent: exactly what was queued, so a replay is byte for byte the same mutation. */
function toWire(m: QueuedMutation): Mutation {
  const wire: Mutation = { mutation_id: m.mutation_id, entity: m.entity, entity_id: m.entity_id, op: m.op };
  if (m.payload !== undefined) wire.payload = m.payload;
  if (m.base_version !== undefined && m.base_version > 0) wire.base_version = m.base_version;
  if (m.client_ts !== undefined) wire.client_ts = m.client_ts;
  return wire;
}

/** Pushes until the queue is empty (mutations queued meanwhile included). */
export async function pushAll(engine: Engine, signal: AbortSignal): Promise<void> {
  let size = engine.pushBatch;
  for (;;) {
    const queue = await readQueue(engine.store);
    if (queue.length === 0) return;
    const batch = queue.slice(0, size);
    const request: PushRequest = { device_id: engine.deviceId, schema_version: engine.schemaVersion, mutations: batch.map(([, m]) => toWire(m)) };
    if (engine.deviceName !== undefined) request.device_name = engine.deviceName;
    let results: MutationResult[];
    try {
      const res = await engine.transport.post<PushResult>('/v1/sync/push', request, signal);
      results = checkResults(res, request.mutations);
    } catch (err) {
      const refused = badRequest(err, batch.length);
      if (refused !== undefined) {
        // Nothing of the push was applied: the one mutation the server named is rejected here, as
        // the server rejects one its config refuses, and the rest go again without it.
        const [k, m] = batch[refused.index]!;
        const error = { code: refused.error.code, message: refused.error.message, ...(refused.field ? { field: refused.field } : {}) };
        await record(engine, [[k, m]], [{ mutation_id: m.mutation_id, status: 'rejected', entity: m.entity, entity_id: m.entity_id, error }]);
        continue;
      }
      if (!(err instanceof TooLarge)) throw err;
      if (batch.length > 1) {
        size = Math.max(1, Math.floor(batch.length / 2));
        continue;
      }
      // One mutation alone is over the server's limit: it can never be sent, so it is rejected
      // here, the way the server rejects a payload over its per-mutation limit.
      const m = batch[0]![1];
      results = [{ mutation_id: m.mutation_id, status: 'rejected', entity: m.entity, entity_id: m.entity_id, error: { code: err.code, message: 'this mutation alone is larger than the server accepts in one push' } }];
    }
    await record(engine, batch, results);
  }
}

/**
 * A push answered 400 names what it refused in details.field: `body.mutations.<n>.<field>` is the
 * mutation at index n of the batch (the index and the field within it are returned). Any other 400
 * of the server's (the request as a whole) is the same on every try: the transport made it a
 * blocked SyncError, rethrown, so the loop stops with the queue kept instead of sending it for ever.
 */
function badRequest(err: unknown, size: number): { index: number; field?: string; error: SyncError } | undefined {
  if (!(err instanceof SyncError) || err.status !== 400 || (err.code !== CODES.INVALID_REQUEST && err.code !== CODES.USAGE)) return undefined;
  const field = err.details?.['field'];
  const at = typeof field === 'string' ? /^body\.mutations\.(\d+)(?:\.(.+))?$/.exec(field) : null;
  const index = at ? Number(at[1]) : -1;
  if (err.code === CODES.INVALID_REQUEST && index >= 0 && index < size) return { index, ...(at?.[2] ? { field: at[2] } : {}), error: err };
  throw err;
}

function checkResults(res: PushResult, sent: Mutation[]): MutationResult[] {
  const results = res?.results;
  const ok = Array.isArray(results) && results.length === sent.length && results.every((r, i) => r?.mutation_id === sent[i]!.mutation_id && typeof r.status === 'string');
  if (!ok) throw new SyncError(CLIENT_CODES.BAD_RESPONSE, 'push answer does not have one result per mutation in order');
  return results;
}

/**
 * A mutation refused with IQP_E_SYNC_BASE_VERSION was based on a version newer than the registry's:
 * the registry was restored from an older backup. What the user did is still to be saved, so it
 * goes again as the same change based on the registry's version (`r.version`; 0 without one), to
 * be merged like any other push, under a new id (the old id with another base would be refused as
 * reused). The id is the first one plus `.b<base>`: the same after a crash replays this answer,
 * and new each time, since the base only goes down; a mutation already at base 0 cannot be too new,
 * so a server saying it is gets an ordinary rejection rather than a loop.
 */
function rebased(m: QueuedMutation, r: MutationResult): QueuedMutation | undefined {
  const had = m.base_version ?? 0;
  if (r.error?.code !== CODES.BASE_VERSION || had <= 0) return undefined;
  const base = Number.isInteger(r.version) && r.version! >= 0 && r.version! < had ? r.version! : 0;
  const { base_version: _, ...rest } = m;
  return { ...rest, mutation_id: `${m.mutation_id.replace(/\.b\d+$/, '')}.b${base}`, ...(base > 0 ? { base_version: base } : {}) };
}

async function record(engine: Engine, batch: Array<[string, QueuedMutation]>, results: MutationResult[]): Promise<void> {
  const set: Record<string, string> = {};
  const rejected: Rejection[] = [];
  const snapshotActive = (await engine.store.get(K.snapshot)) !== undefined;
  for (const [i, [k, m]] of batch.entries()) {
    const r = results[i]!;
    const ek = entityKey(m.entity, m.entity_id);
    // A rejected mutation changed nothing, and its version is one this device's app has not been
    // shown: recording it would make the next base_version claim a state the app never had.
    if (r.status === 'rejected') {
      const again = rebased(m, r);
      // In the write below its key is deleted and set: it keeps its place at the head of the queue.
      if (again) set[k] = JSON.stringify(again);
      else rejected.push({ mutation: m, result: r });
      continue;
    }
    if (typeof r.version === 'number') set[K.version + ek] = knownValue(r.version, m.op === 'delete');
    // The entity exists on the server now, so an unfinished snapshot must not delete it locally.
    if (snapshotActive && m.op !== 'delete') set[K.seen + ek] = '1';
  }
  // Reported before the write: a crash in between replays the push and reports again, never not at all.
  if (rejected.length > 0) await engine.onRejected?.(rejected);
  await engine.store.write({ set, del: batch.map(([k]) => k) });
}
