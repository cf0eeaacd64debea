/**
 * iqp benchmarks, run by hand: `npm run bench` (builds, then node dist/bench/run.js).
 *
 *   node dist/bench/run.js [--only startup,build,load,verify,levels,auth,sync,simulate] [--runs N] [--level N]
 *                          [--levels 1,3,6,9,12,15,19] [--quick] [--big]
 *
 * Corpora are generated once into bench/.work/data (deterministic; delete the folder to redo).
 * --big adds a 2 GiB pack to the verify memory check (4 GiB more disk, a few minutes more).
 * sync installs pouchdb-server (its peer) into ~/.cache/iqp-bench once, and fills a store of a
 * million mutations (a few minutes; node dist/bench/sync.js has flags to size it).
 * Every benchmark measures its baseline in the same run and prints the ratio, the target and
 * PASS/FAIL; the whole report is written to bench/.work/results/<date>.md and .json.
 * Never run these from the test suite: they take minutes and depend on the machine.
 */
// First: the server's threadpool size, as bin/iqp.js sets it.
import '../src/threadpool.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchAuth } from './auth.js';
import { benchBuild } from './build.js';
import { benchLevels } from './levels.js';
import { benchLoad } from './load.js';
import { benchSimulate } from './simulate.js';
import { benchStartup } from './startup.js';
import { benchSync } from './sync.js';
import { benchVerify } from './verify.js';
import { type BenchContext, type BenchResult, createContext } from './lib/context.js';
import { noCorpora, prepareCorpora } from './lib/corpora.js';
import { snapshotBuild } from './lib/snapshot.js';
import { passFail, table } from './lib/format.js';
import { describeMachine, machineMarkdown } from './lib/machine.js';
import { haveGnuTime } from './lib/proc.js';
import { ZSTD_DEFAULT_LEVEL } from '../src/pack/format.js';

const BENCHES: Record<string, (ctx: BenchContext) => Promise<BenchResult>> = {
  startup: benchStartup,
  build: benchBuild,
  load: benchLoad,
  verify: benchVerify,
  levels: benchLevels,
  auth: benchAuth,
  sync: benchSync,
  simulate: benchSimulate,
};

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    runs: { type: 'string' },
    level: { type: 'string' },
    levels: { type: 'string' },
    quick: { type: 'boolean', default: false },
    big: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: node dist/bench/run.js [--only startup,build,load,verify,levels,auth,sync,simulate] [--runs N] [--level N] [--levels 1,3,…] [--quick] [--big]\n',
  );
  process.exit(0);
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const work = join(root, 'bench', '.work');
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
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
  quick,
  level: Number(values.level ?? ZSTD_DEFAULT_LEVEL),
  levels: (values.levels ?? '1,3,6,9,12,15,19').split(',').map(Number),
  big: values.big ?? false,
};

if (!haveGnuTime()) log('/usr/bin/time not found: peak RSS will not be measured (apt-get install time).');
const machine = describeMachine(root);
log(`${machine.cpu}, ${machine.cores} cores, load average ${machine.loadAverage}`);
const started = Date.now();
// The auth, sync and simulator benchmarks read no pack sources: a run of only those does not generate them.
const SOURCELESS = new Set(['auth', 'sync', 'simulate']);
const corpora = only.every((name) => SOURCELESS.has(name)) ? noCorpora(work) : await prepareCorpora(work, log, { big: options.big });
const cliRoot = snapshotBuild(root, work);
const ctx = createContext(root, cliRoot, corpora, options, log);

const results: BenchResult[] = [];
for (const name of only) {
  const result = await BENCHES[name]!(ctx);
  results.push(result);
  process.stdout.write(`\n${result.markdown}\n`);
}

const verdicts = results.flatMap((r) => r.verdicts);
const summary = table(
  ['target', 'measured', 'goal', 'result'],
  verdicts.map((v) => [v.target, v.measured, v.goal, passFail(v.pass)]),
);
const minutes = ((Date.now() - started) / 60000).toFixed(1);
const report = [
  `## Benchmark run ${machine.date}`,
  '',
  machineMarkdown(machine),
  `- Options: runs ${options.runs}, level ${options.level}, levels ${options.levels.join(',')}${quick ? ', quick' : ''}${options.big ? ', big' : ''}; took ${minutes} min; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  '',
  '### Summary',
  '',
  summary,
  '',
  ...results.map((r) => `${r.markdown}\n`),
].join('\n');
process.stdout.write(`\n### Summary\n\n${summary}\n\n(${minutes} min)\n`);

const resultsDir = join(work, 'results');
mkdirSync(resultsDir, { recursive: true });
const stamp = machine.date.replaceAll(':', '');
writeFileSync(join(resultsDir, `${stamp}.md`), report);
writeFileSync(join(resultsDir, `${stamp}.json`), `${JSON.stringify({ machine, options, results: results.map((r) => ({ name: r.name, verdicts: r.verdicts, data: r.data })) }, null, 2)}\n`);
log(`report written to ${join(resultsDir, `${stamp}.md`)}`);
process.exitCode = verdicts.every((v) => v.pass) ? 0 : 1;
