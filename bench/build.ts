/**
 * Target 1: `iqp build --content X` against the shell pipeline that makes the same archive:
 * sha256sum for checksums.sha256, ustar tar of the four entries, zstd at the same level, and an
 * fsync of the result (iqp's atomic write fsyncs; without it the comparison would favour the shell).
 *
 * The zstd CLI compresses on one worker thread by default (-T1) while its main thread reads and
 * writes, and tar runs as its own process; iqp compresses on one worker thread per core (up to 4,
 * libzstd's multithreaded mode, whose output does not depend on the count) and runs integrity_check
 * alongside. The pipeline is also measured with `zstd --single-thread`, for reference.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ContentCorpus } from './lib/corpora.js';
import { type BenchContext, type BenchResult, SOURCE_DATE_EPOCH, type Verdict } from './lib/context.js';
import { mbPerSec, mib, passFail, pct, ratio, secs, table, withSpread } from './lib/format.js';
import { compare, run, type Samples, sh } from './lib/proc.js';

export const BUILD_TARGET = 1.1;

function cpuOf(s: Samples | null): string {
  return s ? secs(s.median) : '—';
}

const ENTRIES = ['manifest.json', 'content.sqlite', 'checksums.sha256', 'manifest.json.minisig'];

function extract(pack: string, dir: string): void {
  mkdirSync(dir, { recursive: true });
  run({ shell: `zstd -dcq ${sh(pack)} | tar -x -C ${sh(dir)}` });
}

function sameBytes(a: string, b: string): boolean {
  return spawnSync('cmp', ['-s', a, b]).status === 0;
}

/** Both archives hold the same four entries with the same bytes (tar header formatting differs). */
function sameEntries(a: string, b: string, dir: string): string {
  const da = join(dir, 'cmp-iqp');
  const db = join(dir, 'cmp-shell');
  try {
    extract(a, da);
    extract(b, db);
    const names = readdirSync(da).sort();
    if (names.join() !== [...ENTRIES].sort().join() || readdirSync(db).sort().join() !== names.join()) return `no (entries ${names.join(', ')})`;
    const differing = ENTRIES.filter((e) => !sameBytes(join(da, e), join(db, e)));
    const order = execFileSync('bash', ['-c', `zstd -dcq ${sh(b)} | tar -t`], { encoding: 'utf8' }).trim().split('\n');
    if (order.join() !== ENTRIES.join()) return `no (shell order ${order.join(', ')})`;
    return differing.length === 0 ? 'yes' : `no (${differing.join(', ')} differ)`;
  } finally {
    rmSync(da, { recursive: true, force: true });
    rmSync(db, { recursive: true, force: true });
  }
}

interface PhaseProbe {
  integrity: number;
  describe: number;
  hash: number;
  compressAndHash: number;
}

function probePhases(ctx: BenchContext, corpus: ContentCorpus): PhaseProbe {
  const r = run(ctx.probe(['build-phases', corpus.db, String(ctx.options.level)]));
  return JSON.parse(r.stdout) as PhaseProbe;
}

async function one(ctx: BenchContext, corpus: ContentCorpus) {
  const level = String(ctx.options.level);
  const dir = ctx.scratch(`build-${corpus.label}`);
  const out = join(dir, 'iqp.iqp');
  const shellOut = join(dir, 'shell.iqp');
  const iqpCmd = ctx.iqp(['build', corpus.dir, '--content', corpus.db, '--key', ctx.corpora.key, '--out', out, '--level', level, '--json']);

  // The shell gets what only iqp can make (the manifest and its signature) from a first build.
  run(iqpCmd);
  const stage = join(dir, 'stage');
  mkdirSync(stage);
  run({ shell: `zstd -dcq ${sh(out)} | tar -x -C ${sh(stage)} manifest.json manifest.json.minisig` });
  try {
    linkSync(corpus.db, join(stage, 'content.sqlite'));
  } catch {
    copyFileSync(corpus.db, join(stage, 'content.sqlite'));
  }
  const tar = `tar --format=ustar --owner=0 --group=0 --numeric-owner --mode=0644 --mtime=@${SOURCE_DATE_EPOCH} -cf - ${ENTRIES.join(' ')}`;
  const pipeline = (flags: string) =>
    `cd ${sh(stage)} && sha256sum manifest.json content.sqlite > checksums.sha256 && ${tar} | zstd -${level}${flags} -q -f -o ${sh(shellOut)} && sync ${sh(shellOut)}`;

  ctx.log(`build ${corpus.label}: ${mib(corpus.bytes)} MiB content, level ${level}, ${ctx.options.runs} runs of each variant…`);
  const res = compare(
    {
      iqp: () => run(iqpCmd),
      shell: () => run({ shell: pipeline('') }),
      shellSingle: () => run({ shell: pipeline(' --single-thread') }),
    },
    ctx.options.runs,
    {
      between: () => {
        rmSync(out, { force: true });
        rmSync(shellOut, { force: true });
      },
    },
  );
  run(iqpCmd);
  run({ shell: pipeline('') });
  const same = sameEntries(out, shellOut, dir);
  const iqpSize = statSync(out).size;
  const shellSize = statSync(shellOut).size;
  const phases = probePhases(ctx, corpus);
  rmSync(dir, { recursive: true, force: true });
  return { corpus, res, same, iqpSize, shellSize, phases };
}

