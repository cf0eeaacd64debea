/**
 * Pulling: pages until has_more is false. Each page is handed to the app first (onChanges must
 * have applied it durably when it returns), then its cursor, versions and snapshot marks land in one
 * store write, so a crash at any point re-delivers a page rather than skipping one.
 *
 * Changes to entities that still have queued mutations are held back, not handed over: the app's
 * state for them is ahead of the server's, and the push that follows brings the merged state back
 * in a later pull. A held change is released once the entity's queue is empty and nothing newer
 * has been seen (its mutations were rejected, say), so the app is never left without it.
 */
import type { Engine } from './engine.js';
import { CLIENT_CODES, SyncError } from './errors.js';
import type { Change, PullRequest, PullResponse } from './protocol.js';
import { pushAll } from './push.js';
import { K, type KnownVersion, entityKey, knownValue, queuedEntities, readHeld, readKnown, splitEntityKey } from './state.js';
import { anySignal } from './timing.js';

export interface PullOptions {
  /** Long-poll seconds for the first request (the loop sends it once it has reached head). */
  wait?: number;
  /** Aborts only the long poll (a local mutation wants to be pushed now). */
  waitSignal?: AbortSignal;
}

/** Resets answered in a row before the client gives up for this cycle (and backs off). */
const MAX_RESETS = 3;

export interface PullOutcome {
  /** False when the long poll was cut short by waitSignal. */
  reached: boolean;
  /** Changes handed to onChanges. */
  changes: number;
}

/** Pulls until at head. */
export async function pullAll(engine: Engine, signal: AbortSignal, options: PullOptions = {}): Promise<PullOutcome> {
  let changes = await releaseHeld(engine);
  let wait = options.wait ?? 0;
  let resets = 0;
  for (;;) {
    const cursor = (await engine.store.get(K.cursor)) ?? null;
    const request: PullRequest = { device_id: engine.deviceId, cursor, limit: engine.pullLimit };
    let res: PullResponse;
    if (wait > 0) {
      request.wait = wait;
      const both = anySignal([signal, options.waitSignal]);
      try {
        res = await engine.transport.post<PullResponse>('/v1/sync/pull', request, both.signal, wait * 1000);
      } catch (err) {
        if (!signal.aborted && options.waitSignal?.aborted) return { reached: false, changes };
        throw err;
      } finally {
        both.dispose();
      }
    } else {
      res = await engine.transport.post<PullResponse>('/v1/sync/pull', request, signal);
    }
    wait = 0;
    checkPage(res);
    if (res.reset) {
      if (++resets > MAX_RESETS) throw new SyncError(CLIENT_CODES.BAD_RESPONSE, `the server answered reset ${resets} times in a row`);
      await beginSnapshot(engine, res);
      // The protocol's order: everything queued goes up before the snapshot comes down.
      await pushAll(engine, signal);
      continue;
    }
    changes += await applyPage(engine, res, cursor === null);
    if (!res.has_more) return { reached: true, changes };
  }
}

function checkPage(res: PullResponse): void {
  const ok = res && Array.isArray(res.changes) && Array.isArray(res.conflicts ?? []) && typeof res.cursor === 'string' && typeof res.has_more === 'boolean';
  if (!ok) throw new SyncError(CLIENT_CODES.BAD_RESPONSE, 'pull answer is not a page');
}

/** A reset starts a fresh snapshot: earlier marks and held changes belong to the old history. */
async function beginSnapshot(engine: Engine, res: PullResponse): Promise<void> {
  const stale = [...(await engine.store.scan(K.seen)), ...(await engine.store.scan(K.held))].map(([k]) => k);
  await engine.store.write({ del: stale, set: { [K.snapshot]: JSON.stringify({ reason: res.reset?.reason, head: res.head }), [K.cursor]: res.cursor } });
}

/** Returns how many changes went to the app. */
async function applyPage(engine: Engine, res: PullResponse, fromStart: boolean): Promise<number> {
  const store = engine.store;
  const snapshot = fromStart || (await store.get(K.snapshot)) !== undefined;
  const finishing = snapshot && !res.has_more;
  const queued = await queuedEntities(store);
  const deliver: Change[] = [];
  const set: Record<string, string> = { [K.cursor]: res.cursor };
  const del: string[] = [];
  const mentioned = new Set<string>();
  for (const c of res.changes) {
    const ek = entityKey(c.entity, c.entity_id);
    mentioned.add(ek);
    if (queued.has(ek)) {
      set[K.held + ek] = JSON.stringify(c);
    } else {
      deliver.push(c);
      set[K.version + ek] = knownValue(c.version, c.op === 'delete');
      del.push(K.held + ek);
    }
    if (snapshot && !finishing) set[K.seen + ek] = '1';
  }
  if (snapshot && !finishing && fromStart) set[K.snapshot] = JSON.stringify({ reason: 'initial', head: res.head });
  if (finishing) {
    const seen = await store.scan(K.seen);
    for (const [k] of seen) mentioned.add(k.slice(K.seen.length));
    // Whatever this device still holds that the snapshot did not mention is gone on the server,
    // unless this device has changes of its own for it still to push.
    for (const [k, raw] of await store.scan(K.version)) {
      const ek = k.slice(K.version.length);
      const known = JSON.parse(raw) as KnownVersion;
      if (known.d || mentioned.has(ek) || queued.has(ek)) continue;
      const [entity, entity_id] = splitEntityKey(ek);
      deliver.push({ entity, entity_id, op: 'delete', payload: null, version: known.v, seq: res.head });
      set[k] = knownValue(known.v, true);
    }
    del.push(...seen.map(([k]) => k), K.snapshot);
  }
  if (deliver.length > 0) await engine.onChanges(deliver, { snapshot });
  if ((res.conflicts ?? []).length > 0) await engine.onConflicts?.(res.conflicts);
  await store.write({ set, del });
  return deliver.length + (res.conflicts ?? []).length;
}

/** Hands over held changes whose entity has nothing queued any more, unless a newer version was seen. */
async function releaseHeld(engine: Engine): Promise<number> {
  const store = engine.store;
  const held = await store.scan(K.held);
  if (held.length === 0) return 0;
  const queued = await queuedEntities(store);
  const deliver: Change[] = [];
  const set: Record<string, string> = {};
  const del: string[] = [];
  for (const [k, raw] of held) {
    const ek = k.slice(K.held.length);
    if (queued.has(ek)) continue;
    const change = readHeld(raw);
    const known = await readKnown(store, ek);
    del.push(k);
    // A push of ours after it made a newer version; that one arrives in the pull.
    if (known !== undefined && known.v > change.version) continue;
    deliver.push(change);
    set[K.version + ek] = knownValue(change.version, change.op === 'delete');
  }
  if (deliver.length > 0) await engine.onChanges(deliver, { snapshot: false });
  if (del.length > 0) await store.write({ set, del });
  return deliver.length;
}
