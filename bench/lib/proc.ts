/**
 * Timing external commands: wall time from the parent (hrtime around the child's whole life) and
 * peak resident memory from GNU time (%M, the child's ru_maxrss; for a shell pipeline it is the
 * largest process of the pipeline, not the sum).
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface RunResult {
  readonly seconds: number;
  /** Peak RSS in KiB (GNU time %M), or null when /usr/bin/time is missing. */
  readonly maxRssKiB: number | null;
  /** User + system CPU seconds of the command and its children (GNU time %U + %S), or null. */
  readonly cpuSeconds: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Command {
  /** argv, or a shell script run with bash -c (pipelines). */
  readonly argv?: readonly string[];
  readonly shell?: string;
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export function haveGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** Runs a command once; throws with its stderr when it fails. */
export function run(cmd: Command): RunResult {
  const argv = cmd.argv ?? ['bash', '-c', `set -euo pipefail; ${cmd.shell ?? ''}`];
  const rssFile = join(tmpdir(), `iqp-bench-rss-${process.pid}`);
  const useTime = haveGnuTime();
  const full = useTime ? [GNU_TIME, '-f', '%M %U %S', '-o', rssFile, '--', ...argv] : [...argv];
  const started = process.hrtime.bigint();
  const res = spawnSync(full[0]!, full.slice(1), {
    cwd: cmd.cwd,
    env: { ...process.env, CI: '1', ...cmd.env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let maxRssKiB: number | null = null;
  let cpuSeconds: number | null = null;
  if (useTime && existsSync(rssFile)) {
    const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
    const [rss, user, sys] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
    maxRssKiB = Number.isFinite(rss) ? rss! : null;
    cpuSeconds = Number.isFinite(user) && Number.isFinite(sys) ? user! + sys! : null;
    rmSync(rssFile, { force: true });
  }
  if (res.error) throw res.error;
  if (res.status !== 0) {
    throw new Error(`command failed (exit ${res.status}): ${argv.join(' ')}\n${res.stderr}${res.stdout}`);
  }
  return { seconds, maxRssKiB, cpuSeconds, stdout: res.stdout, stderr: res.stderr };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Samples {
  readonly values: readonly number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max - min) / median: how noisy the runs were. */
  readonly spread: number;
}

export function samples(values: readonly number[]): Samples {
  const m = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { values, median: m, min, max, spread: m > 0 ? (max - min) / m : 0 };
}

export interface Compared {
  readonly time: Samples;
  readonly rss: Samples | null;
  readonly cpu: Samples | null;
  readonly last: RunResult;
}

/**
 * Runs each variant `runs` times, interleaved (A B C A B C …) so that drift in machine load hits
 * every variant alike, after one untimed warm-up of each (page cache, lazy compilation).
 */
export function compare<K extends string>(
  variants: Readonly<Record<K, () => RunResult>>,
  runs: number,
  options: { warmup?: boolean; between?: () => void } = {},
): Record<K, Compared> {
  const keys = Object.keys(variants) as K[];
  if (options.warmup !== false) {
    for (const k of keys) {
      variants[k]();
      options.between?.();
    }
  }
  const times = new Map<K, number[]>(keys.map((k) => [k, []]));
  const rss = new Map<K, number[]>(keys.map((k) => [k, []]));
  const cpu = new Map<K, number[]>(keys.map((k) => [k, []]));
  const last = new Map<K, RunResult>();
  for (let i = 0; i < runs; i++) {
    for (const k of keys) {
      const r = variants[k]();
      times.get(k)!.push(r.seconds);
      if (r.maxRssKiB !== null) rss.get(k)!.push(r.maxRssKiB);
      if (r.cpuSeconds !== null) cpu.get(k)!.push(r.cpuSeconds);
      last.set(k, r);
      options.between?.();
    }
  }
  const out = {} as Record<K, Compared>;
  for (const k of keys) {
    const r = rss.get(k)!;
    const c = cpu.get(k)!;
    out[k] = { time: samples(times.get(k)!), rss: r.length > 0 ? samples(r) : null, cpu: c.length > 0 ? samples(c) : null, last: last.get(k)! };
  }
  return out;
}

/** Single-quotes a string for bash. */
export function sh(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

export interface MemoryPeak {
  /** VmHWM (peak RSS) in KiB, the last value read before the process ended. */
  readonly hwmKiB: number;
  /** The largest anonymous (heap, buffers) and file-backed (code of node and addons) parts seen. */
  readonly anonKiB: number;
  readonly fileKiB: number;
}

/**
 * Runs a command (no shell) and polls /proc/<pid>/status every 5 ms for the split of its resident
 * memory between anonymous pages and file-backed ones (mapped code, shared with other processes).
 */
export async function memoryPeak(cmd: Command): Promise<MemoryPeak | null> {
  if (!cmd.argv || process.platform !== 'linux') return null;
  const { spawn } = await import('node:child_process');
  const child = spawn(cmd.argv[0]!, cmd.argv.slice(1), { cwd: cmd.cwd, env: { ...process.env, CI: '1', ...cmd.env }, stdio: 'ignore' });
  let hwm = 0;
  let anon = 0;
  let file = 0;
  const poll = () => {
    try {
      const s = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
      hwm = Math.max(hwm, get('VmHWM'));
      anon = Math.max(anon, get('RssAnon'));
      file = Math.max(file, get('RssFile'));
    } catch {
      // the process has just exited
    }
  };
  const timer = setInterval(poll, 5);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearInterval(timer);
  if (code !== 0) throw new Error(`command failed (exit ${code}): ${cmd.argv.join(' ')}`);
  return { hwmKiB: hwm, anonKiB: anon, fileKiB: file };
}

/** Stops a server the benchmark started: SIGTERM, then SIGKILL if it is still there after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * The environment for a child iqp process of the build under test: this one's, less any IQP_*
 * setting, SOURCE_DATE_EPOCH and NODE_OPTIONS of the shell the benchmark was started from (so
 * only what the benchmark sets reaches the registry), with CI and NO_COLOR set, and `extra`.
 */
export function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IQP_') && k !== 'SOURCE_DATE_EPOCH' && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, CI: '1', NO_COLOR: '1', ...extra };
}
