/**
 * One simulated device: the real sync client over a MemoryStore (its disk), an app table kept in
 * step by onChanges, and the record of what it wrote and saw that the invariants are checked
 * against. A crash throws the client away mid-whatever and starts a new one on the same store;
 * the dead one's writes and requests go nowhere, as after a process kill.
 */
import { SyncClient } from '../sync-client/client.js';
import type { ChangeInfo, Rejection } from '../sync-client/engine.js';
import { SyncError } from '../sync-client/errors.js';
import type { Change, Conflict, JsonObject, Op } from '../sync-client/protocol.js';
import { MemoryStore, type SyncStore, type WriteBatch } from '../sync-client/store.js';
import { type AuthTokens, authTokens } from '../sync-client/tokens.js';
import type { Rng } from '../prng.js';
import { type FaultRates, Network, turns } from './faults.js';
import type { SimServer } from './server.js';

export const SIM_BASE = 'http://sim.invalid';

/** A store a crash cuts off: writes from a client of an earlier life are refused. */
class Disk {
  readonly inner = new MemoryStore();
  life = 0;
  view(life: number): SyncStore {
    const dead = () => new Error('the app process died');
    return {
      get: (k) => (this.life === life ? this.inner.get(k) : Promise.reject(dead())),
      scan: (p) => (this.life === life ? this.inner.scan(p) : Promise.reject(dead())),
      write: (b: WriteBatch) => (this.life === life ? this.inner.write(b) : Promise.reject(dead())),
    };
  }
}

/** One write the device made: the values it set, and the values it knowingly replaced. */
export interface Written {
  readonly device: string;
  readonly key: string;
  readonly mutationId: string;
  /** field → the unique value written (absent for a delete). */
  readonly set: Readonly<Record<string, string>>;
  /** Values the device had locally and replaced or removed: not lost, superseded with knowledge. */
  readonly replaced: readonly string[];
}

export interface Row {
  payload: JsonObject;
  version: number;
}

export class SimDevice {
  private readonly disk = new Disk();
  client!: SyncClient;
  tokens!: AuthTokens;
  readonly net: Network;
  /** The app's own table, as its UI shows it. */
  readonly rows = new Map<string, Row>();
  readonly written: Written[] = [];
  readonly rejected: Rejection[] = [];
  readonly conflicts: Conflict[] = [];
  /** The highest version of each entity this device has been handed. */
  readonly seen = new Map<string, number>();
  readonly violations: string[] = [];
  online = true;
  crashes = 0;
  private counter = 0;

  constructor(
    readonly id: string,
    readonly userTag: string,
    private readonly email: string,
    private readonly password: string,
    private readonly server: SimServer,
    private readonly rng: Rng,
    faults: FaultRates,
    /** Skew of this device's clock (client_ts, token timing): devices disagree about the time. */
    private readonly skewMs: number,
  ) {
    this.net = new Network(server, rng, faults, () => true);
  }

  private now = () => Date.now() + this.skewMs;

