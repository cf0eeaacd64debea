/**
 * One side of the sync benchmark (pouchdb-server or iqp), on fresh servers and folders for each
 * part so that no part measures what an earlier one left behind:
 *
 *   main:  push `push` documents (batches of `batch`, `clients` loops), then `clients` devices pull
 *          the whole feed over and over for `seconds` (pages of `page`);
 *   small: push `small` documents, one device's pass over the feed, then the time of single pages
 *          (middle, newest, at head);
 *   large: the same with `large` documents, the fill timed as part of the benchmark.
 *
 * The main part runs `rounds` times, the two sides interleaved (peer, ours, peer, ours…), each
 * round on fresh servers: this VM's speed drifts by a quarter between minutes (the same build,
 * the same command), and a ratio of two figures taken minutes apart measures that drift as much as
 * the servers. Each pair of adjacent rounds gives a ratio; the report takes their median.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { interleaveRuns } from '../registry/measure.js';
import { loadString, settle } from '../registry/quiet.js';
import { median } from './proc.js';
import { oursPeer, pouchPeer, type SyncPeer, type SyncServer } from './sync-client.js';
import type { DocSet } from './sync-docs.js';
import { ClientLoad } from './sync-load.js';
import { type Latency, type Pass, type PullResult, type PushResult, onePass, pageLatency, procKiB, pullRepeatedly, pushAll } from './sync-measure.js';
import { BENCH_EMAIL, BENCH_PASSWORD, setupOurs, startOurs } from './sync-ours.js';
import { type PeerInstall, startPeer } from './sync-peer.js';

export interface SideOptions {
  readonly push: number;
  readonly small: number;
  /** 0: no large part. */
  readonly large: number;
  readonly clients: number;
  /** Threads the clients run on (sync-load.ts; 1: this process's event loop). */
  readonly threads: number;
  readonly batch: number;
  readonly page: number;
  readonly seconds: number;
  readonly reps: number;
  readonly work: string;
  readonly keep: boolean;
  /** Before each part, wait (up to 2 min) for the CPUs to be idle: the machine may be shared. */
  readonly settle: boolean;
}

export interface OursSideOptions {
  readonly cliRoot: string;
  /** `sync` (built in) or a plugin directory. */
  readonly syncPlugin: string;
  readonly entity: string;
  readonly schemaVersion: number;
  readonly syncConfig: readonly string[];
  /** Folder for V8 CPU profiles of the server (node --cpu-prof), or null. */
  readonly cpuProf: string | null;
  readonly workers: number;
  /** The registry's other settings for a part (IQP_DATABASE_URL…), asked for once per part: a fresh database each. */
  readonly env?: (part: string) => Promise<Readonly<Record<string, string>>>;
  /** CPU seconds used so far by the database server those settings name, counted beside the registry's own. */
  readonly databaseCpu?: () => number | null;
}

export interface ScalePart {
  readonly documents: number;
  readonly fill: PushResult;
  readonly pass: Omit<Pass, 'cursors' | 'counts'>;
  readonly latency: Latency;
  readonly storeBytes: number;
  readonly rssAfterKiB: number | null;
  /** 429/503 answers waited out. */
  readonly retries: number;
  /** Load averages when the part started. */
  readonly load: string;
}

export interface SideFigures extends MainFigures {
  /** Every round of the main part, in the order run; the figures above are its median push and median pull. */
  readonly rounds: readonly MainFigures[];
  readonly small: ScalePart;
  readonly large: ScalePart | null;
  readonly setup: readonly string[];
}

export function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

interface Started {
  readonly peer: SyncPeer;
  readonly load: ClientLoad;
  readonly server: SyncServer;
  readonly dir: string;
}

type Starter = (part: string) => Promise<Started>;

/**
 * Before each part: the writes earlier parts left in the page cache go to disk first (`sync`), then
 * the wait for idle CPUs. pouchdb-server writes without fsync, so a round of it leaves about a
 * hundred megabytes for the kernel to write back, and ext4 writes such data out with the next
 * journal commit anyone asks for: the registry's fdatasyncs right after it paid for pouchdb's
 * writes (measured: its main push at 18.8–20.3k mutations/s right after a pouchdb round, its
 * large fill at 22–26k after a part of its own; with the sync first, 22.6–25.2k in the main push).
 */
