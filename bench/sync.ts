/**
 * The sync plugin beside pouchdb-server, the same seeded documents (1 KiB of JSON each) pushed and
 * pulled through each one's HTTP API by the same client code, in the same run:
 *
 *   - push: batches of 100 mutations from 4 clients; goal ≥ 5× pouchdb-server's `_bulk_docs` and
 *     ≥ 20,000 mutations/s;
 *   - pull: 4 devices pulling the whole feed in pages of 500; goal ≥ 5× pouchdb-server's
 *     `_changes?since=…&limit=500&include_docs=true` and ≥ 100,000 changes/s;
 *   - the time of one page of 500 from the middle of the history, of the newest page, and of a
 *     pull at head, on a store of 1,000,000 mutations against one of 10,000: within 1.5×;
 *   - peak RSS of each server process during each part (VmHWM, reset between parts).
 *
 * The push and the pull run in 3 rounds per side (--rounds), interleaved with the peer's, and the
 * ratios are the median of each round's: on a shared VM whose speed drifts between minutes, two
 * figures taken minutes apart would compare the minutes as much as the servers.
 *
 * Ours is a real registry (`node bin/iqp.js server start` from the build, a temp data dir, the auth
 * and sync plugins enabled and configured with the CLI); the peer is pouchdb-server 4 on LevelDB
 * (leveldown) on disk, installed by npm into a cache folder of its own on first use. Both listen on
 * 127.0.0.1 on a free port; the clients run in this process (keep-alive undici), spread over one
 * thread per core (--client-threads; one event loop parsing every page was the pull's ceiling), so on a small
 * machine their CPU is part of what both sides are measured with.
 *
 *   node dist/bench/sync.js [--json] [--quick] [--no-peer] [--no-ours] [--push N] [--small N]
 *       [--large N] [--peer-large] [--clients N] [--client-threads N] [--workers N] [--batch N] [--page N] [--seconds S] [--reps N] [--rounds N]
 *       [--entity NAME] [--sync-plugin sync|DIR] [--sync-config key=value]… [--cpu-prof DIR]
 *       [--peer-dir DIR] [--keep] [--no-wait]
 *
 * Before each part it waits (up to 2 minutes) for idle CPUs, since the machine may be shared, and
 * records the load average; --no-wait measures at once.
 *   (or npm run bench -- --only sync)
 */
// First: the server's threadpool size, as bin/iqp.js sets it (for this process's client, alike).
import '../src/threadpool.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchContext, BenchResult } from './lib/context.js';
import { describeMachine, machineMarkdown } from './lib/machine.js';
import { snapshotBuild } from './lib/snapshot.js';
import { docSet, PAYLOAD_BYTES } from './lib/sync-docs.js';
import { defaultPeerDir, installPeer, npmVersion, PEER_SPEC, peerFlags } from './lib/sync-peer.js';
import { oursVersion } from './lib/sync-ours.js';
import { syncReport } from './lib/sync-report.js';
import { oursSide, peerSide, runSides, type Side, type SideFigures, type SideOptions } from './lib/sync-run.js';

export interface SyncBenchOptions {
  readonly push: number;
  readonly small: number;
  readonly large: number;
  readonly peerLarge: boolean;
  readonly clients: number;
  /** Threads the benchmark's clients run on (default: one per core). */
  readonly clientThreads: number;
  readonly batch: number;
  readonly page: number;
  readonly seconds: number;
  readonly reps: number;
  /** Rounds of the main part (push, then pull) per side, interleaved; the report takes medians. */
  readonly rounds: number;
  readonly peer: boolean;
  readonly ours: boolean;
  readonly seed: number;
  readonly syncPlugin: string;
  readonly entity: string;
  readonly schemaVersion: number;
  readonly syncConfig: readonly string[];
  readonly cpuProf: string | null;
  /** Worker processes of our registry (`iqp server start --workers`); default one per core, as operators get it. */
  readonly workers: number;
  readonly peerDir: string;
  readonly keep: boolean;
  readonly quick: boolean;
  /** Wait for idle CPUs before each part (--no-wait: don't). */
  readonly settle: boolean;
}

export const SYNC_DEFAULTS = { push: 100_000, small: 10_000, large: 1_000_000, clients: 4, batch: 100, page: 500, seconds: 10, reps: 40, rounds: 3, seed: 20261205 } as const;
export const SYNC_QUICK = { push: 4_000, small: 2_000, large: 20_000, seconds: 2, reps: 10, rounds: 1 } as const;

