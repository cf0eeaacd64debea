/** One client over the fakes, with everything a unit test wants to look at afterwards. */
import { SyncClient, type SyncClientOptions, type SyncStatus } from '../../src/sync-client/client.js';
import type { ChangeInfo, Rejection } from '../../src/sync-client/engine.js';
import type { Change, Conflict } from '../../src/sync-client/protocol.js';
import { seededRng } from '../seed.js';
import { CountingTokens, RecordingStore, ScriptedFetch, VirtualClock } from './fakes.js';

const { rng } = seededRng('sync-client unit tests');

export interface Rig {
  net: ScriptedFetch;
  clock: VirtualClock;
  store: RecordingStore;
  tokens: CountingTokens;
  delivered: Array<{ changes: Change[]; info: ChangeInfo }>;
  rejected: Rejection[];
  conflicts: Conflict[];
  statuses: Array<[SyncStatus, string | undefined]>;
  client: SyncClient;
  /** Another client over the same store and network, as after a restart. */
  restart(over?: Partial<SyncClientOptions>): SyncClient;
}

export function rig(options: Partial<SyncClientOptions> = {}): Rig {
  const net = new ScriptedFetch();
  const clock = new VirtualClock();
  const store = new RecordingStore();
  const tokens = new CountingTokens();
  const r = { net, clock, store, tokens, delivered: [], rejected: [], conflicts: [], statuses: [] } as unknown as Rig;
  const make = (over: Partial<SyncClientOptions> = {}) =>
    new SyncClient({
      baseUrl: 'http://sync.test/',
      deviceId: 'dev-test-0001',
      schemaVersion: 1,
      store,
      tokens,
      fetch: net.fetch,
      now: clock.now,
      sleep: clock.sleep,
      random: () => rng.float(),
      onChanges: (changes, info) => void r.delivered.push({ changes, info }),
      onRejected: (rs) => void r.rejected.push(...rs),
      onConflicts: (cs) => void r.conflicts.push(...cs),
      onStatus: (s, d) => void r.statuses.push([s, d.code]),
      ...options,
      ...over,
    });
  r.client = make();
  r.restart = make;
  return r;
}

/** Entity ids delivered so far, flattened, as `op:id@version`. */
export function deliveredIds(r: Rig): string[] {
  return r.delivered.flatMap((d) => d.changes.map((c) => `${c.op}:${c.entity_id}@${c.version}`));
}

/** Lets the client run until cond holds (bounded by turns of the event loop, not by time). */
export async function until(cond: () => boolean | Promise<boolean>, turns = 20_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (await cond()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error('condition never held');
}
