/**
 * Target 4: a size/speed table of zstd levels on both content databases, to choose the default
 * level. Measured in memory with iqp's own compressor and decompressor (zstd-napi, one thread,
 * content checksum on, the 8 MiB window limit on the reading side), so the numbers are what iqp
 * build and iqp verify / the apps' decompressors see, without tar, hashing or disk.
 */
import type { BenchContext, BenchResult } from './lib/context.js';
import { mbPerSec, mib, ratio, secs, table } from './lib/format.js';
import { run } from './lib/proc.js';

interface LevelRow {
  level: number;
  bytes: number;
  compressedBytes: number;
  window: number;
  compressSeconds: number;
  decompressSeconds: number;
  compressRuns: number;
}

export async function benchLevels(ctx: BenchContext): Promise<BenchResult> {
  const sections: string[] = ['### 4. zstd levels (iqp\'s compressor, in memory, one thread)', ''];
  const data: Record<string, LevelRow[]> = {};
  for (const corpus of [ctx.corpora.content.quran, ctx.corpora.content.synthetic]) {
    const runs = ctx.options.quick ? 1 : 3;
    ctx.log(`levels ${corpus.label}: ${ctx.options.levels.join(', ')} (${runs} runs below level 12, 1 above)…`);
    const r = run(ctx.probe(['levels', corpus.db, ctx.options.levels.join(','), String(runs)]));
    const levels = JSON.parse(r.stdout) as LevelRow[];
    data[corpus.label] = levels;
    const rows = levels.map((l) => [
      String(l.level),
      mib(l.compressedBytes),
      ratio(l.bytes / l.compressedBytes),
      mbPerSec(l.bytes, l.compressSeconds),
      secs(l.compressSeconds),
      mbPerSec(l.bytes, l.decompressSeconds),
      `${mib(l.window)}`,
    ]);
    sections.push(
      `${corpus.label}: ${mib(corpus.bytes)} MiB content.sqlite`,
      '',
      table(['level', 'packed MiB', 'ratio', 'compress MB/s', 'compress s', 'decompress MB/s', 'window MiB (reader memory)'], rows),
      '',
    );
  }
  sections.push('MB/s are of uncompressed bytes (10^6 bytes per second). Levels 12 and up are timed once.');
  return { name: 'levels', markdown: sections.join('\n'), verdicts: [], data };
}
