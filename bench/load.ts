/**
 * Target 2: loading source rows into content.sqlite (`iqp build <dir>`), at least 300,000 rows/s
 * for JSONL and for CSV. The rate is the CLI's own: rows_loaded / rows_seconds from `--json`, the
 * time spent reading, parsing and inserting the rows. The whole load (load_seconds: schema, rows,
 * index builds, foreign-key and template checks, VACUUM INTO) is reported beside it, and the whole
 * build at level 1 (which adds integrity_check, run alongside compression) after that.
 *
 * Two references put the number in context: how fast the row readers alone parse the files (no
 * SQLite), and — for CSV — how fast the sqlite3 shell's `.import` loads the same file into the same
 * tables, then builds the indexes, VACUUMs and checks integrity as iqp does.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchContext, type BenchResult, type Verdict } from './lib/context.js';
import type { RowSource } from './lib/corpora.js';
import { int, passFail, pct, secs, table, withSpread } from './lib/format.js';
import { median, run, samples, sh } from './lib/proc.js';
import { readSource } from '../src/pack/source.js';

export const LOAD_TARGET = 300_000;

interface LoadPhases {
  loadSeconds: number;
  rowsSeconds: number;
  rest: number;
  indexes?: number;
  vacuum?: number;
  foreignKeys?: number;
  commit?: number;
  otherSql?: number;
}

interface BuildJson {
  rows_loaded: number;
  load_seconds: number;
  rows_seconds: number;
  load_threads: number;
}

/** sqlite3 script: tables, `.import` in one transaction, indexes, VACUUM, integrity_check. */
async function sqliteImportScript(source: RowSource): Promise<string> {
  const src = await readSource(source.dir);
  const isIndex = (l: string) => /^\s*CREATE\s+(UNIQUE\s+)?INDEX/i.test(l);
  const lines = src.schemaSql.split('\n');
  return [
    'PRAGMA page_size = 4096;',
    'PRAGMA journal_mode = OFF;',
    'PRAGMA synchronous = OFF;',
    'PRAGMA cache_size = -65536;',
    lines.filter((l) => !isIndex(l)).join('\n'),
    'BEGIN;',
    ...src.dataFiles.map((d) => `.import --csv --skip 1 ${sh(d.path)} ${d.table}`),
    lines.filter(isIndex).join('\n'),
    'COMMIT;',
    'PRAGMA journal_mode = DELETE;',
    'VACUUM;',
    'PRAGMA integrity_check;',
    '',
  ].join('\n');
}

