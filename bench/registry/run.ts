/**
 * The registry server's benchmarks, run by hand after a build:
 *
 *   npm run build && node dist/bench/registry/run.js [--only download,levers,ranges,json,upload]
 *       [--runs N] [--seconds S] [--connections C] [--wrk-threads T] [--nginx-workers auto,1]
 *       [--workers N] [--compare LABEL=DIR]… [--quick] [--max-load L] [--max-wait MIN] [--no-wait] [--serve]
 *
 * The baseline is nginx serving the same files on this machine in the same run (an unprivileged
 * foreground process with a generated config in bench/.work/registry/nginx: sendfile on, the
 * pack's blob file hard-linked, the registry's JSON bodies as static files). The server under test
 * is `node bin/iqp.js server start --data DIR --port 0` from a frozen copy of the build, over a
 * data directory where the corpus was published through the API, with `--workers 1`, and (unless
 * --workers 0) the same build with `--workers N` (default 2) on a copy of that directory. With
 * --compare LABEL=DIR (a built copy of the project, e.g. the last commit's server code;
 * repeatable), that build is measured too, on another copy, for before/after comparisons.
 *
 * Before each measurement it waits for a quiet machine (1-minute load < --max-load, default 0.5,
 * and no other bench/vitest process; at most --max-wait minutes, default 60, then it measures and
 * says so), and between runs for idle CPUs; the load is reported with the figures. The report goes to bench/.work/registry/results/<date>.md and .json; the exit code
 * is 1 when a target fails. --serve publishes, starts both servers, prints their URLs and waits
 * (for profiling by hand).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Verdict } from '../lib/context.js';
import { passFail, table } from '../lib/format.js';
import { describeMachine, machineMarkdown } from '../lib/machine.js';
import { snapshotBuild } from '../lib/snapshot.js';
import { curlVersion, wrkVersion } from './clients.js';
import { prepareRegistryCorpus } from './prepare.js';
import { freshRegistry, publishAll } from './publish.js';
import { quietOptionsFrom, RUN_FLAGS } from './measure.js';
import { loadString, settle, waitForQuiet } from './quiet.js';
import { type Child, cloneDataDir, nginxVersion, startIqp, startNginx } from './servers.js';
import { benchDownload, benchDownloadLevers, benchJson, benchRanges, benchUpload, type Env, type IqpUnderTest, type Section } from './targets.js';

const BENCHES: Record<string, (env: Env) => Promise<Section>> = {
  download: benchDownload,
  levers: benchDownloadLevers,
  ranges: benchRanges,
  json: benchJson,
  upload: benchUpload,
};

const { values } = parseArgs({
  options: {
    ...RUN_FLAGS,
    'nginx-workers': { type: 'string', default: 'auto,1' },
    workers: { type: 'string', default: '2' },
    compare: { type: 'string', multiple: true },
    serve: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: node dist/bench/registry/run.js [--only download,levers,ranges,json,upload] [--runs N] [--seconds S] [--connections C]\n' +
      '         [--wrk-threads T] [--nginx-workers auto,1] [--workers N] [--compare LABEL=DIR]… [--quick] [--max-load L] [--max-wait MIN] [--no-wait] [--serve]\n',
  );
  process.exit(0);
}

const root = fileURLToPath(new URL('../../..', import.meta.url));
const work = join(root, 'bench', '.work', 'registry');
mkdirSync(work, { recursive: true });
const log = (m: string) => process.stderr.write(`[bench:registry] ${m}\n`);
const quick = values.quick ?? false;
const only = (values.only ?? Object.keys(BENCHES).join(',')).split(',').map((s) => s.trim());
for (const name of only) {
  if (!(name in BENCHES)) {
    process.stderr.write(`unknown benchmark "${name}" (known: ${Object.keys(BENCHES).join(', ')})\n`);
    process.exit(2);
  }
}
const options = {
  runs: Number(values.runs ?? (quick ? 3 : 5)),
  seconds: Number(values.seconds ?? (quick ? 4 : 10)),
  connections: Number(values.connections),
  wrkThreads: Number(values['wrk-threads']),
  quick,
};
const nginxWorkers = values['nginx-workers']!.split(',').map((w) => (w.trim() === 'auto' ? ('auto' as const) : Number(w)));
const clusterWorkers = Number(values.workers);
const quietOptions = quietOptionsFrom(values);

const machine = describeMachine(root);
const tools = { nginx: nginxVersion(), wrk: wrkVersion(), curl: curlVersion() };
log(`${machine.cpu}, ${machine.cores} cores, load average ${machine.loadAverage}`);
const started = Date.now();
const cliRoot = snapshotBuild(root, work);
const corpus = await prepareRegistryCorpus(work, cliRoot, log);

log('publishing the corpus to a fresh registry…');
const reg = await freshRegistry(cliRoot, join(work, 'registry-data'), corpus);
const stops: (() => Promise<void>)[] = [() => reg.server.stop()];
const stopAll = async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
};
process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
try {
  const published = await publishAll(reg, corpus);
  const paths = {
    download: `/v1/packs/${corpus.big.package_id}/download?version=${corpus.big.version}`,
    available: '/v1/packs/available',
    manifest: `/v1/packs/${corpus.big.package_id}/${corpus.big.version}/manifest`,
  };
  const nginxPaths = { download: '/pack.iqp', available: '/available.json', manifest: '/manifest.json' };
  // Every registry under test serves a copy of what was published, made the same way, so none is
  // measured with the publishing run's write-ahead log behind it and the others without.
  const measuredCopy = join(work, 'registry-data-measured');
  await cloneDataDir(reg.dataDir, measuredCopy);
  const measured = await startIqp(cliRoot, measuredCopy, 1);
  stops.push(() => measured.stop());
  // nginx serves the measured registry's answers byte for byte (their links hold its address).
  const body = async (path: string) => Buffer.from(await (await fetch(measured.url + path)).arrayBuffer());
  const files = { 'pack.iqp': { link: published.blobPath }, 'available.json': { bytes: await body(paths.available) }, 'manifest.json': { bytes: await body(paths.manifest) } };
  const nginx: { label: string; child: Child }[] = [];
  for (const w of nginxWorkers) {
    const child = await startNginx(join(work, `nginx-${w}`), files, w);
    stops.push(() => child.stop());
    nginx.push({ label: `nginx (worker_processes ${w})`, child });
  }
  const iqp: IqpUnderTest[] = [{ label: 'iqp (1 process)', child: measured }];
  const builds = [{ label: 'iqp (1 process)', cliRoot }];
  for (const spec of values.compare ?? []) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new Error(`--compare takes LABEL=DIR, not ${spec}`);
    const label = `iqp ${spec.slice(0, eq)} (1 process)`;
    const buildRoot = resolve(spec.slice(eq + 1));
    const copy = join(work, `registry-data-${iqp.length}`);
    await cloneDataDir(reg.dataDir, copy);
    const child = await startIqp(buildRoot, copy, 1);
    stops.push(() => child.stop());
    iqp.push({ label, child, comparison: true });
    builds.push({ label, cliRoot: buildRoot });
  }
  if (clusterWorkers > 1) {
    const copy = join(work, 'registry-data-workers');
    await cloneDataDir(reg.dataDir, copy);
    const cluster = await startIqp(cliRoot, copy, clusterWorkers);
    stops.push(() => cluster.stop());
    iqp.push({ label: `iqp (${clusterWorkers} workers)`, child: cluster });
  }

  if (values.serve) {
    process.stdout.write(`${JSON.stringify({ iqp: iqp.map((s) => ({ label: s.label, url: s.child.url, pids: s.child.servingPids() })), nginx: nginx.map((n) => ({ label: n.label, url: n.child.url, pids: n.child.servingPids() })), nginxPaths, paths, token: reg.token, blob: published.blobPath, size: corpus.big.size }, null, 2)}\n`);
    await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  } else {
    const env: Env = {
      cliRoot,
      builds,
      work,
      corpus,
      options,
      iqp,
      nginx,
      blobPath: published.blobPath,
      paths,
      nginxPaths,
      quiet: (label) => waitForQuiet(label, quietOptions, log),
      settle: () => settle(quietOptions, log),
      log,
    };
    const sections: Section[] = [];
    for (const name of only) {
      const section = await BENCHES[name]!(env);
      sections.push(section);
      process.stdout.write(`\n${section.markdown}\n`);
    }
    const verdicts: Verdict[] = sections.flatMap((s) => s.verdicts);
    const summary = table(
      ['target', 'measured', 'goal', 'result'],
      verdicts.map((v) => [v.target, v.measured, v.goal, passFail(v.pass)]),
    );
    const minutes = ((Date.now() - started) / 60000).toFixed(1);
    const report = [
      `## Registry benchmark run ${machine.date}`,
      '',
      machineMarkdown(machine),
      `- ${tools.nginx} (Debian nginx-light; worker_processes ${nginxWorkers.join(' and ')}, the first is the baseline of the verdicts; sendfile on, access_log off); ${tools.wrk}; ${tools.curl}`,
      `- Options: runs ${options.runs}, wrk ${options.seconds} s × ${options.connections} connections on ${options.wrkThreads} thread(s)${clusterWorkers > 1 ? `, and --workers ${clusterWorkers}` : ''}${quick ? ', quick' : ''}; load when the report was written: ${loadString()}; took ${minutes} min`,
      '',
      '### Summary',
      '',
      summary,
      '',
      ...sections.map((s) => `${s.markdown}\n`),
    ].join('\n');
    process.stdout.write(`\n### Summary\n\n${summary}\n\n(${minutes} min)\n`);
    const resultsDir = join(work, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const stamp = machine.date.replaceAll(':', '');
    writeFileSync(join(resultsDir, `${stamp}.md`), report);
    writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify({ machine, tools, options, nginxWorkers, clusterWorkers, sections: sections.map((s) => ({ name: s.name, verdicts: s.verdicts, data: s.data })) }, null, 2)}\n`);
    log(`report written to ${join(resultsDir, `${stamp}.md`)}`);
    process.exitCode = verdicts.every((v) => v.pass) ? 0 : 1;
  }
} finally {
  await stopAll();
  rmSync(join(work, 'upload-data'), { recursive: true, force: true });
  rmSync(join(work, 'scratch'), { recursive: true, force: true });
}
