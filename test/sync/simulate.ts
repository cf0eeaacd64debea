/**
 * The sync simulator over many seeds, for the test suite: a quarter of the seeds per test file (so
 * vitest runs the four files side by side), on one registry per file, each seed small. A failing
 * seed is named with the invariant it broke; `IQP_TEST_SEED` replays a file's run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SimServer } from '../../src/sync-sim/server.js';
import { simulate } from '../../src/sync-sim/sim.js';
import { seededRng } from '../seed.js';

export const SEEDS_PER_FILE = 50;
/**
 * A file's 50 seeds take 45–50 s alone, about half of it starting the registry child again after
 * each simulated kill (15–20 a file, 1.2–1.5 s each: a fresh node process with its plugins); beside
 * the rest of the suite on two cores they have passed 60 s. The limit is there to catch a hang,
 * not to time the work.
 */
const FILE_TIMEOUT_MS = 180_000;

/** A simulator registry (a child process on a temporary data directory) for the test file: started before its tests, stopped and removed after. */
export function simServerForFile(): SimServer {
  const dir = mkdtempSync(join(tmpdir(), 'iqp-sim-test-'));
  const server = new SimServer(dir);
  beforeAll(() => server.start());
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

export function simulatorSeeds(part: number): void {
  const { seed } = seededRng(`sync simulator, part ${part}`);
  const server = simServerForFile();

  it(`holds every invariant for ${SEEDS_PER_FILE} seeds from ${seed}`, async () => {
    const totals = { writes: 0, conflicts: 0, resets: 0, crashes: 0, serverKills: 0, dropped: 0, duplicated: 0, expired: 0 };
    for (let i = 0; i < SEEDS_PER_FILE; i++) {
      const s = (seed + i) >>> 0;
      // Small runs, shaped by the seed: one or two accounts, two or three devices, 30 to 60 steps.
      const r = await simulate({ users: 1 + (s % 2), devices: 2 + (s % 3 === 0 ? 1 : 0), ops: 30 + (s % 31), seed: s, server });
      expect(r.violation, `seed ${s} (iqp sync simulate --users ${1 + (s % 2)} --devices ${2 + (s % 3 === 0 ? 1 : 0)} --ops ${30 + (s % 31)} --seed ${s})`).toBeNull();
      totals.writes += r.stats.writes;
      totals.conflicts += r.stats.conflicts;
      totals.resets += r.stats.resets;
      totals.crashes += r.stats.crashes;
      totals.serverKills += r.stats.serverKills;
      totals.dropped += r.stats.faults.dropped;
      totals.duplicated += r.stats.faults.duplicated;
      totals.expired += r.stats.faults.expired;
    }
    console.info(`sync simulator part ${part}: ${JSON.stringify(totals)}`);
    // The faults the runs exist for did happen (a run of clean weather proves little).
    expect(totals.conflicts).toBeGreaterThan(0);
    expect(totals.dropped + totals.duplicated + totals.expired).toBeGreaterThan(0);
    expect(totals.crashes).toBeGreaterThan(0);
  }, FILE_TIMEOUT_MS);
}
