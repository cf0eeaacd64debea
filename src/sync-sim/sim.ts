/**
 * `iqp sync simulate`: simulated users and devices, each the real sync client, against a real
 * registry in a child process, with random offline periods, lost, duplicated and delayed answers,
 * the server SIGKILLed mid-push, access tokens expiring mid-sync, skewed device clocks, compaction
 * while devices are away, and concurrent edits of the same entities. After a quiet period it checks
 * the invariants docs/sync-protocol.md promises (check.ts). Every choice comes from the seed; a
 * failure names the seed and the first invariant broken. Timing between the processes is real, so
 * a seed replays the same operations and faults, not always the same interleaving.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../prng.js';
import { check } from './check.js';
import { SimDevice } from './device.js';
import { type FaultCounts, type FaultRates, NO_FAULTS } from './faults.js';
import { SimServer } from './server.js';

export interface SimOptions {
  readonly users: number;
  readonly devices: number;
  readonly ops: number;
  readonly seed: number;
  /** Off: a clean network and no server kills (the invariants must hold either way). */
  readonly faults?: boolean;
  /** A registry to share across runs (tests run many seeds on one); by default one of its own. */
  readonly server?: SimServer;
}

export interface SimReport {
  readonly seed: number;
  readonly ok: boolean;
  /** The first invariant broken, with what broke it. */
  readonly violation: string | null;
  readonly violations: readonly string[];
  readonly stats: {
    readonly writes: number;
    readonly conflicts: number;
    readonly rejected: number;
    readonly resets: number;
    readonly crashes: number;
    readonly serverKills: number;
    readonly timeJumps: number;
    readonly faults: FaultCounts;
  };
}

const ENTITIES = ['note', 'card', 'progress'] as const;
const FIELDS = ['a', 'b', 'c', 'd'] as const;
const PASSWORD = 'sim-Password-9f3c7a!';
const DAY_MS = 86_400_000;

function faultRates(on: boolean): FaultRates {
  return on ? { drop: 0.05, duplicate: 0.05, expire: 0.03, kill: 0.02 } : NO_FAULTS;
}

export async function simulate(o: SimOptions): Promise<SimReport> {
  const rng = new Rng(o.seed);
  const own = !o.server;
  const dir = own ? mkdtempSync(join(tmpdir(), 'iqp-sync-sim-')) : '';
  const server = o.server ?? new SimServer(dir);
  if (own) await server.start();
  const killsBefore = server.kills;
  const run = `s${o.seed}x${rng.int(0, 1e9).toString(36)}`;
  const devices: SimDevice[] = [];
  let timeJumps = 0;
  try {
    for (let u = 0; u < o.users; u++) {
      const tag = `${run}u${u}`;
      const email = `${tag}@sim.example`;
      await server.createUser(email, PASSWORD);
      for (let d = 0; d < o.devices; d++) {
        const skew = rng.int(-3, 3) * 3_600_000;
        const device = new SimDevice(`${tag}d${d}`, tag, email, PASSWORD, server, new Rng(rng.u32()), faultRates(o.faults !== false), skew);
        await device.signIn();
        devices.push(device);
      }
    }
    const ids = (tag: string) => Array.from({ length: 5 }, (_, i) => `${tag}-${i}`);

    for (let step = 0; step < o.ops; step++) {
      const roll = rng.float();
      const d = rng.pick(devices);
      if (roll < 0.5) {
        const n = rng.int(1, 3);
        for (let i = 0; i < n; i++) {
          const op = rng.pick(['patch', 'patch', 'patch', 'upsert', 'upsert', 'delete'] as const);
          const fields = FIELDS.filter(() => rng.float() < 0.4);
          await d.edit(rng.pick(ENTITIES), rng.pick(ids(d.userTag)), op, op !== 'delete' && fields.length === 0 ? [rng.pick(FIELDS)] : fields);
        }
      } else if (roll < 0.78) {
        // Several devices sync at once: their pushes and pulls interleave on the server.
        const group = devices.filter((x) => x.online && (x === d || rng.float() < 0.3));
        await Promise.all(group.map((x) => x.sync()));
      } else if (roll < 0.88) {
        d.online = !d.online;
      } else if (roll < 0.93) {
        d.crash();
      } else if (roll < 0.96 && o.faults !== false && timeJumps < 4) {
        // Days pass: access tokens expire; devices that stay offline fall behind the horizon.
        timeJumps++;
        await server.advance(3 * DAY_MS);
        await Promise.all(devices.filter((x) => x.online).map((x) => x.sync()));
        await server.compact();
      } else {
        await Promise.all(devices.filter((x) => x.online && rng.float() < 0.5).map((x) => x.sync()));
      }
    }

    // Quiet period: everyone online on a clean network; two rounds, so every push is pulled everywhere.
    for (const x of devices) {
      x.online = true;
      x.net.rates = NO_FAULTS;
    }
    await server.whenUp();
    for (let round = 0; round < 2; round++) for (const x of devices) await x.sync();
    const violations = await check(server, devices, rng);
    const conflicts = new Set(devices.flatMap((x) => x.conflicts.map((c) => c.id)));
    const faults: FaultCounts = { dropped: 0, duplicated: 0, expired: 0, killed: 0, resets: 0 };
    for (const x of devices) for (const k of Object.keys(faults) as (keyof FaultCounts)[]) faults[k] += x.net.counts[k];
    return {
      seed: o.seed,
      ok: violations.length === 0,
      violation: violations[0] ?? null,
      violations,
      stats: {
        writes: devices.reduce((n, x) => n + x.written.length, 0),
        conflicts: conflicts.size,
        rejected: devices.reduce((n, x) => n + x.rejected.length, 0),
        resets: faults.resets,
        crashes: devices.reduce((n, x) => n + x.crashes, 0),
        serverKills: server.kills - killsBefore,
        timeJumps,
        faults,
      },
    };
  } finally {
    for (const x of devices) await x.client?.stop().catch(() => undefined);
    if (own) {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