/**
 * Sync plugin config the benchmark needs: its entity listed (no payload schema: pouchdb checks
 * none either) and the per-user rate limits out of the way (one account pushes and pulls from
 * eight devices as fast as it can). Sizes and the rest stay at their defaults.
 */
export function defaultSyncConfig(entity: string): string[] {
  const roomy = { points: 1_000_000_000, duration_s: 60 };
  return [`entities=${JSON.stringify({ [entity]: {} })}`, `rate_limits=${JSON.stringify({ push_per_user: roomy, pull_per_user: roomy })}`];
}

export interface SyncPeerInfo {
  readonly package: string;
  readonly version: string;
  readonly leveldown: string;
  readonly storage: string;
  readonly flags: string;
  readonly dir: string;
  readonly installedNow: boolean;
  readonly npm: string;
}

export interface SyncBenchData {
  readonly options: SyncBenchOptions;
  readonly peer: { readonly info: SyncPeerInfo; readonly figures: SideFigures } | null;
  readonly ours: { readonly version: string; readonly setup: readonly string[]; readonly figures: SideFigures } | null;
  readonly payloadBytes: number;
  readonly loadAverage: { readonly start: string; readonly end: string };
  readonly minutes: number;
}

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export async function runSyncBench(cliRoot: string, work: string, o: SyncBenchOptions, log: (m: string) => void): Promise<SyncBenchData> {
  const started = Date.now();
  const loadStart = load();
  mkdirSync(work, { recursive: true });
  const docs = docSet(o.seed);
  const side: SideOptions = { push: o.push, small: o.small, large: o.large, clients: o.clients, threads: o.clientThreads, batch: o.batch, page: o.page, seconds: o.seconds, reps: o.reps, work, keep: o.keep, settle: o.settle };
  const sides: Side[] = [];
  let peerInfo: SyncPeerInfo | null = null;
  if (o.peer) {
    const install = installPeer(o.peerDir, log);
    const info: SyncPeerInfo = {
      package: PEER_SPEC,
      version: install.version,
      leveldown: install.leveldown,
      storage: `LevelDB on disk (leveldown ${install.leveldown}), a fresh folder per part`,
      flags: peerFlags('<free port>', '<temp dir>').join(' '),
      dir: install.dir,
      installedNow: install.installedNow,
      npm: npmVersion(),
    };
    log(`peer: pouchdb-server ${install.version} from ${install.dir}`);
    peerInfo = info;
    sides.push(peerSide(install, side, docs, o.peerLarge));
  }
  if (o.ours) {
    if (o.cpuProf) mkdirSync(o.cpuProf, { recursive: true });
    sides.push(oursSide({ cliRoot, syncPlugin: o.syncPlugin, entity: o.entity, schemaVersion: o.schemaVersion, syncConfig: o.syncConfig, cpuProf: o.cpuProf, workers: o.workers }, side, docs));
  }
  if (o.rounds > 1) log(`main part: ${o.rounds} rounds per side, interleaved`);
  const figures = await runSides(sides, Math.max(1, o.rounds), side, log);
  const peerFigures = figures.get('peer');
  const oursFigures = figures.get('ours');
  const peer: SyncBenchData['peer'] = peerInfo && peerFigures ? { info: peerInfo, figures: peerFigures } : null;
  const ours: SyncBenchData['ours'] = oursFigures ? { version: oursVersion(cliRoot), setup: oursFigures.setup, figures: oursFigures } : null;
  return { options: o, peer, ours, payloadBytes: PAYLOAD_BYTES, loadAverage: { start: loadStart, end: load() }, minutes: (Date.now() - started) / 60000 };
}

export function syncOptionsFor(quick: boolean, overrides: Partial<SyncBenchOptions> = {}): SyncBenchOptions {
  const size = quick ? SYNC_QUICK : SYNC_DEFAULTS;
  const entity = overrides.entity ?? 'card';
  return {
    push: size.push,
    small: size.small,
    large: size.large,
    peerLarge: false,
    clients: SYNC_DEFAULTS.clients,
    clientThreads: availableParallelism(),
    batch: SYNC_DEFAULTS.batch,
    page: SYNC_DEFAULTS.page,
    seconds: size.seconds,
    reps: size.reps,
    rounds: size.rounds,
    peer: true,
    ours: true,
    seed: SYNC_DEFAULTS.seed,
    syncPlugin: 'sync',
    entity,
    schemaVersion: 1,
    syncConfig: defaultSyncConfig(entity),
    cpuProf: null,
    workers: availableParallelism(),
    peerDir: defaultPeerDir(),
    keep: false,
    quick,
    settle: true,
    ...overrides,
  };
}

