/**
 * The storage benchmark's measurements, each over several storage configurations in the same run,
 * runs interleaved (A B C A B C …), medians with their spread and the ratio to SQLite + fs:
 *
 * - publish: the small packs PUT through the API (curl, as `iqp publish` sends them) by a few
 *   clients at once, into an empty registry each run; answers, listing, blobs and a sample checked;
 * - latest: GET /v1/releases/latest?channel=stable with wrk (keep-alive), the answer's signature
 *   checked before; no errors and no non-2xx allowed;
 * - sync: the sync benchmark's push and pull (bench/lib/sync-*.ts) on a fresh registry each run.
 *
 * Downloads are in storage-download.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { defaultSyncConfig } from '../sync.js';
import { int, table } from '../lib/format.js';
import { samples, type Samples } from '../lib/proc.js';
import { serverCpu } from '../lib/sync-measure.js';
import { docSet } from '../lib/sync-docs.js';
import { type OursSideOptions, runOursMain, type SideOptions } from '../lib/sync-run.js';
import { type Backends, freshPlacement, type Placement, STORAGE_LABELS, type StorageKind, storageEnv } from './backends.js';
import { wrk } from './clients.js';
import { interleaveRuns, spread } from './measure.js';
import { freshRegistry, publish, publishHeaders, type FreshRegistry } from './publish.js';
import type { Quiet } from './quiet.js';
import type { Child } from './servers.js';
import { checkLatest, downloadPath, LATEST_PATH, type Standing, type StorageCorpus, type StoragePack } from './storage-setup.js';
import { checkWrk, type Section } from './targets.js';

export interface StorageOptions {
  readonly runs: number;
  /** Seconds of each wrk and download run. */
  readonly seconds: number;
  readonly connections: number;
  readonly wrkThreads: number;
  readonly publishConcurrency: number;
  readonly downloadClients: number;
  readonly syncPush: number;
  readonly syncSeconds: number;
  readonly workers: number;
  readonly quick: boolean;
  /** Wait for idle CPUs between runs. */
  readonly settle: boolean;
}

export interface StorageEnv {
  readonly cliRoot: string;
  readonly work: string;
  readonly backends: Backends;
  readonly corpus: StorageCorpus;
  readonly options: StorageOptions;
  /** The registries of the read measurements (latest, downloads). */
  readonly standing: ReadonlyMap<StorageKind, Standing>;
  quiet(label: string): Promise<Quiet>;
  settle(): Promise<void>;
  log(m: string): void;
}

const noPause = async () => {};

/** CPU seconds used over a measurement by the registry's processes and, on PostgreSQL, by the cluster. */
export interface CpuSpent {
  readonly registry: number;
  readonly database: number | null;
}

export function cpuMeter(env: StorageEnv, kind: StorageKind, pids: readonly number[]): () => CpuSpent {
  const db = () => (kind === 'sqlite-fs' ? null : env.backends.pg.cpuSeconds());
  const r0 = serverCpu(pids) ?? Number.NaN;
  const d0 = db();
  return () => {
    const d1 = db();
    return { registry: (serverCpu(pids) ?? Number.NaN) - r0, database: d0 === null || d1 === null ? null : d1 - d0 };
  };
}

/** One row per configuration: the median CPU per unit of work, in ms, of the registry and of PostgreSQL. */
export function cpuTable(runs: ReadonlyMap<string, readonly { cpu: CpuSpent; units: number }[]>, unit: string): string {
  const ms = (list: readonly { cpu: CpuSpent; units: number }[], f: (c: CpuSpent) => number | null) => {
    const v = list.map((r) => ({ s: f(r.cpu), units: r.units })).filter((x): x is { s: number; units: number } => x.s !== null);
    return v.length === 0 ? '—' : samples(v.map((x) => (x.s * 1000) / x.units)).median.toFixed(2);
  };
  return table(
    ['configuration', `registry, ms per ${unit}`, `PostgreSQL, ms per ${unit}`],
    [...runs].map(([label, list]) => [label, ms(list, (c) => c.registry), ms(list, (c) => c.database)]),
  );
}

