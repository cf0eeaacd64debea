/**
 * One push/pull loop per store. Two clients on one store (two tabs on one IndexedDB database, two
 * parts of an app that each made a client) may both mutate(), but if both pushed and pulled, their
 * snapshots, cursors and held changes would overwrite each other's. So one of them at a time owns
 * the store: clients on one store object in this JS realm take turns through a lock kept here;
 * clients in other tabs or workers, whose stores name the same data (SyncStore.lockName), through
 * the Web Locks API where the platform has it. The owner is woken by the others' mutations:
 * directly in this realm, through a BroadcastChannel named after the store across realms.
 *
 * Only web APIs, each used if present (a platform without Web Locks falls back to the lock in
 * this realm alone).
 */
import { aborted } from './errors.js';
import type { SyncStore } from './store.js';
import { bounded } from './timing.js';

/** The parts of navigator.locks used here. */
interface LockManagerLike {
  request(name: string, options: { ifAvailable?: boolean; signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** The parts of BroadcastChannel used here. */
interface ChannelLike {
  onmessage: ((ev: unknown) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
  unref?(): void;
}

type Release = () => void;

export interface OwnerHooks {
  /** The store is another client's for now: this one waits. */
  onWait(): void;
  /** Another client queued a mutation while this one owns the store. */
  onWake(): void;
}

function webLocks(): LockManagerLike | undefined {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  return typeof locks?.request === 'function' ? locks : undefined;
}

function channel(name: string): ChannelLike | undefined {
  const Channel = (globalThis as { BroadcastChannel?: new (name: string) => ChannelLike }).BroadcastChannel;
  if (typeof Channel !== 'function') return undefined;
  const c = new Channel(name);
  // Node keeps a process alive for an open channel; a tab does not care.
  c.unref?.();
  return c;
}

/** The clients of one store object in this realm: who owns it, and who waits, in turn. */
interface Turns {
  owned: boolean;
  queue: Array<() => void>;
  wake: (() => void) | undefined;
}

const turns = new WeakMap<SyncStore, Turns>();

function turnsOf(store: SyncStore): Turns {
  let t = turns.get(store);
  if (!t) turns.set(store, (t = { owned: false, queue: [], wake: undefined }));
  return t;
}

/** This realm's turn at the store: at once if free, else after the clients before this one. */
async function localTurn(t: Turns, signal: AbortSignal, hooks: OwnerHooks): Promise<Release> {
  if (t.owned) {
    hooks.onWait();
    let granted!: () => void;
    const turn = new Promise<void>((resolve) => (granted = resolve));
    t.queue.push(granted);
    try {
      await bounded(turn, signal, 0, aborted);
    } catch (err) {
      const i = t.queue.indexOf(granted);
      // Granted as the abort landed: pass the turn on.
      if (i >= 0) t.queue.splice(i, 1);
      else next(t);
      throw err;
    }
  }
  t.owned = true;
  return () => next(t);
}

function next(t: Turns): void {
  t.wake = undefined;
  const granted = t.queue.shift();
  if (granted) granted();
  else t.owned = false;
}

/** The Web Lock named `name`, held until the release is called; undefined if the platform refuses locks here. */
async function webLock(locks: LockManagerLike, name: string, signal: AbortSignal, hooks: OwnerHooks): Promise<Release | undefined> {
  const take = (options: { ifAvailable?: boolean; signal?: AbortSignal }) =>
    new Promise<Release | null>((resolve, reject) => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      locks
        .request(name, options, (lock) => {
          resolve(lock === null ? null : release);
          return lock === null ? Promise.resolve() : held;
        })
        .catch(reject);
    });
  try {
    const now = await take({ ifAvailable: true });
    if (now) return now;
    hooks.onWait();
    return (await take({ signal })) ?? undefined;
  } catch (err) {
    if (signal.aborted) throw aborted();
    // A context that may not use locks (an opaque origin, say): the lock in this realm is all there is.
    void err;
    return undefined;
  }
}

/** Waits for the store to be this client's; the release gives it to the next client. */
async function acquire(store: SyncStore, signal: AbortSignal, hooks: OwnerHooks): Promise<Release> {
  const t = turnsOf(store);
  const releaseLocal = await localTurn(t, signal, hooks);
  let releaseWeb: Release | undefined;
  let listening: ChannelLike | undefined;
  try {
    const locks = store.lockName !== undefined ? webLocks() : undefined;
    if (locks && store.lockName !== undefined) releaseWeb = await webLock(locks, store.lockName, signal, hooks);
  } catch (err) {
    releaseLocal();
    throw err;
  }
  t.wake = hooks.onWake;
  if (store.lockName !== undefined) {
    listening = channel(store.lockName);
    if (listening) listening.onmessage = () => hooks.onWake();
  }
  return () => {
    listening?.close();
    releaseWeb?.();
    releaseLocal();
  };
}

/** Tells the store's owner, here or in another tab, that a mutation was queued. */
export function wakeOwner(store: SyncStore): void {
  turns.get(store)?.wake?.();
  if (store.lockName === undefined) return;
  const c = channel(store.lockName);
  c?.postMessage('queued');
  c?.close();
}

/**
 * One client's hold on its store. Its loop holds it while it runs (not while paused), and
 * syncOnce() for its cycle; both share one wait and one lock, given up when neither needs it.
 */
export class Ownership {
  readonly #store: SyncStore;
  readonly #hooks: OwnerHooks;
  #release: Release | undefined;
  #acquiring: { done: Promise<void>; controller: AbortController } | undefined;
  #users = 0;

  constructor(store: SyncStore, hooks: OwnerHooks) {
    this.#store = store;
    this.#hooks = hooks;
  }

  /** Runs fn as the store's owner, waiting for that first; the wait ends (aborted) when signal fires. */
  async hold<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    this.#users++;
    try {
      if (this.#release === undefined) await bounded(this.#acquire(), signal, 0, aborted);
      return await fn();
    } finally {
      if (--this.#users === 0) this.#drop();
    }
  }

  #acquire(): Promise<void> {
    if (this.#acquiring) return this.#acquiring.done;
    const controller = new AbortController();
    const mine = () => this.#acquiring?.controller === controller;
    const done = acquire(this.#store, controller.signal, this.#hooks).then(
      (release) => {
        if (!mine()) return release();
        this.#acquiring = undefined;
        this.#release = release;
      },
      (err: unknown) => {
        if (mine()) this.#acquiring = undefined;
        throw err;
      },
    );
    this.#acquiring = { done, controller };
    return done;
  }

  #drop(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
    const acquiring = this.#acquiring;
    this.#acquiring = undefined;
    acquiring?.controller.abort();
  }
}
