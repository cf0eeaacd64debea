/** The machine and tool versions a set of numbers was measured with. */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import binding from 'zstd-napi/binding.js';

function tool(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0] ?? '';
  } catch {
    return 'not found';
  }
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

export interface Machine {
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly sqlite: string;
  readonly sqliteCli: string;
  readonly zstdLib: string;
  /** zstd-napi's nbWorkers bounds: an upper bound above 0 means it was built with ZSTD_MULTITHREAD. */
  readonly zstdLibThreads: string;
  readonly zstdCli: string;
  readonly tar: string;
  readonly commit: string;
  readonly loadAverage: string;
  /** What fresh memory costs here: VMs differ most in this (a page fault from 1 to 15 µs), and servers allocate all day. */
  readonly freshMemory: string;
}

/** Writes a new 64 MiB buffer (every page faulted in) and then writes it again (no faults): ms each, best of three. */
function freshMemoryCost(): string {
  const first: number[] = [];
  const again: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const b = Buffer.allocUnsafeSlow(64 * 1024 * 1024);
    b.fill(1);
    const t1 = performance.now();
    b.fill(2);
    first.push(t1 - t0);
    again.push(performance.now() - t1);
  }
  const best = (v: number[]) => Math.min(...v).toFixed(0);
  return `a new 64 MiB buffer written in ${best(first)} ms, written again in ${best(again)} ms (the difference: faulting in 16,384 pages)`;
}

export function describeMachine(root: string): Machine {
  const db = new Database(':memory:');
  const sqlite = db.prepare('SELECT sqlite_version()').pluck().get() as string;
  db.close();
  const commit = tool('git', ['-C', root, 'rev-parse', '--short', 'HEAD']);
  const dirty = tool('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    cpu: cpuModel(),
    cores: cpus().length,
    ramGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
    sqlite: `${sqlite} (better-sqlite3)`,
    sqliteCli: tool('sqlite3', ['--version']).split(' ')[0] ?? '',
    zstdLib: `${binding.versionString()} (zstd-napi)`,
    zstdLibThreads: (() => {
      const b = binding.cParamGetBounds(binding.CParameter.nbWorkers);
      return b.upperBound > 0 ? `multithreading built in (nbWorkers ${b.lowerBound}..${b.upperBound}); iqp compresses with one worker per core, 1 to 4 (--threads)` : 'built without multithreading';
    })(),
    zstdCli: tool('zstd', ['--version']).replace(/^\*+\s*|\s*\*+$/g, ''),
    tar: tool('tar', ['--version']),
    commit: `${commit}${dirty ? ' + uncommitted changes' : ''}`,
    loadAverage: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    freshMemory: freshMemoryCost(),
  };
}

export function machineMarkdown(m: Machine): string {
  return [
    `- Date: ${m.date}; commit ${m.commit}`,
    `- CPU: ${m.cpu}, ${m.cores} cores; RAM ${m.ramGiB} GiB; Linux ${m.kernel}`,
    `- Memory: ${m.freshMemory}`,
    `- Node ${m.node}; SQLite ${m.sqlite}, sqlite3 CLI ${m.sqliteCli}; ${m.tar}`,
    `- zstd ${m.zstdLib}, ${m.zstdLibThreads}; zstd CLI ${m.zstdCli} (compresses on 1 worker thread by default, -T1)`,
    `- Load average when the run started: ${m.loadAverage}`,
  ].join('\n');
}