/** One row per configuration: median (spread), ratio to the first, every run. */
export function configTable(res: ReadonlyMap<string, Samples>, unit: string, fmt: (v: number) => string): string {
  const first = [...res.values()][0]!;
  const rows = [...res].map(([label, s]) => [label, `${fmt(s.median)} (${spread(s)})`, (s.median / first.median).toFixed(2), s.values.map(fmt).join(', ')]);
  return table(['configuration', `median ${unit}`, `vs ${[...res.keys()][0]}`, `runs (${unit})`], rows);
}

export function quietLine(q: Quiet): string {
  return `Load average at start: ${q.load}${q.warning ? ` (${q.warning})` : ''}.`;
}

// ---------------------------------------------------------------------------------------------
// Publish

/** What a publish run must have left: every pack listed, its blob where the configuration keeps blobs, a sample downloaded intact. */
async function checkPublished(env: StorageEnv, kind: StorageKind, place: Placement, reg: FreshRegistry, answers: readonly string[], sample: StoragePack): Promise<void> {
  const packs = env.corpus.small;
  packs.forEach((p, k) => {
    if (answers[k] !== p.sha256) throw new Error(`${kind}: ${p.package_id} published as ${answers[k]}, not ${p.sha256}`);
  });
  const list = (await (await fetch(`${reg.server.url}/v1/packs?limit=500`)).json()) as { packs: { package_id: string }[] };
  const listed = new Set(list.packs.map((p) => p.package_id));
  if (listed.size !== packs.length || packs.some((p) => !listed.has(p.package_id))) throw new Error(`${kind}: /v1/packs lists ${listed.size} packs, not the ${packs.length} published`);
  // The configuration is the one claimed: a SQLite file only without database_url, blobs where blob_store says.
  if (existsSync(join(reg.dataDir, 'registry.sqlite')) !== (kind === 'sqlite-fs')) throw new Error(`${kind}: registry.sqlite ${kind === 'sqlite-fs' ? 'missing' : 'written'} in the data directory`);
  for (const p of packs) {
    const blob = place.bucket ? env.backends.s3.objectFile(place.bucket, `sha256/${p.sha256}`) : join(reg.dataDir, 'blobs', 'sha256', p.sha256.slice(0, 2), p.sha256);
    if (!existsSync(blob)) throw new Error(`${kind}: no blob for ${p.package_id} at ${blob}`);
  }
  const r = await fetch(reg.server.url + downloadPath(sample));
  const got = createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex');
  if (r.status !== 200 || got !== sample.sha256) throw new Error(`${kind}: ${sample.package_id} downloaded as ${r.status} ${got}`);
}

