/**
 * Target 3: `iqp verify` against `zstd -dc X | tar -x -C dir && sha256sum -c checksums.sha256`
 * (plus removing dir, as iqp removes its temporary copy), and iqp verify's peak RSS, which must
 * stay under 64 MiB and must not grow with the pack.
 *
 * The shell does less than iqp: no signature, no manifest schema, no strict tar rules and no
 * PRAGMA integrity_check. The integrity check's share of iqp's time is measured separately.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchContext, type BenchResult, type Verdict } from './lib/context.js';
import { mib, passFail, pct, ratio, secs, table, withSpread } from './lib/format.js';
import { compare, memoryPeak, run, type RunResult, sh } from './lib/proc.js';

export const VERIFY_TARGET = 1.1;
export const RSS_TARGET_KIB = 64 * 1024;

interface Pack {
  readonly label: string;
  readonly path: string;
  readonly contentBytes: number;
  /** Compare times with the shell for this pack (memory is measured for all). */
  readonly timed: boolean;
}

interface VerifyPhases {
  readAndSpill: number;
  signature: number;
  describe: number;
  integrity: number;
  cleanup: number;
}

function buildPack(ctx: BenchContext, dir: string, corpus: 'synthetic' | 'quran' | 'assets' | 'big', level: number): string {
  const c = ctx.corpora.content[corpus]!;
  const out = join(dir, `${corpus}-l${level}.iqp`);
  if (!existsSync(out)) {
    ctx.log(`verify: building ${corpus} at level ${level}…`);
    run(ctx.iqp(['build', c.dir, '--content', c.db, '--key', ctx.corpora.key, '--out', out, '--level', String(level)]));
  }
  return out;
}

