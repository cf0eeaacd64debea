/**
 * Waiting for a quiet machine: the box has 2 cores and other benchmarks or test runs may be going
 * on. Before each measurement the load average must be under a threshold and no foreign
 * `bench`/`vitest` process may be running (this run's own children are not foreign); between
 * runs of one measurement, a short sample of /proc/stat must show the CPUs idle.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

export interface Quiet {
  /** Load averages (1, 5, 15 min) when the measurement started. */
  readonly load: string;
  readonly waitedSeconds: number;
  /** Set when the wait gave up: what was still running. */
  readonly warning: string | null;
}

function ownTree(): Set<number> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const mine = new Set<number>();
  const todo = [process.pid];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    mine.add(pid);
    for (const c of children.get(pid) ?? []) if (!mine.has(c)) todo.push(c);
  }
  return mine;
}

/** Foreign processes whose command line mentions bench or vitest. */
export function foreignBusy(): string[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-af', 'bench|vitest'], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  const mine = ownTree();
  return out
    .split('\n')
    .filter(Boolean)
    .filter((line) => !mine.has(Number(line.split(' ')[0])));
}

function cpuTimes(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = v[3]! + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Fraction of all CPUs busy over `ms` milliseconds. */
export async function cpuBusy(ms = 1000): Promise<number> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;
}

export function loadString(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/**
 * Waits (up to `maxWaitSeconds`) until the 1-minute load average is under `maxLoad` and nothing
 * foreign runs. With `enabled` false it only records the load.
 */
export async function waitForQuiet(label: string, o: { maxLoad: number; enabled: boolean; maxWaitSeconds: number }, log: (m: string) => void): Promise<Quiet> {
  const started = Date.now();
  let announced = false;
  for (;;) {
    const foreign = o.enabled ? foreignBusy() : [];
    const load1 = loadavg()[0]!;
    if (!o.enabled || (load1 < o.maxLoad && foreign.length === 0)) {
      return { load: loadString(), waitedSeconds: Math.round((Date.now() - started) / 1000), warning: null };
    }
    const waited = (Date.now() - started) / 1000;
    if (waited > o.maxWaitSeconds) {
      const warning = `gave up waiting after ${Math.round(waited)} s: load ${loadString()}${foreign.length ? `; running: ${foreign.map((f) => f.slice(0, 100)).join(' | ')}` : ''}`;
      log(`${label}: ${warning}`);
      return { load: loadString(), waitedSeconds: Math.round(waited), warning };
    }
    if (!announced) {
      log(`${label}: waiting for a quiet machine (load ${loadString()}, need < ${o.maxLoad}${foreign.length ? `; ${foreign.length} foreign bench/vitest process(es)` : ''})…`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
}

/** Between runs: wait (up to 2 min) while the CPUs are busy although this run's servers are idle. */
export async function settle(o: { enabled: boolean }, log: (m: string) => void): Promise<void> {
  if (!o.enabled) return;
  const started = Date.now();
  for (;;) {
    const busy = await cpuBusy(700);
    if (busy < 0.15 || Date.now() - started > 120_000) return;
    if (Date.now() - started > 5000 && Date.now() - started < 6000) log(`CPUs ${(busy * 100).toFixed(0)}% busy between runs: waiting…`);
  }
}