export async function benchPublish(env: StorageEnv): Promise<Section> {
  const q = await env.quiet('publish');
  const o = env.options;
  const packs = env.corpus.small;
  const bytes = packs.reduce((a, p) => a + p.size, 0);
  const kinds: StorageKind[] = ['sqlite-fs', 'pg-fs', 'pg-s3-proxy'];
  for (const p of packs) await publishHeaders(p.path); // signatures read before any clock starts, as iqp publish does
  let run = 0;
  const variant = (kind: StorageKind) => async (): Promise<{ perSecond: number; cpu: CpuSpent; units: number }> => {
    const place = await freshPlacement(env.backends, kind);
    const dataDir = join(env.work, `publish-${kind}`);
    const reg = await freshRegistry(env.cliRoot, dataDir, env.corpus, { workers: o.workers, env: storageEnv(env.backends, kind, place) });
    try {
      if (o.settle) await env.settle();
      const answers: string[] = [];
      let next = 0;
      const cpu = cpuMeter(env, kind, reg.server.servingPids());
      const started = performance.now();
      await Promise.all(
        Array.from({ length: o.publishConcurrency }, async () => {
          for (let k = next++; k < packs.length; k = next++) answers[k] = (JSON.parse((await publish(reg, packs[k]!.path)).body) as { sha256: string }).sha256;
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const spent = cpu();
      await checkPublished(env, kind, place, reg, answers, packs[run++ % packs.length]!);
      return { perSecond: packs.length / seconds, cpu: spent, units: packs.length };
    } finally {
      await reg.server.stop();
    }
  };
  env.log(`publish: ${packs.length} packs (${(bytes / 2 ** 20).toFixed(1)} MiB), ${o.publishConcurrency} at a time, ${o.runs} runs per configuration…`);
  const runs = await interleaveRuns(kinds.map((k) => [STORAGE_LABELS[k], variant(k)] as const), o.runs, noPause);
  const res = new Map([...runs].map(([k, v]) => [k, samples(v.map((r) => r.perSecond))]));
  const markdown = [
    `### Publish: ${packs.length} distinct small packs (${(bytes / 2 ** 20).toFixed(1)} MiB in all, ${(Math.min(...packs.map((p) => p.size)) / 2 ** 10).toFixed(0)} KiB to ${(Math.max(...packs.map((p) => p.size)) / 2 ** 20).toFixed(1)} MiB), ${o.publishConcurrency} PUT /v1/admin/packs at a time`,
    '',
    `${quietLine(q)} Each run: an empty registry (new data directory, and a new database or bucket), the key registered, then every pack sent with curl as \`iqp publish\` sends it, each verified and committed by the registry (201). Checked after each run: every answer's sha256, /v1/packs lists them all, each blob is in the configuration's store (and no registry.sqlite is written on PostgreSQL), one pack downloaded intact. Median of ${o.runs} interleaved runs after a warm-up.`,
    '',
    configTable(res, 'packs/s', (v) => v.toFixed(1)),
    '',
    'CPU (user + system) per pack published, median over the runs: the registry\'s process (receiving, verifying on a worker thread, committing) and the PostgreSQL cluster\'s processes; s3rver\'s is not counted.',
    '',
    cpuTable(runs, 'pack'),
  ].join('\n');
  return { name: 'publish', markdown, verdicts: [], data: { packs: packs.length, bytes, runs: Object.fromEntries(runs) } };
}

// ---------------------------------------------------------------------------------------------
// latest

export async function benchLatest(env: StorageEnv): Promise<Section> {
  const q = await env.quiet('latest');
  const o = env.options;
  const kinds = (['sqlite-fs', 'pg-fs'] as const).filter((k) => env.standing.has(k));
  const servers: [StorageKind, Child, number][] = kinds.map((k) => [k, env.standing.get(k)!.server, env.standing.get(k)!.releaseId]);
  let size = 0;
  for (const [, server, releaseId] of servers) size = (await checkLatest(server.url, env.corpus, releaseId)).length;
  const variant = (kind: StorageKind, server: Child) => async (): Promise<{ perSecond: number; cpu: CpuSpent; units: number }> => {
    const cpu = cpuMeter(env, kind, server.servingPids());
    const r = await wrk(server.url + LATEST_PATH, { connections: o.connections, threads: o.wrkThreads, seconds: o.seconds });
    const spent = cpu();
    checkWrk(`${kind} latest`, r, size + 1024);
    return { perSecond: r.requestsPerSec, cpu: spent, units: r.requests / 1000 };
  };
  env.log(`latest: ${o.runs} × ${o.seconds} s per configuration, ${o.connections} connections…`);
  const runs = await interleaveRuns(
    servers.map(([k, s]) => [STORAGE_LABELS[k], variant(k, s)] as const),
    o.runs,
    () => (o.settle ? env.settle() : noPause()),
  );
  const res = new Map([...runs].map(([k, v]) => [k, samples(v.map((r) => r.perSecond))]));
  const markdown = [
    `### \`latest\`: GET ${LATEST_PATH} (${size} bytes), wrk -t${o.wrkThreads} -c${o.connections} -d${o.seconds}s`,
    '',
    `${quietLine(q)} What an app asks first: the newest signed release of its channel. Before the runs each registry's answer was checked (200, the release published, its signature valid under the bench's release key, the download pack its one artifact); wrk saw no socket errors and no non-2xx. The answer comes from each process's cache of serialized JSON, checked against the store's change counter on every request (SQLite: a read of the counter at most once per millisecond; PostgreSQL: a value kept current by NOTIFY), so this measures serving a cached answer on each store, not a query. Median of ${o.runs} interleaved runs after a warm-up.`,
    '',
    configTable(res, 'req/s', int),
    '',
    'CPU (user + system) per 1,000 answers, median over the runs (PostgreSQL near zero: the answers do not query it):',
    '',
    cpuTable(runs, '1,000 answers'),
  ].join('\n');
  return { name: 'latest', markdown, verdicts: [], data: { bytes: size, runs: Object.fromEntries(runs) } };
}

// ---------------------------------------------------------------------------------------------
// Sync

export async function benchSyncStorage(env: StorageEnv): Promise<Section> {
  const q = await env.quiet('sync');
  const o = env.options;
  const docs = docSet(20261205);
  const side: SideOptions = { push: o.syncPush, small: 0, large: 0, clients: 4, threads: availableParallelism(), batch: 100, page: 500, seconds: o.syncSeconds, reps: 0, work: join(env.work, 'sync'), keep: false, settle: o.settle };
  const ours = (kind: StorageKind): OursSideOptions => ({
    cliRoot: env.cliRoot,
    syncPlugin: 'sync',
    entity: 'card',
    schemaVersion: 1,
    syncConfig: defaultSyncConfig('card'),
    cpuProf: null,
    workers: o.workers,
    ...(kind === 'sqlite-fs' ? {} : { env: async () => storageEnv(env.backends, kind, await freshPlacement(env.backends, kind)), databaseCpu: () => env.backends.pg.cpuSeconds() }),
  });
  const kinds: StorageKind[] = ['sqlite-fs', 'pg-fs'];
  env.log(`sync: push ${o.syncPush} mutations then pull for ${o.syncSeconds} s, ${o.runs} runs per configuration…`);
  const runs = await interleaveRuns(
    kinds.map((k) => [STORAGE_LABELS[k], () => runOursMain(ours(k), side, docs, (m) => env.log(`  ${STORAGE_LABELS[k]}: ${m}`))] as const),
    o.runs,
    noPause,
  );
  const pick = (f: (r: Awaited<ReturnType<typeof runOursMain>>) => number) => new Map([...runs].map(([k, v]) => [k, samples(v.map(f))]));
  const push = pick((r) => r.push.perSecond);
  const pull = pick((r) => r.pull.perSecond);
  const cpuRuns = (part: 'push' | 'pull') =>
    new Map(
      [...runs].map(([k, v]) => [
        k,
        v.map((r) => ({
          cpu: { registry: r[part].cpu.serverSeconds ?? Number.NaN, database: r[part].cpu.databaseSeconds },
          units: part === 'push' ? r.push.mutations / side.batch : r.pull.changes / side.page,
        })),
      ]),
    );
  const retries = [...runs].map(([k, v]) => `${k} ${v.reduce((a, r) => a + r.retries, 0)}`).join(', ');
  const markdown = [
    `### Sync: push ${o.syncPush.toLocaleString('en-US')} mutations (${side.batch} a request, ${side.clients} devices), then ${side.clients} devices pull the whole feed for ${o.syncSeconds} s (pages of ${side.page})`,
    '',
    `${quietLine(q)} The sync benchmark's client (bench/lib/sync-*.ts: undici keep-alive, every push checked applied, every pass over the feed checked complete) against a fresh registry each run (\`--workers ${o.workers}\`), set up with the CLI (auth and sync plugins enabled, one account); on PostgreSQL the plugins' tables are in the registry's database (a new one each run). Median of ${o.runs} interleaved runs after a warm-up. 429/503 answers waited out and retried, over all runs: ${retries}.`,
    '',
    '#### Push, mutations/s',
    '',
    configTable(push, 'mutations/s', int),
    '',
    '#### Pull, changes/s',
    '',
    configTable(pull, 'changes/s', int),
    '',
    '#### CPU (user + system) per request, median over the runs: the registry\'s processes and the PostgreSQL cluster\'s',
    '',
    cpuTable(cpuRuns('push'), `push of ${side.batch}`),
    '',
    cpuTable(cpuRuns('pull'), `page of ${side.page}`),
  ].join('\n');
  return { name: 'sync', markdown, verdicts: [], data: { push: Object.fromEntries(push), pull: Object.fromEntries(pull), runs: Object.fromEntries(runs) } };
}