  /** Starts a client on the device's store (first start, or after a crash). */
  private boot(): void {
    const life = ++this.disk.life;
    const store = this.disk.view(life);
    const alive = () => this.disk.life === life;
    const fetch = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal?: AbortSignal }) =>
      alive() ? this.net.fetch(url, init) : Promise.reject(new TypeError('fetch failed (the app process died)'));
    this.tokens = authTokens({ baseUrl: SIM_BASE, store, deviceId: this.id, deviceName: this.id, fetch, now: this.now });
    this.client = new SyncClient({
      baseUrl: SIM_BASE,
      deviceId: this.id,
      deviceName: this.id,
      schemaVersion: 1,
      store,
      tokens: this.tokens,
      fetch,
      now: this.now,
      random: () => this.rng.float(),
      // Virtual time: a back-off is a few event-loop turns, and an offline device waits to be online.
      sleep: async (_ms, signal) => {
        while (!this.online && !signal?.aborted) await turns(5);
        await this.server.whenUp();
        await turns(2);
        if (signal?.aborted) throw new SyncError('IQP_CLIENT_ABORTED', 'aborted', 'aborted');
      },
      pushBatch: this.rng.int(1, 40),
      pullLimit: this.rng.int(1, 60),
      onChanges: (changes, info) => this.apply(changes, info),
      onConflicts: (cs) => void this.conflicts.push(...cs),
      onRejected: (rs) => void this.rejected.push(...rs),
    });
  }

  async signIn(): Promise<void> {
    if (!this.client) this.boot();
    // Signing in is not what is under test here: straight to the registry, no faults of its own.
    const direct = authTokens({ baseUrl: SIM_BASE, store: this.disk.view(this.disk.life), deviceId: this.id, fetch: (url, init) => this.direct(url, init) });
    await direct.signIn(this.email, this.password);
    this.boot();
  }

  /**
   * A request straight to the registry. Another device's fault may SIGKILL the registry while it is
   * in flight; then it waits for the restart and sends again, as the user would tap "sign in" again.
   */
  private async direct(url: string, init: RequestInit): Promise<Response> {
    for (;;) {
      await this.server.whenUp();
      const kills = this.server.kills;
      try {
        // A request the kill left without an answer ends with the server's life, as its connection would.
        return await fetch(`${this.server.url}${new URL(url).pathname}`, { ...init, signal: this.server.lifeSignal });
      } catch (err) {
        if (this.server.kills === kills && this.server.up) throw err;
      }
    }
  }

  /** The app dies (whatever it was doing) and starts again on the same storage. */
  crash(): void {
    this.crashes++;
    this.boot();
  }

  private apply(changes: Change[], _info: ChangeInfo): void {
    for (const c of changes) {
      const key = `${c.entity}/${c.entity_id}`;
      if (!c.entity_id.startsWith(`${this.userTag}-`)) this.violations.push(`isolation: ${this.id} (${this.userTag}) was handed ${key}`);
      const before = this.seen.get(key) ?? 0;
      if (c.version < before) this.violations.push(`monotonic reads: ${this.id} was handed ${key} version ${c.version} after version ${before}`);
      if (c.version > before) this.seen.set(key, c.version);
      if (c.op === 'delete') this.rows.delete(key);
      else this.rows.set(key, { payload: c.payload as JsonObject, version: c.version });
    }
  }

  /** A local edit, committed by the client before it returns: a unique value per field it sets. */
  async edit(entity: string, entityId: string, op: Op, fields: readonly string[]): Promise<void> {
    const key = `${entity}/${entityId}`;
    const local = this.rows.get(key)?.payload ?? {};
    // A delete writes no value: only what it removes is recorded (as replaced).
    const set: Record<string, string> = {};
    if (op !== 'delete') for (const f of fields) set[f] = `${this.id}#${++this.counter}`;
    let payload: JsonObject | undefined;
    let replaced: string[];
    if (op === 'delete') replaced = Object.values(local).filter((v): v is string => typeof v === 'string');
    else if (op === 'patch') {
      payload = set;
      replaced = fields.map((f) => local[f]).filter((v): v is string => typeof v === 'string');
    } else {
      // An upsert writes the whole object: unchanged fields as the device has them, one dropped now and then.
      const keep = Object.entries(local).filter(([f]) => !(f in set) && this.rng.float() > 0.2);
      payload = { ...Object.fromEntries(keep), ...set };
      replaced = Object.entries(local)
        .filter(([f]) => !keep.some(([k]) => k === f))
        .map(([, v]) => v)
        .filter((v): v is string => typeof v === 'string');
    }
    const mutationId = await this.client.mutate({ entity, entity_id: entityId, op, ...(payload ? { payload } : {}) });
    this.written.push({ device: this.id, key, mutationId, set, replaced });
    if (op === 'delete') this.rows.delete(key);
    else this.rows.set(key, { payload: op === 'patch' ? { ...local, ...set } : payload!, version: this.rows.get(key)?.version ?? 0 });
  }

  /** One sync cycle; a session the registry ended (refresh reuse after a crash, say) is signed in again, as the user would. */
  async sync(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.syncOnce();
        return;
      } catch (err) {
        if (err instanceof SyncError && err.kind === 'signed_out' && attempt < 3) {
          await this.signIn();
          continue;
        }
        throw err;
      }
    }
  }
}