export async function benchSync(ctx: BenchContext): Promise<BenchResult> {
  const work = ctx.scratch('sync');
  const data = await runSyncBench(ctx.cliRoot, work, syncOptionsFor(ctx.options.quick), (m) => ctx.log(m));
  return { name: 'sync', ...syncReport(data), data };
}

// Run directly: node dist/bench/sync.js [options]
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'no-peer': { type: 'boolean', default: false },
      'no-ours': { type: 'boolean', default: false },
      push: { type: 'string' },
      small: { type: 'string' },
      large: { type: 'string' },
      'peer-large': { type: 'boolean', default: false },
      clients: { type: 'string' },
      'client-threads': { type: 'string' },
      workers: { type: 'string' },
      batch: { type: 'string' },
      page: { type: 'string' },
      seconds: { type: 'string' },
      reps: { type: 'string' },
      rounds: { type: 'string' },
      seed: { type: 'string' },
      entity: { type: 'string' },
      'schema-version': { type: 'string' },
      'sync-config': { type: 'string', multiple: true },
      'sync-plugin': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'peer-dir': { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-wait': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: node dist/bench/sync.js [--json] [--quick] [--no-peer] [--no-ours] [--push N] [--small N] [--large N (0: none)] [--peer-large]\n' +
        '         [--clients N] [--client-threads N] [--workers N] [--batch N] [--page N] [--seconds S] [--reps N] [--rounds N] [--seed N] [--entity NAME] [--schema-version N]\n' +
        '         [--sync-plugin sync|DIR] [--sync-config key=value]… [--cpu-prof DIR] [--peer-dir DIR] [--keep] [--no-wait]\n',
    );
    process.exit(0);
  }
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const work = join(root, 'bench', '.work', 'sync');
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v.replaceAll('_', ''));
    if (!Number.isInteger(n) || n < 0) {
      process.stderr.write(`--${name} takes a whole number (got ${JSON.stringify(v)})\n`);
      process.exit(2);
    }
    return n;
  };
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const entity = values.entity ?? 'card';
  const o = syncOptionsFor(values.quick ?? false, {
    ...defined({
      push: num(values.push, 'push'),
      small: num(values.small, 'small'),
      large: num(values.large, 'large'),
      clients: num(values.clients, 'clients'),
      clientThreads: num(values['client-threads'], 'client-threads'),
      workers: num(values.workers, 'workers'),
      batch: num(values.batch, 'batch'),
      page: num(values.page, 'page'),
      seconds: num(values.seconds, 'seconds'),
      reps: num(values.reps, 'reps'),
      rounds: num(values.rounds, 'rounds'),
      seed: num(values.seed, 'seed'),
      schemaVersion: num(values['schema-version'], 'schema-version'),
    }),
    entity,
    syncConfig: values['sync-config'] ?? defaultSyncConfig(entity),
    syncPlugin: values['sync-plugin'] ?? 'sync',
    peerLarge: values['peer-large'] ?? false,
    peer: !values['no-peer'],
    ours: !values['no-ours'],
    cpuProf: values['cpu-prof'] ?? null,
    peerDir: values['peer-dir'] ?? defaultPeerDir(),
    keep: values.keep ?? false,
    settle: !values['no-wait'],
  });
  // --json: exactly one JSON document on stdout and nothing on stderr.
  const log = values.json ? () => {} : (m: string) => process.stderr.write(`[bench:sync] ${m}\n`);
  const machine = describeMachine(root);
  log(`${machine.cpu}, ${machine.cores} cores, load average ${machine.loadAverage}`);
  const cliRoot = snapshotBuild(root, work);
  const data = await runSyncBench(cliRoot, work, o, log);
  const { markdown, verdicts } = syncReport(data);
  const json = `${JSON.stringify({ machine, ...data, verdicts }, null, 2)}\n`;
  const report = `## Sync benchmark ${machine.date}\n\n${machineMarkdown(machine)}\n\n${markdown}\n`;
  // Kept beside the other benchmarks' reports (bench/.work is not committed).
  const results = join(work, 'results');
  mkdirSync(results, { recursive: true });
  const stamp = machine.date.replaceAll(':', '');
  writeFileSync(join(results, `${stamp}.json`), json);
  writeFileSync(join(results, `${stamp}.md`), report);
  process.stdout.write(values.json ? json : report);
  log(`report written to ${join(results, `${stamp}.md`)} and .json`);
  process.exitCode = verdicts.every((v) => v.pass) ? 0 : 1;
}
