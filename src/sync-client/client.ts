/**
 * SyncClient: a local queue of mutations, committed before anything touches the network, pushed
 * and pulled by one cycle at a time. syncOnce() runs one cycle; start() runs them in a loop that
 * long-polls at head, is woken by local mutations, backs off on failures and stops for good
 * reasons (signed out, blocked) with a status the app can show. Several clients may share a store
 * (tabs on one IndexedDB database): all of them mutate, one at a time owns the loop (owner.ts).
 */
import type { ChangeInfo, Engine, Rejection } from './engine.js';
import { CLIENT_CODES, SyncError, aborted, isAborted } from './errors.js';
import { type Change, type Conflict, DEVICE_ID, ENTITY, ENTITY_ID, type JsonObject, type Op } from './protocol.js';
import { Ownership, wakeOwner } from './owner.js';
import { type PullOutcome, pullAll } from './pull.js';
import { pushAll } from './push.js';
import { K, type QueuedMutation, entityKey, queueKey, readKnown } from './state.js';
import type { SyncStore } from './store.js';
import { type Sleep, anySignal, backoffMs, randomHex, realSleep } from './timing.js';
import type { TokenSource } from './tokens.js';
import { type FetchLike, Transport, type WaitReason } from './transport.js';

export type SyncStatus = 'idle' | 'syncing' | 'offline' | 'retrying' | 'error' | 'paused' | 'standby' | 'signed_out' | 'blocked' | 'stopped';

export interface StatusDetail {
  /** The server's (or the client's) error code behind offline, retrying, error, signed_out and blocked. */
  code?: string;
  /** How long the client waits before its next try. */
  delayMs?: number;
  error?: SyncError;
}

export interface SyncClientOptions {
  baseUrl: string;
  deviceId: string;
  deviceName?: string;
  schemaVersion: number;
  store: SyncStore;
  tokens: TokenSource;
  onChanges(changes: Change[], info: ChangeInfo): Promise<void> | void;
  onConflicts?(conflicts: Conflict[]): Promise<void> | void;
  onRejected?(rejections: Rejection[]): Promise<void> | void;
  onStatus?(status: SyncStatus, detail: StatusDetail): void;
  fetch?: FetchLike;
  random?: () => number;
  now?: () => number;
  sleep?: Sleep;
  pushBatch?: number;
  pullLimit?: number;
  longPollS?: number;
  intervalMs?: number;
  requestTimeoutMs?: number;
}

export interface MutationInput {
  entity: string;
  entity_id: string;
  op: Op;
  payload?: JsonObject | null;
}

/** A long poll that comes back empty sooner than this means the server does not hold pulls. */
const MIN_POLL_MS = 1000;

export class SyncClient {
  readonly #o: SyncClientOptions;
  readonly #engine: Engine;
  readonly #sleep: Sleep;
  readonly #random: () => number;
  readonly #now: () => number;
  /** Aborted by pause() and stop(); replaced by resume() and start(). */
  #epoch = new AbortController();
  /** Aborted to cut a long poll or an idle wait short (a local mutation, a syncOnce call). */
  #kick = new AbortController();
  #paused = false;
  #running = false;
  #loop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  /** Which loop is the current one: an older one ends at its next turn. */
  #loopId = 0;
  #wake: (() => void) | undefined;
  /** One cycle at a time: pulls and pushes of this client never overlap. */
  #cycle: Promise<unknown> = Promise.resolve();
  /** mutate() takes the counter one caller at a time. */
  #mutating: Promise<unknown> = Promise.resolve();
  /** The last counter this client took: its next one is above it, whatever another client stored. */
  #counter = 0;
  #status: SyncStatus | undefined;
  /** The store's push/pull loop is one client's at a time (one tab of several on one database). */
  readonly #owner: Ownership;