async function quiet(o: SideOptions, log: (m: string) => void): Promise<string> {
  execFileSync('sync');
  await settle({ enabled: o.settle }, log);
  return loadString();
}

/** A failure with the end of what the server wrote to stderr (a 500 says no more than that it failed). */
function withServerLog(err: unknown, server: SyncServer): Error {
  const tail = server.stderr().trim().split('\n').slice(-20).join('\n');
  return new Error(`${err instanceof Error ? err.message : String(err)}${tail ? `\nthe server's stderr ended with:\n${tail}` : ''}`, { cause: err });
}

async function scalePart(start: Starter, documents: number, o: SideOptions, log: (m: string) => void, name: string): Promise<ScalePart> {
  const { peer, load: clients, server, dir } = await start(`${name}-${documents}`);
  const load = await quiet(o, log);
  try {
    log(`${peer.name}: filling a store of ${documents.toLocaleString('en-US')} documents…`);
    const fill = await pushAll(clients, 0, documents, o.batch, o.clients, (done, s) => log(`${peer.name}:   ${done.toLocaleString('en-US')} in ${s.toFixed(0)} s`));
    log(`${peer.name}:   ${documents.toLocaleString('en-US')} in ${fill.seconds.toFixed(1)} s (${Math.round(fill.perSecond)}/s); one device's pass over the feed…`);
    const pass = await onePass(peer, o.page, documents);
    log(`${peer.name}:   ${pass.seconds.toFixed(1)} s (${Math.round(pass.perSecond)}/s); single pages, ${o.reps} each…`);
    const latency = await pageLatency(peer, pass, o.page, o.reps);
    const { cursors: _c, counts: _n, ...passFigures } = pass;
    return { documents, fill, pass: passFigures, latency, storeBytes: dirBytes(dir), rssAfterKiB: procKiB(server.pids, 'VmRSS'), retries: clients.retries(), load };
  } catch (err) {
    throw withServerLog(err, server);
  } finally {
    await clients.close();
    await peer.close();
    await server.stop();
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The main part's figures: push, then pull of the whole feed by several devices. */
export interface MainFigures {
  readonly push: PushResult;
  readonly pull: PullResult;
  readonly storeBytes: number;
  /** 429/503 answers waited out. */
  readonly retries: number;
  /** Load averages when the part started. */
  readonly load: string;
}

async function mainPart(start: Starter, o: SideOptions, log: (m: string) => void): Promise<MainFigures> {
  const { peer, load: clients, server, dir } = await start('main');
  const load = await quiet(o, log);
  try {
    log(`${peer.name}: pushing ${o.push.toLocaleString('en-US')} documents, ${o.batch} a request, ${o.clients} clients on ${clients.threads} thread(s)…`);
    const push = await pushAll(clients, 0, o.push, o.batch, o.clients);
    log(`${peer.name}:   ${Math.round(push.perSecond)} mutations/s; ${o.clients} devices pull the whole feed for ${o.seconds} s…`);
    const pull = await pullRepeatedly(clients, o.clients, o.seconds, o.page, o.push);
    log(`${peer.name}:   ${Math.round(pull.perSecond)} changes/s`);
    return { push, pull, storeBytes: dirBytes(dir), retries: clients.retries(), load };
  } catch (err) {
    throw withServerLog(err, server);
  } finally {
    await clients.close();
    await peer.close();
    await server.stop();
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** The round whose figure is the median (the upper one of the middle two for an even count). */
function medianRound(rounds: readonly MainFigures[], figure: (r: MainFigures) => number): MainFigures {
  const m = median(rounds.map(figure));
  return [...rounds].sort((a, b) => figure(a) - figure(b)).find((r) => figure(r) >= m) ?? rounds[0]!;
}

/** A side's figures: its median push and median pull over the rounds, then the small and large parts. */
async function side(start: Starter, rounds: readonly MainFigures[], o: SideOptions, log: (m: string) => void): Promise<SideFigures> {
  const byPush = medianRound(rounds, (r) => r.push.perSecond);
  const byPull = medianRound(rounds, (r) => r.pull.perSecond);
  const small = await scalePart(start, o.small, o, log, 'small');
  const large = o.large > 0 ? await scalePart(start, o.large, o, log, 'large') : null;
  const retries = rounds.reduce((n, r) => n + r.retries, 0) + small.retries + (large?.retries ?? 0);
  return { push: byPush.push, pull: byPull.pull, storeBytes: byPush.storeBytes, load: rounds[0]!.load, rounds, small, large, retries, setup: [] };
}

/** What the benchmark needs of each side: how to start a part's server and clients, and what to call it. */
export interface Side {
  readonly name: 'peer' | 'ours';
  readonly start: Starter;
  /** The CLI commands that set up our registry, once one has been set up. */
  readonly setup: () => readonly string[];
  /** The large part on this side (the peer's is optional: filling pouchdb-server with a million documents takes long). */
  readonly large: boolean;
}

/**
 * Both sides (either may be absent): `rounds` rounds of the main part, interleaved, then each
 * side's small and large parts.
 */
export async function runSides(sides: readonly Side[], rounds: number, o: SideOptions, log: (m: string) => void): Promise<Map<Side['name'], SideFigures>> {
  const runs = await interleaveRuns(
    sides.map((s) => [s.name, () => mainPart(s.start, o, log)] as const),
    rounds,
    async () => undefined,
    false,
  );
  const out = new Map<Side['name'], SideFigures>();
  for (const s of sides) {
    const figures = await side(s.start, runs.get(s.name)!, s.large ? o : { ...o, large: 0 }, log);
    out.set(s.name, { ...figures, setup: s.setup() });
  }
  return out;
}

export function peerSide(install: PeerInstall, o: SideOptions, docs: DocSet, large: boolean): Side {
  const start: Starter = async (part) => {
    const dir = join(o.work, `peer-${part}`);
    rmSync(dir, { recursive: true, force: true });
    const server = await startPeer(install, dir, 'bench');
    const peer = pouchPeer(server, 'bench', docs, o.clients);
    try {
      return { server, peer, load: await ClientLoad.open(peer, o.threads, docs.seed), dir };
    } catch (err) {
      await server.stop();
      throw err;
    }
  };
  return { name: 'peer', start, setup: () => [], large };
}

/** Starts each part's registry: a fresh data directory set up with the CLI, then `iqp server start`. */
function oursStarter(ours: OursSideOptions, o: SideOptions, docs: DocSet, onSetup: (commands: readonly string[]) => void): Starter {
  let n = 0;
  return async (part) => {
    const dir = join(o.work, `ours-${part}`);
    rmSync(dir, { recursive: true, force: true });
    const env = ours.env ? await ours.env(part) : {};
    onSetup(setupOurs(ours.cliRoot, dir, ours.syncPlugin, ours.syncConfig, env).commands);
    // A folder per part, with Node's own file names (they hold the pid): workers inherit the flags, and one name would keep only the last process's profile.
    const nodeArgs = ours.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(ours.cpuProf, `server-${part}`)] : [];
    const started = await startOurs(ours.cliRoot, dir, nodeArgs, ['auth', 'sync'], ours.workers, env);
    const server = ours.databaseCpu ? { ...started, databaseCpu: ours.databaseCpu } : started;
    try {
      const peer = await oursPeer(server, docs, o.clients, {
        email: BENCH_EMAIL,
        password: BENCH_PASSWORD,
        entity: ours.entity,
        schemaVersion: ours.schemaVersion,
        devicePrefix: `bench-${process.pid}-${n++}`,
      });
      return { server, peer, load: await ClientLoad.open(peer, o.threads, docs.seed), dir };
    } catch (err) {
      await server.stop();
      throw err;
    }
  };
}

export function oursSide(ours: OursSideOptions, o: SideOptions, docs: DocSet): Side {
  let setup: readonly string[] = [];
  return { name: 'ours', start: oursStarter(ours, o, docs, (c) => (setup = c)), setup: () => setup, large: true };
}

/** Only the main part (push, then pull) on a fresh registry: for comparing storage configurations. */
export async function runOursMain(ours: OursSideOptions, o: SideOptions, docs: DocSet, log: (m: string) => void): Promise<MainFigures & { readonly setup: readonly string[] }> {
  let setup: readonly string[] = [];
  const figures = await mainPart(oursStarter(ours, o, docs, (c) => (setup = c)), o, log);
  return { ...figures, setup };
}
