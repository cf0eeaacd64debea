/**
 * The registry on each storage configuration, in one run, run by hand after a build:
 *
 *   npm run build && node dist/bench/registry/storage.js [--only publish,latest,sync,download]
 *       [--runs N] [--seconds S] [--connections C] [--wrk-threads T] [--publish-concurrency N]
 *       [--download-clients N] [--download-mib M] [--sync-push N] [--sync-seconds S] [--workers N]
 *       [--quick] [--max-load L] [--max-wait MIN] [--no-wait]
 *
 * It starts a throwaway PostgreSQL cluster (scripts/pg-test-cluster.sh; PostgreSQL's server
 * binaries must be installed) and s3rver (a child process), and runs the real `iqp server start`
 * from a frozen copy of the build (127.0.0.1, a free port, `--workers 1` unless told) on
 * SQLite + fs, PostgreSQL + fs, and PostgreSQL + S3 in proxy and redirect modes, each as a
 * measurement needs them: publish (packs/s), `latest` (req/s), sync push and pull (mutations/s,
 * changes/s) and whole-pack downloads (MB/s). Runs of the configurations are interleaved; each
 * figure is a median with its spread and its ratio to SQLite + fs in the same run. Answers are
 * checked as they are measured, so a broken configuration fails rather than looking fast.
 *
 * Before each measurement it waits for a quiet machine as the registry benchmark does (1-minute
 * load < --max-load, default 0.5, no other bench/vitest process; at most --max-wait minutes,
 * default 60), and between runs for idle CPUs. The cluster is stopped and removed at the end, on
 * failure and on SIGINT/SIGTERM. The report goes to bench/.work/storage/results/<date>.md and .json,
 * and to stdout; a measurement that fails is reported with its error, the others still run, and the
 * exit code is 1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startS3rver } from '../../scripts/s3rver.js';
import { describeMachine, machineMarkdown } from '../lib/machine.js';
import { snapshotBuild } from '../lib/snapshot.js';
import { type Backends, s3rverVersion, STORAGE_LABELS, type StorageKind, startPgCluster } from './backends.js';
import { wrkVersion } from './clients.js';
import { quietOptionsFrom, RUN_FLAGS } from './measure.js';
import { loadString, settle, waitForQuiet } from './quiet.js';
import { benchDownload } from './storage-download.js';
import { prepareStorageCorpus, startStanding } from './storage-setup.js';
import { benchLatest, benchPublish, benchSyncStorage, type StorageEnv, type StorageOptions } from './storage-targets.js';
import type { Section } from './targets.js';

const BENCHES: Record<string, { run: (env: StorageEnv) => Promise<Section>; standing: readonly StorageKind[] }> = {
  publish: { run: benchPublish, standing: [] },
  latest: { run: benchLatest, standing: ['sqlite-fs', 'pg-fs'] },
  sync: { run: benchSyncStorage, standing: [] },
  download: { run: benchDownload, standing: ['sqlite-fs', 'pg-s3-proxy', 'pg-s3-redirect'] },
};

const USAGE =
  'usage: node dist/bench/registry/storage.js [--only publish,latest,sync,download] [--runs N] [--seconds S] [--connections C] [--wrk-threads T]\n' +
  '         [--publish-concurrency N] [--download-clients N] [--download-mib M] [--sync-push N] [--sync-seconds S] [--workers N]\n' +
  '         [--quick] [--max-load L] [--max-wait MIN] [--no-wait]\n';

const { values } = parseArgs({
  options: {
    ...RUN_FLAGS,
    'publish-concurrency': { type: 'string', default: '4' },
    'download-clients': { type: 'string', default: '8' },
    'download-mib': { type: 'string', default: '8' },
    'sync-push': { type: 'string' },
    'sync-seconds': { type: 'string' },
    workers: { type: 'string', default: '1' },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const positive = (v: string | undefined, name: string, fallback: number): number => {
  const n = Number((v ?? String(fallback)).replaceAll('_', ''));
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`--${name} takes a positive number (got ${JSON.stringify(v)})\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
const only = (values.only ?? Object.keys(BENCHES).join(',')).split(',').map((s) => s.trim());
for (const name of only) {
  if (!(name in BENCHES)) {
    process.stderr.write(`unknown benchmark "${name}" (known: ${Object.keys(BENCHES).join(', ')})\n`);
    process.exit(2);
  }
}
const quick = values.quick ?? false;
positive(values['max-load'], 'max-load', 0.5);
positive(values['max-wait'], 'max-wait', 60);
const quietOptions = quietOptionsFrom(values);
const options: StorageOptions = {
  runs: positive(values.runs, 'runs', quick ? 3 : 5),
  seconds: positive(values.seconds, 'seconds', quick ? 3 : 8),
  connections: positive(values.connections, 'connections', 32),
  wrkThreads: positive(values['wrk-threads'], 'wrk-threads', 2),
  publishConcurrency: positive(values['publish-concurrency'], 'publish-concurrency', 4),
  downloadClients: positive(values['download-clients'], 'download-clients', 8),
  syncPush: positive(values['sync-push'], 'sync-push', quick ? 4_000 : 20_000),
  syncSeconds: positive(values['sync-seconds'], 'sync-seconds', quick ? 2 : 6),
  workers: positive(values.workers, 'workers', 1),
  quick,
  settle: quietOptions.enabled,
};
const downloadMiB = positive(values['download-mib'], 'download-mib', 8);

const root = fileURLToPath(new URL('../../..', import.meta.url));
const work = join(root, 'bench', '.work', 'storage');
mkdirSync(work, { recursive: true });
const log = (m: string) => process.stderr.write(`[bench:storage] ${m}\n`);
const machine = describeMachine(root);
log(`${machine.cpu}, ${machine.cores} cores, load average ${machine.loadAverage}`);
const started = Date.now();
const cliRoot = snapshotBuild(root, work);
const corpus = await prepareStorageCorpus(join(root, 'bench', '.work', 'registry'), cliRoot, downloadMiB, log);

const stops: (() => Promise<void> | void)[] = [];
let stopping: Promise<void> | null = null;
const stopAll = () =>
  (stopping ??= (async () => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log(`stopping: ${(err as Error).message}`);
      }
    }
  })());
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopAll().then(() => process.exit(130)));

try {
  log('starting a throwaway PostgreSQL cluster and s3rver…');
  const pg = await startPgCluster(root);
  stops.push(() => pg.stop());
  // Whatever ends this process, the cluster (a daemon of its own, not a child) goes with it.
  process.once('exit', () => pg.stop());
  const s3 = await startS3rver();
  stops.push(() => s3.stop());
  const backends: Backends = { pg, s3 };
  const kinds = [...new Set(only.flatMap((name) => BENCHES[name]!.standing))];
  log(kinds.length > 0 ? `starting the registries the read measurements use (${kinds.map((k) => STORAGE_LABELS[k]).join(', ')})…` : 'no standing registries needed');
  const standing = await startStanding(cliRoot, work, backends, corpus, kinds, options.workers, (stop) => stops.push(stop));
  const env: StorageEnv = {
    cliRoot,
    work,
    backends,
    corpus,
    options,
    standing,
    quiet: (label) => waitForQuiet(label, quietOptions, log),
    settle: () => settle(quietOptions, log),
    log,
  };
  const sections: Section[] = [];
  const failed: string[] = [];
  for (const name of only) {
    let section: Section;
    try {
      section = await BENCHES[name]!.run(env);
    } catch (err) {
      // One measurement failing (a wrong answer, an error from the registry) is reported with what
      // it said; the others still run, and the exit code says it failed.
      failed.push(name);
      const text = (err as Error).message ?? String(err);
      section = { name, markdown: `### ${name}: FAILED, no figures\n\n\`\`\`\n${text}\n\`\`\``, verdicts: [], data: { error: text } };
    }
    sections.push(section);
    process.stderr.write(`\n${section.markdown}\n\n`);
  }
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const report = [
    `## Storage benchmark run ${machine.date}`,
    '',
    machineMarkdown(machine),
    `- ${pg.version} (throwaway cluster: fsync, synchronous_commit and full_page_writes off; one database per registry); s3rver ${s3rverVersion(root)} (a Node.js child process, files on local disk); ${wrkVersion()}`,
    `- Registries: \`iqp server start --workers ${options.workers}\` from a frozen copy of the build, on 127.0.0.1, each on its own data directory; PostgreSQL through \`database_url\`, S3 through \`blob_store = s3\` (path-style, s3rver's credentials in the AWS SDK's environment variables)`,
    ...(failed.length > 0 ? [`- **FAILED: ${failed.join(', ')}** (the error is in its section; its figures are missing)`] : []),
    `- Options: ${only.join(', ')}; runs ${options.runs}, ${options.seconds} s per wrk/download run, wrk ${options.connections} connections on ${options.wrkThreads} thread(s), publish ${options.publishConcurrency} at a time, ${options.downloadClients} download clients, sync push ${options.syncPush} and pull ${options.syncSeconds} s${quick ? ', quick' : ''}${quietOptions.enabled ? `, waiting for load < ${quietOptions.maxLoad}` : ', --no-wait (measured at once, whatever the load)'}; took ${minutes} min; load average at the end: ${loadString()}`,
    '- The clients (curl, wrk, undici) run on the same cores as the registries, PostgreSQL and s3rver: on a small machine every figure includes their CPU. Ratios are within this run; compare absolute figures across runs only on the same machine and load.',
    '',
    ...sections.map((s) => `${s.markdown}\n`),
  ].join('\n');
  const resultsDir = join(work, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = machine.date.replaceAll(':', '');
  writeFileSync(join(resultsDir, `${stamp}.md`), report);
  writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify({ machine, postgres: pg.version, s3rver: s3rverVersion(root), options, only, sections: sections.map((s) => ({ name: s.name, data: s.data })) }, null, 2)}\n`);
  process.stdout.write(`${report}\n`);
  log(`report written to ${join(resultsDir, `${stamp}.md`)} (${minutes} min)${failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''}`);
  if (failed.length > 0) process.exitCode = 1;
} finally {
  await stopAll();
}