export async function benchLoad(ctx: BenchContext): Promise<BenchResult> {
  const dir = ctx.scratch('load');
  const verdicts: Verdict[] = [];
  const rows: string[][] = [];
  const phaseRows: string[][] = [];
  const data: unknown[] = [];
  for (const source of ctx.corpora.rows) {
    const big = source.label === 'synthetic';
    const runs = big ? Math.max(2, Math.min(ctx.options.runs, 3)) : ctx.options.runs;
    const out = join(dir, 'out.iqp');
    const build = (threads: string[] = []) => {
      rmSync(out, { force: true });
      const r = run(ctx.iqp(['build', source.dir, '--unsigned', '--out', out, '--level', '1', ...threads, '--json']));
      return { wall: r.seconds, json: JSON.parse(r.stdout) as BuildJson, rss: r.maxRssKiB };
    };
    ctx.log(`load ${source.label} ${source.format}: ${runs} runs…`);
    build();
    const results = Array.from({ length: runs }, build);
    const rowCount = results[0]!.json.rows_loaded;
    const loadSeconds = samples(results.map((r) => r.json.load_seconds));
    const rowsSeconds = samples(results.map((r) => r.json.rows_seconds));
    const rate = rowCount / rowsSeconds.median;
    const loadRate = rowCount / loadSeconds.median;
    const threads = Math.max(...results.map((r) => r.json.load_threads));
    // The same build on one thread, for what loading in parts gives.
    const oneThread = Array.from({ length: big ? 1 : runs }, () => build(['--threads', '1']));
    const oneThreadRate = rowCount / median(oneThread.map((r) => r.json.rows_seconds));

    const parseRuns = Array.from({ length: big ? 2 : 3 }, () => JSON.parse(run(ctx.probe(['parse', source.dir])).stdout) as { rows: number; seconds: number });
    const parseRate = rowCount / median(parseRuns.map((p) => p.seconds));

    let sqliteRate: number | null = null;
    if (source.format === 'csv') {
      const script = join(dir, 'import.sql');
      const db = join(dir, 'import.sqlite');
      writeFileSync(script, await sqliteImportScript(source));
      const times: number[] = [];
      for (let i = 0; i < (big ? 2 : 3); i++) {
        rmSync(db, { force: true });
        const r = run({ shell: `sqlite3 ${sh(db)} < ${sh(script)}` });
        if (!r.stdout.includes('ok')) throw new Error(`sqlite3 import: ${r.stdout}`);
        times.push(r.seconds);
      }
      rmSync(db, { force: true });
      sqliteRate = rowCount / median(times);
    }
    const phaseRuns = Array.from({ length: big ? 1 : 3 }, () => JSON.parse(run(ctx.probe(['load-phases', source.dir])).stdout) as LoadPhases);
    const ph = (k: keyof LoadPhases) => median(phaseRuns.map((p) => p[k] ?? 0));
    const phTotal = ph('loadSeconds');
    const share = (k: keyof LoadPhases) => `${secs(ph(k))} s (${pct(ph(k) / phTotal)})`;
    phaseRows.push([
      `${source.label} ${source.format.toUpperCase()}`,
      `${secs(phTotal)} s`,
      share('rowsSeconds'),
      share('indexes'),
      share('vacuum'),
      `${secs(ph('foreignKeys') + ph('commit') + ph('otherSql') + ph('rest'))} s`,
    ]);
    const pass = rate >= LOAD_TARGET;
    verdicts.push({
      target: `2. load ${source.format.toUpperCase()}, ${source.label} (${int(rowCount)} rows)`,
      measured: `${int(rate)} rows/s on ${threads} thread${threads > 1 ? 's' : ''} (rows ${secs(rowsSeconds.median)} s; whole load ${int(loadRate)} rows/s in ${secs(loadSeconds.median)} s; one thread ${int(oneThreadRate)} rows/s)`,
      goal: `≥ ${int(LOAD_TARGET)} rows/s`,
      pass,
    });
    rows.push([
      `${source.label} ${source.format.toUpperCase()}`,
      int(rowCount),
      withSpread(rowsSeconds),
      `${int(rate)} (${threads})`,
      int(oneThreadRate),
      `${withSpread(loadSeconds)} (${int(loadRate)} rows/s)`,
      int(parseRate),
      sqliteRate === null ? '—' : int(sqliteRate),
      `${secs(median(results.map((r) => r.wall)))} s`,
      `≥ ${int(LOAD_TARGET)}: ${passFail(pass)}`,
    ]);
    data.push({ source: `${source.label}-${source.format}`, rows: rowCount, rowsSeconds, loadSeconds, rate, threads, oneThreadRate, loadRate, parseRuns, parseRate, sqliteRate, phaseRuns, wall: results.map((r) => r.wall), rssKiB: results.map((r) => r.rss) });
  }
  rmSync(dir, { recursive: true, force: true });
  const markdown = [
    '### 2. Loading rows: `iqp build <dir>` (rows_loaded / rows_seconds)',
    '',
    table(['source', 'rows', 'rows_seconds', 'rows/s (threads)', 'rows/s on one thread', 'load_seconds (whole load)', 'parse only, rows/s', 'sqlite3 .import, rows/s', 'whole build (level 1)', 'target'], rows),
    '',
    'Builds use the default threads (one per core, at most 4; data files over 34 MiB load in parts); "one thread" is the same build with --threads 1. rows_seconds is reading, parsing and inserting the rows; load_seconds adds the schema, index builds, foreign-key and template checks and VACUUM INTO. The whole build adds integrity_check (alongside compression), hashing, compression at level 1 and the atomic write.',
    '',
    'Where load_seconds goes (the SQL that loadSource runs, timed by wrapping better-sqlite3 in one process; median of 3 runs, 1 for the synthetic sets):',
    '',
    table(['source', 'load', 'read + parse + insert', 'CREATE INDEX', 'VACUUM INTO', 'other'], phaseRows),
    '',
    '"parse only" runs the row readers without SQLite. "sqlite3 .import" loads the same CSV with the sqlite3 shell into the same tables, builds the same indexes, VACUUMs and runs integrity_check (empty fields become \'\' there, not NULL).',
  ].join('\n');
  return { name: 'load', markdown, verdicts, data };
}
