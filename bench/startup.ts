/**
 * Fixed costs that every iqp command pays before it reads a byte: starting Node and loading the
 * CLI's modules. On small packs they dominate the build and verify ratios and the peak RSS, so
 * they are measured on their own: bare Node, `iqp --version`, and the pack library alone.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchContext, BenchResult } from './lib/context.js';
import { mib, secs, table } from './lib/format.js';
import { compare, run } from './lib/proc.js';

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
  return {
    name: 'startup',
    markdown,
    verdicts: [],
    data: Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { time: v.time, rss: v.rss }])),
  };
}