export async function benchVerify(ctx: BenchContext): Promise<BenchResult> {
  const dir = ctx.scratch('verify');
  const level = ctx.options.level;
  const { synthetic, quran, assets, big } = ctx.corpora.content;
  const small: Pack = { label: `quran, level ${level}`, path: buildPack(ctx, dir, 'quran', level), contentBytes: quran.bytes, timed: true };
  const middle: Pack = { label: `synthetic assets, level ${level}`, path: buildPack(ctx, dir, 'assets', level), contentBytes: assets.bytes, timed: false };
  const large: Pack = { label: `synthetic, level ${level}`, path: buildPack(ctx, dir, 'synthetic', level), contentBytes: synthetic.bytes, timed: true };
  const packs: Pack[] = [
    small,
    { label: 'quran, level 19', path: buildPack(ctx, dir, 'quran', 19), contentBytes: quran.bytes, timed: false },
    middle,
    large,
    ...(big ? [{ label: 'big blobs, level 1', path: buildPack(ctx, dir, 'big', 1), contentBytes: big.bytes, timed: false }] : []),
  ];
  const extractDir = join(dir, 'extract');
  const verdicts: Verdict[] = [];
  const timeRows: string[][] = [];
  const rssRows: string[][] = [];
  const data: unknown[] = [];
  const rssByPack = new Map<string, number>();
  for (const pack of packs) {
    const iqp = () => run(ctx.iqp(['verify', pack.path, '--pubkey', ctx.corpora.pub, '--json']));
    const shell = () =>
      run({ shell: `rm -rf ${sh(extractDir)} && mkdir ${sh(extractDir)} && zstd -dcq ${sh(pack.path)} | tar -x -C ${sh(extractDir)} && (cd ${sh(extractDir)} && sha256sum -c --quiet checksums.sha256) && rm -rf ${sh(extractDir)}` });
    ctx.log(`verify ${pack.label}: ${ctx.options.runs} runs…`);
    const variants: Record<string, () => RunResult> = pack.timed ? { iqp, shell } : { iqp };
    const res = compare(variants, ctx.options.runs);
    const iqpRes = res['iqp']!;
    const shellRes = res['shell'];
    const size = statSync(pack.path).size;
    const rss = iqpRes.rss;
    if (rss) rssByPack.set(pack.label, rss.max);
    if (shellRes) {
      const r = iqpRes.time.median / shellRes.time.median;
      const rMin = iqpRes.time.min / shellRes.time.min;
      verdicts.push({
        target: `3. verify time, ${pack.label} (${mib(size)} MiB pack)`,
        measured: `${secs(iqpRes.time.median)} s vs ${secs(shellRes.time.median)} s: ratio ${ratio(r)} (fastest runs ${ratio(rMin)})`,
        goal: `≤ ${VERIFY_TARGET}`,
        pass: r <= VERIFY_TARGET,
      });
      timeRows.push([
        `${pack.label} (${mib(size)} MiB → ${mib(pack.contentBytes)} MiB)`,
        withSpread(iqpRes.time),
        withSpread(shellRes.time),
        ratio(r),
        ratio(rMin),
        `${iqpRes.cpu ? secs(iqpRes.cpu.median) : '—'} / ${shellRes.cpu ? secs(shellRes.cpu.median) : '—'}`,
        `≤ ${VERIFY_TARGET}: ${passFail(r <= VERIFY_TARGET)}`,
      ]);
    }
    const split = await memoryPeak(ctx.iqp(['verify', pack.path, '--pubkey', ctx.corpora.pub]));
    if (rss) {
      verdicts.push({
        target: `3. verify peak RSS, ${pack.label}`,
        measured: `${mib(rss.max * 1024)} MiB (median ${mib(rss.median * 1024)})`,
        goal: '≤ 64 MiB',
        pass: rss.max <= RSS_TARGET_KIB,
      });
      rssRows.push([
        pack.label,
        `${mib(size)} MiB`,
        `${mib(pack.contentBytes)} MiB`,
        `${mib(rss.median * 1024)} MiB`,
        `${mib(rss.max * 1024)} MiB`,
        split ? `${mib(split.anonKiB * 1024)} / ${mib(split.fileKiB * 1024)} MiB` : '—',
        `≤ 64 MiB: ${passFail(rss.max <= RSS_TARGET_KIB)}`,
      ]);
    }
    data.push({ pack: pack.label, packBytes: size, contentBytes: pack.contentBytes, ...Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { time: v.time, rss: v.rss }])) });
  }
  // A long verify settles a few MiB above a short one (V8 optimises the hot loop, and its compiler
  // threads' allocator arenas stay), so growth is judged from the middle-sized pack up.
  const rssSmall = rssByPack.get(small.label);
  const rssMiddle = rssByPack.get(middle.label);
  const rssLarge = rssByPack.get(large.label);
  if (rssSmall !== undefined && rssMiddle !== undefined && rssLarge !== undefined) {
    const growth = (rssLarge - rssMiddle) / 1024;
    const sign = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
    verdicts.push({
      target: `3. verify RSS does not grow with the pack (${mib(middle.contentBytes)} → ${mib(large.contentBytes)} MiB content, same level)`,
      measured: `${sign(growth)} MiB (${sign((rssMiddle - rssSmall) / 1024)} MiB from the ${mib(small.contentBytes)} MiB quran pack to the first)`,
      goal: '≤ +2 MiB',
      pass: growth <= 2,
    });
  }

  ctx.log('verify: phases of iqp verify on the synthetic pack…');
  const phaseRuns: VerifyPhases[] = [];
  for (let i = 0; i < Math.max(3, Math.min(ctx.options.runs, 5)); i++) {
    phaseRuns.push(JSON.parse(run(ctx.probe(['verify-phases', large.path, ctx.corpora.pub])).stdout) as VerifyPhases);
  }
  const med = (k: keyof VerifyPhases) => [...phaseRuns.map((p) => p[k])].sort((a, b) => a - b)[Math.floor(phaseRuns.length / 2)]!;
  const phaseTotal = med('readAndSpill') + med('signature') + med('describe') + med('integrity') + med('cleanup');
  const phaseRow = [
    `${secs(med('readAndSpill'))} s (${pct(med('readAndSpill') / phaseTotal)})`,
    `${secs(med('signature'))} s`,
    `${secs(med('integrity'))} s (${pct(med('integrity') / phaseTotal)})`,
    `${secs(med('describe'))} s`,
    `${secs(med('cleanup'))} s`,
  ];

  const markdown = [
    '### 3. `iqp verify` vs `zstd -dc | tar -x && sha256sum -c`',
    '',
    table(['pack (packed → content)', 'iqp verify', 'shell', 'ratio', 'ratio of fastest', 'CPU s iqp / shell', 'target'], timeRows),
    '',
    'Peak RSS of `iqp verify` (GNU time %M over the runs; the split from polling /proc/<pid>/status in one more run: file-backed pages are mapped code of node and its addons, shared between processes):',
    '',
    table(['pack', 'pack size', 'content', 'median', 'max', 'anonymous / file-backed (polled)', 'target'], rssRows),
    '',
    `Where iqp verify spends its time on the synthetic pack (library calls in one process, median of ${phaseRuns.length}):`,
    '',
    table(['decompress + tar + hashes + spill', 'signature', 'integrity_check', 'tables + row counts', 'remove temp copy'], [phaseRow]),
  ].join('\n');
  return { name: 'verify', markdown, verdicts, data: { packs: data, phases: phaseRuns } };
}
