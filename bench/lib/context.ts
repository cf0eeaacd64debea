/** What every benchmark gets: paths, the corpora, how to call the CLI, and where to report. */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Corpora } from './corpora.js';
import type { Command } from './proc.js';

export interface BenchOptions {
  /** Timed repetitions per variant (after one warm-up). */
  readonly runs: number;
  /** Fewer runs and smaller level sweeps, for a quick look (numbers are then rougher). */
  readonly quick: boolean;
  /** zstd level for the build and verify benchmarks. */
  readonly level: number;
  readonly levels: readonly number[];
  /** Add a 2 GiB pack to the verify memory check. */
  readonly big: boolean;
}

export interface BenchContext {
  readonly root: string;
  /** The frozen copy of the build that is measured (see snapshot.ts). */
  readonly cliRoot: string;
  readonly work: string;
  readonly corpora: Corpora;
  readonly options: BenchOptions;
  /** A fresh scratch folder for one benchmark (bench/.work/runs/<name>). */
  scratch(name: string): string;
  /** The CLI as users run it: node bin/iqp.js …, with a fixed SOURCE_DATE_EPOCH. */
  iqp(args: readonly string[]): Command;
  /** node dist/bench/probe.js … from the frozen copy. */
  probe(args: readonly string[]): Command;
  log(message: string): void;
}

/** One line of the summary: a target, what was measured, and whether it holds. */
export interface Verdict {
  readonly target: string;
  readonly measured: string;
  readonly goal: string;
  readonly pass: boolean;
}

export interface BenchResult {
  readonly name: string;
  /** Markdown sections (heading + table + notes), also printed to the console. */
  readonly markdown: string;
  readonly verdicts: readonly Verdict[];
  readonly data: unknown;
}

export const SOURCE_DATE_EPOCH = '1700000000';

export function createContext(root: string, cliRoot: string, corpora: Corpora, options: BenchOptions, log: (m: string) => void): BenchContext {
  const runs = join(corpora.work, 'runs');
  return {
    root,
    cliRoot,
    work: corpora.work,
    corpora,
    options,
    scratch(name) {
      const dir = join(runs, name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      return dir;
    },
    iqp(args) {
      return { argv: [process.execPath, join(cliRoot, 'bin', 'iqp.js'), ...args], env: { SOURCE_DATE_EPOCH } };
    },
    probe(args) {
      return { argv: [process.execPath, join(cliRoot, 'dist', 'bench', 'probe.js'), ...args] };
    },
    log,
  };
}