  constructor(options: SyncClientOptions) {
    if (!DEVICE_ID.test(options.deviceId)) throw new TypeError('deviceId must match ^[A-Za-z0-9._:-]{8,128}$ (loadDeviceId makes one)');
    // What the server checks of every push: a value it refuses would make each push answer 400.
    const name = options.deviceName;
    if (name !== undefined && (typeof name !== 'string' || [...name].length < 1 || [...name].length > 100)) throw new TypeError('deviceName must be 1..100 characters, or left out');
    if (!Number.isInteger(options.schemaVersion) || options.schemaVersion < 1) throw new TypeError('schemaVersion must be an integer of at least 1');
    this.#o = options;
    this.#sleep = options.sleep ?? realSleep;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    const doFetch: FetchLike = options.fetch ?? ((url, init) => fetch(url, init));
    const transport = new Transport({
      baseUrl: options.baseUrl,
      fetch: doFetch,
      tokens: options.tokens,
      sleep: this.#sleep,
      random: this.#random,
      now: this.#now,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      onWait: (w: WaitReason) => this.#setStatus(w.state, { delayMs: w.delayMs, ...(w.code ? { code: w.code } : {}) }),
    });
    this.#engine = {
      store: options.store,
      transport,
      deviceId: options.deviceId,
      ...(options.deviceName !== undefined ? { deviceName: options.deviceName } : {}),
      schemaVersion: options.schemaVersion,
      pushBatch: clampInt(options.pushBatch ?? 100, 1, 500),
      pullLimit: clampInt(options.pullLimit ?? 500, 1, 1000),
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      onChanges: (c, i) => options.onChanges(c, i),
      ...(options.onConflicts ? { onConflicts: (c: Conflict[]) => options.onConflicts!(c) } : {}),
      ...(options.onRejected ? { onRejected: (r: Rejection[]) => options.onRejected!(r) } : {}),
    };
    this.#owner = new Ownership(options.store, {
      onWait: () => this.#setStatus('standby', {}),
      onWake: () => {
        this.#kick.abort();
        transport.nudge();
      },
    });
  }

  /**
   * Queues a mutation: it is in the store when this resolves, before any network call, and it is
   * pushed by the next cycle. Returns its mutation_id (the counter persists, so ids never repeat).
   * base_version is the version this device last saw of the entity, fixed now.
   */
  async mutate(input: MutationInput): Promise<string> {
    const m = validate(input);
    const run = this.#mutating.then(async () => {
      const store = this.#o.store;
      // Another client on this store (another tab) may take the same counter between this read
      // and the write: the random part keeps both the ids and the queue keys apart, and this
      // client's own mutations keep their order since its counter never goes back.
      const counter = Math.max(Number((await store.get(K.counter)) ?? '0'), this.#counter) + 1;
      this.#counter = counter;
      // The random part also keeps ids unique if this store is lost while the device id is kept.
      const random = randomHex(4, this.#o.random);
      const mutation_id = `${counter}-${random}`;
      const known = await readKnown(store, entityKey(m.entity, m.entity_id));
      const queued: QueuedMutation = { mutation_id, ...m, ...(known && known.v > 0 ? { base_version: known.v } : {}), client_ts: new Date(this.#now()).toISOString() };
      await store.write({ set: { [K.counter]: String(counter), [queueKey(counter, random)]: JSON.stringify(queued) } });
      return mutation_id;
    });
    this.#mutating = run.catch(() => undefined);
    const id = await run;
    this.#kick.abort();
    this.#engine.transport.nudge();
    // The store's loop may be another client's (another tab's): it pushes this one's queue.
    wakeOwner(this.#o.store);
    return id;
  }

  /**
   * One cycle: push the whole queue in batches, then pull until has_more is false. Transient
   * failures are retried with backoff inside; it rejects with a SyncError for what needs the app
   * (signed_out, blocked), when paused or stopped (kind aborted), or when `signal` fires.
   */
  async syncOnce(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#paused) throw new SyncError(CLIENT_CODES.PAUSED, 'sync is paused', 'aborted');
    this.#kick.abort();
    this.#engine.transport.nudge();
    const linked = anySignal([this.#epoch.signal, options.signal]);
    try {
      // Another client's loop (another tab's) owns the store: this waits, on standby, until it stops.
      await this.#owner.hold(linked.signal, () => this.#exclusive(() => this.#runCycle(linked.signal, 0)));
    } finally {
      linked.dispose();
    }
  }

  /** Starts the background loop (does nothing if it runs). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    // A stop() still winding down finishes first, so two loops never run at once.
    const id = ++this.#loopId;
    const loop: Promise<void> = (this.#stopping ?? Promise.resolve()).then(() => {
      if (this.#epoch.signal.aborted) this.#epoch = new AbortController();
      return this.#runLoop(id);
    });
    this.#loop = loop;
    void loop.finally(() => {
      if (this.#loop === loop) this.#running = false;
    });
  }

  /** Aborts whatever is in flight (it is replayed later) and holds the loop until resume(). */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#epoch.abort();
    this.#setStatus('paused', {});
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#epoch = new AbortController();
    this.#setStatus('idle', {});
    this.#wake?.();
  }

  /** Stops the loop and aborts what is in flight; resolves when it has wound down. */
  async stop(): Promise<void> {
    this.#running = false;
    // The loop being stopped must not carry on if start() is called before it has ended.
    this.#loopId++;
    this.#epoch.abort();
    this.#wake?.();
    const loop = this.#loop;
    const stopping = (async () => {
      await loop;
      await this.#cycle.catch(() => undefined);
      this.#epoch = new AbortController();
      this.#paused = false;
      this.#setStatus('stopped', {});
    })();
    this.#stopping = stopping;
    await stopping;
    if (this.#stopping === stopping) this.#stopping = undefined;
  }

  async pendingCount(): Promise<number> {
    return (await this.#o.store.scan(K.queue)).length;
  }

  /** The version of the entity this device last saw (a push result or a pull), if any. */
  async knownVersion(entity: string, entityId: string): Promise<number | undefined> {
    return (await readKnown(this.#o.store, entityKey(entity, entityId)))?.v;
  }

  get status(): SyncStatus | undefined {
    return this.#status;
  }

  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#cycle.catch(() => undefined).then(fn);
    this.#cycle = run.catch(() => undefined);
    return run;
  }

  /** One push-then-pull; `kick` cuts a long poll short (the loop renews it before each cycle). */
  async #runCycle(signal: AbortSignal, wait: number, kick?: AbortSignal): Promise<PullOutcome> {
    if (signal.aborted) throw aborted();
    this.#setStatus('syncing', {});
    await pushAll(this.#engine, signal);
    if (wait > 0) {
      // Nothing to do until the server has news: a long poll is idle time, not work.
      this.#setStatus('idle', {});
      // Mutations queued during the push go first; a long poll would only be cut short by them.
      if (kick?.aborted || (await this.#o.store.scan(K.queue)).length > 0) return { reached: false, changes: 0 };
    }
    const outcome = await pullAll(this.#engine, signal, wait > 0 ? { wait, ...(kick ? { waitSignal: kick } : {}) } : {});
    this.#setStatus('idle', {});
    return outcome;
  }

  async #runLoop(id: number): Promise<void> {
    while (this.#running && this.#loopId === id) {
      if (this.#paused) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      const epoch = this.#epoch.signal;
      try {
        // Waits on standby while another client (another tab) runs the store's loop, and gives
        // the store up when paused or stopped, so another can take it.
        await this.#owner.hold(epoch, () => this.#runOwned(id, epoch));
      } catch (err) {
        if (!isAborted(err)) throw err;
      }
    }
  }

  /** The loop, while this client owns the store: until it is stopped, paused or told to stop. */
  async #runOwned(id: number, epoch: AbortSignal): Promise<void> {
    const longPollS = clampInt(this.#o.longPollS ?? 25, 0, 30);
    const intervalMs = Math.max(0, this.#o.intervalMs ?? 60_000);
    let atHead = false;
    let failures = 0;
    while (this.#running && this.#loopId === id && !this.#paused && !epoch.aborted) {
      // Renewed before the cycle, not at the wait: a kick that lands mid-cycle still cuts the wait.
      this.#kick = new AbortController();
      const kick = this.#kick.signal;
      const started = this.#now();
      try {
        const wait: number = atHead ? longPollS : 0;
        const outcome: PullOutcome = await this.#exclusive(() => this.#runCycle(epoch, wait, kick));
        failures = 0;
        atHead = outcome.reached;
        // Without long polls, or with a server that answers them at once with nothing, poll on a timer.
        const quickEmpty = wait > 0 && outcome.reached && outcome.changes === 0 && this.#now() - started < MIN_POLL_MS;
        if (outcome.reached && (wait === 0 ? longPollS === 0 : quickEmpty)) await this.#idle(intervalMs, epoch, kick);
      } catch (err) {
        if (isAborted(err)) continue;
        const e = err instanceof SyncError ? err : new SyncError(CLIENT_CODES.BAD_RESPONSE, String((err as Error)?.message ?? err));
        if (e.kind === 'signed_out' || e.kind === 'blocked') {
          this.#setStatus(e.kind, { code: e.code, error: e });
          this.#running = false;
          break;
        }
        // An app callback that threw, or an answer the client cannot use: the same cycle, later.
        const delayMs = backoffMs(failures++, this.#random);
        this.#setStatus('error', { code: e.code, delayMs, error: e });
        atHead = false;
        await this.#idle(delayMs, epoch, kick);
      }
    }
  }

  /** Waits, but a local mutation or syncOnce (kick), pause() or stop() ends the wait early. */
  async #idle(ms: number, epoch: AbortSignal, kick: AbortSignal): Promise<void> {
    const both = anySignal([epoch, kick]);
    try {
      await this.#sleep(ms, both.signal);
    } catch (err) {
      if (!isAborted(err)) throw err;
    } finally {
      both.dispose();
    }
  }

  #setStatus(status: SyncStatus, detail: StatusDetail): void {
    // A cycle winding down after pause() (its last await had already resolved) reports nothing:
    // the app hears "paused" until resume() or stop().
    if (this.#paused && status !== 'paused') return;
    if (status === this.#status && detail.code === undefined && detail.delayMs === undefined) return;
    this.#status = status;
    this.#o.onStatus?.(status, detail);
  }
}

function clampInt(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(n)));
}

function validate(input: MutationInput): Omit<QueuedMutation, 'mutation_id' | 'client_ts'> {
  const bad = (why: string) => new SyncError(CLIENT_CODES.INVALID_MUTATION, why);
  if (typeof input.entity !== 'string' || !ENTITY.test(input.entity)) throw bad('entity must match ^[a-z][a-z0-9_]{0,63}$');
  if (typeof input.entity_id !== 'string' || !ENTITY_ID.test(input.entity_id)) throw bad('entity_id must be 1..256 characters without control characters');
  if (input.op !== 'upsert' && input.op !== 'patch' && input.op !== 'delete') throw bad("op must be 'upsert', 'patch' or 'delete'");
  if (input.op === 'delete') {
    if (input.payload !== undefined && input.payload !== null) throw bad('a delete has no payload');
    return { entity: input.entity, entity_id: input.entity_id, op: input.op };
  }
  const p = input.payload;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw bad(`${input.op} needs a payload object`);
  // A round trip through JSON is what the server will see; refusing now beats a stuck queue.
  let copy: JsonObject;
  try {
    copy = JSON.parse(JSON.stringify(p)) as JsonObject;
  } catch (err) {
    throw bad(`payload is not JSON: ${(err as Error).message}`);
  }
  // A Date, or anything whose toJSON answers something else than an object, reaches the server as that.
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy)) throw bad(`${input.op} needs a payload object, and this one is ${Array.isArray(copy) ? 'an array' : copy === null ? 'null' : `a ${typeof copy}`} as JSON`);
  return { entity: input.entity, entity_id: input.entity_id, op: input.op, payload: copy };
}
