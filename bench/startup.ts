/**
 * Fixed costs that every iqp command pays before it reads a byte: starting Node and loading the
 * CLI's modules. On small packs they dominate the build and verify ratios and the peak RSS, so
 * they are measured on their own: bare Node, `iqp --version`, and the pack library alone.
 *
 * And the registry's: `iqp server start` until it prints its address (what a restart after a crash
 * or a deploy costs), on one process and on one worker per core, with no plugins and with the auth
 * and sync plugins, each on a data directory made before the timing (its first start migrates).
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchContext, BenchResult } from './lib/context.js';
import { mib, secs, table } from './lib/format.js';
import { compare, median, run } from './lib/proc.js';
import { setupOurs, startOurs } from './lib/sync-ours.js';

export async function benchStartup(ctx: BenchContext): Promise<BenchResult> {
  const node = process.execPath;
  const lib = pathToFileURL(join(ctx.cliRoot, 'dist', 'src', 'pack', 'verify.js')).href;
  ctx.log('startup: node, iqp --version, pack library import…');
  const res = compare(
    {
      node: () => run({ argv: [node, '-e', '0'] }),
      iqp: () => run(ctx.iqp(['--version'])),
      library: () => run({ argv: [node, '--input-type=module', '-e', `await import(${JSON.stringify(lib)})`] }),
    },
    Math.max(5, ctx.options.runs),
  );
  const row = (label: string, k: keyof typeof res) => [label, `${secs(res[k].time.median)} s`, res[k].rss ? `${mib(res[k].rss!.median * 1024)} MiB` : '—'];
  const markdown = [
    '### Start-up (paid by every command)',
    '',
    table(
      ['process', 'wall (median)', 'peak RSS'],
      [row('node -e 0', 'node'), row('iqp --version (all CLI modules)', 'iqp'), row('node + import of src/pack/verify.js only', 'library')],
    ),
  ].join('\n');
  const server = await serverStarts(ctx);
  return {
    name: 'startup',
    markdown: `${markdown}\n\n${server.markdown}`,
    verdicts: [],
    data: { ...Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { time: v.time, rss: v.rss }])), server: server.data },
  };
}

/** `iqp server start` to ready, median of `runs` starts each (interleaved), in seconds. */
async function serverStarts(ctx: BenchContext): Promise<{ markdown: string; data: Record<string, number[]> }> {
  const cores = availableParallelism();
  const plain = ctx.scratch('startup-server-plain');
  const plugins = ctx.scratch('startup-server-plugins');
  setupOurs(ctx.cliRoot, plugins, 'sync', ['entities={"card":{}}']);
  const variants: Array<{ label: string; dir: string; need: string[]; workers: number }> = [
    { label: 'no plugins, one process', dir: plain, need: [], workers: 1 },
    { label: `no plugins, ${cores} workers`, dir: plain, need: [], workers: cores },
    { label: 'auth and sync, one process', dir: plugins, need: ['auth', 'sync'], workers: 1 },
    { label: `auth and sync, ${cores} workers`, dir: plugins, need: ['auth', 'sync'], workers: cores },
  ];
  ctx.log(`startup: iqp server start until ready, ${variants.length} variants…`);
  const times = new Map<string, number[]>(variants.map((v) => [v.label, []]));
  const runs = Math.max(5, ctx.options.runs);
  // The first start of each directory migrates it: a warm-up, not timed.
  for (let r = -1; r < runs; r++) {
    for (const v of variants) {
      const t0 = performance.now();
      const s = await startOurs(ctx.cliRoot, v.dir, [], v.need, v.workers);
      const seconds = (performance.now() - t0) / 1000;
      await s.stop();
      if (r >= 0) times.get(v.label)!.push(seconds);
    }
  }
  const markdown = [
    '### Registry start-up (`iqp server start` until it prints its address)',
    '',
    table(
      ['data directory', 'wall (median)', 'min – max'],
      variants.map((v) => {
        const t = times.get(v.label)!;
        return [v.label, `${secs(median(t))} s`, `${secs(Math.min(...t))} – ${secs(Math.max(...t))} s`];
      }),
    ),
  ].join('\n');
  return { markdown, data: Object.fromEntries(times) };
}