export async function benchBuild(ctx: BenchContext): Promise<BenchResult> {
  const results = [];
  for (const corpus of [ctx.corpora.content.synthetic, ctx.corpora.content.quran]) results.push(await one(ctx, corpus));
  const verdicts: Verdict[] = [];
  const rows = results.map(({ corpus, res, same, iqpSize, shellSize }) => {
    const r = res.iqp.time.median / res.shell.time.median;
    const r1 = res.iqp.time.median / res.shellSingle.time.median;
    const rMin = res.iqp.time.min / res.shell.time.min;
    verdicts.push({
      target: `1. build --content, ${corpus.label} (${mib(corpus.bytes)} MiB)`,
      measured: `${secs(res.iqp.time.median)} s vs ${secs(res.shell.time.median)} s: ratio ${ratio(r)} (fastest runs ${ratio(rMin)}; ${ratio(r1)} vs --single-thread)`,
      goal: `≤ ${BUILD_TARGET}`,
      pass: r <= BUILD_TARGET,
    });
    return [
      `${corpus.label} (${mib(corpus.bytes)} MiB)`,
      withSpread(res.iqp.time),
      withSpread(res.shell.time),
      withSpread(res.shellSingle.time),
      ratio(r),
      ratio(rMin),
      ratio(r1),
      `${cpuOf(res.iqp.cpu)} / ${cpuOf(res.shell.cpu)} / ${cpuOf(res.shellSingle.cpu)}`,
      `${mbPerSec(corpus.bytes, res.iqp.time.median)} MB/s`,
      `${mib(iqpSize)} / ${mib(shellSize)}`,
      same,
      `≤ ${BUILD_TARGET}: ${passFail(r <= BUILD_TARGET)}`,
    ];
  });
  const phaseRows = results.map(({ corpus, phases }) => {
    const total = phases.integrity + phases.describe + phases.hash + phases.compressAndHash;
    return [
      corpus.label,
      `${secs(phases.integrity)} s (${pct(phases.integrity / total)})`,
      `${secs(phases.describe)} s`,
      `${secs(phases.hash)} s (${pct(phases.hash / total)})`,
      `${secs(phases.compressAndHash)} s (${pct(phases.compressAndHash / total)})`,
    ];
  });
  const markdown = [
    `### 1. \`iqp build --content\` vs \`sha256sum + tar | zstd -${ctx.options.level}\``,
    '',
    table(['content', 'iqp build', 'shell (zstd -T1 default)', 'shell (zstd --single-thread)', 'ratio', 'ratio of fastest', 'ratio vs single', 'CPU s iqp / shell / single', 'iqp rate', 'pack MiB iqp / shell', 'same entries', 'target'], rows),
    '',
    'The steps of iqp build after start-up, each run alone in-process with the same library calls (shares of their sum); in the build itself integrity_check runs alongside the other two:',
    '',
    table(['content', 'integrity_check', 'tables + row counts', 'sha256 pass', 'compress + 2nd sha256'], phaseRows),
    '',
    `Medians of ${ctx.options.runs} interleaved runs after a warm-up; ± is half the range (max - min) / median. Page cache warm. CPU is user + system time of all processes (GNU time), a check on the wall times when the machine is busy.`,
  ].join('\n');
  return {
    name: 'build',
    markdown,
    verdicts,
    data: results.map(({ corpus, res, same, iqpSize, shellSize, phases }) => ({
      corpus: corpus.label,
      contentBytes: corpus.bytes,
      iqp: res.iqp.time,
      shell: res.shell.time,
      shellSingle: res.shellSingle.time,
      iqpRssKiB: res.iqp.rss,
      same,
      iqpSize,
      shellSize,
      phases,
    })),
  };
}
