/**
 * The sync simulator, large: `iqp sync simulate` of the build under test, as an operator runs it,
 * with many more users, devices and steps than the test suite's small runs (many seeds of a few
 * devices each). Every step's faults are the suite's: lost, duplicated and late answers, the
 * registry SIGKILLed mid-push, access tokens expiring, devices crashing, days passing and
 * compaction while devices are away. The target is that every invariant holds (nothing
 * acknowledged lost, every device converged on the server's export checksum, no cross-account
 * read, monotonic reads, exact paging); the figures say how much bad weather that was, how long it
 * took, and the peak memory of the process tree (the CLI, its registry child and that registry's
 * workers), polled from /proc.
 *
 *   (npm run bench -- --only simulate [--quick])
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext, BenchResult } from './lib/context.js';
import { int, table } from './lib/format.js';
import { childEnv } from './lib/proc.js';
import type { SimReport } from '../src/sync-sim/sim.js';

export const SIMULATE_DEFAULTS = { users: 10, devices: 6, ops: 6000, seeds: 2, seed: 20261207 } as const;
export const SIMULATE_QUICK = { users: 3, devices: 3, ops: 500, seeds: 1, seed: 20261207 } as const;

type SimStats = SimReport['stats'];

interface SimAnswer {
  readonly ok: boolean;
  readonly failed: { readonly seed: number; readonly violation: string } | null;
  readonly reports: ReadonlyArray<{ readonly seed: number; readonly ok: boolean; readonly stats: SimStats }>;
}

/** Resident KiB of a process and all its descendants (Linux, /proc/<pid>/task/<tid>/children). */
function treeRssKiB(pid: number): { total: number; largest: number } {
  let total = 0;
  let largest = 0;
  const visit = (p: number) => {
    try {
      const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
      total += kib;
      largest = Math.max(largest, kib);
      for (const tid of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(Number(tid));
    } catch {
      // gone while we looked
    }
  };
  visit(pid);
  return { total, largest };
}

export async function benchSimulate(ctx: BenchContext): Promise<BenchResult> {
  const o = ctx.options.quick ? SIMULATE_QUICK : SIMULATE_DEFAULTS;
  const dir = ctx.scratch('simulate');
  const args = ['sync', 'simulate', '--users', String(o.users), '--devices', String(o.devices), '--ops', String(o.ops), '--seed', String(o.seed), '--seeds', String(o.seeds), '--json'];
  ctx.log(`simulate: ${o.users} users × ${o.devices} devices, ${int(o.ops)} steps, ${o.seeds} seed(s) from ${o.seed}…`);
  // Its registry's data directories go to TMPDIR: the scratch folder, removed with the next run.
  const child = spawn(process.execPath, [join(ctx.cliRoot, 'bin', 'iqp.js'), ...args], { cwd: dir, env: childEnv({ TMPDIR: dir }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const peak = { total: 0, largest: 0 };
  const poll = setInterval(() => {
    const now = treeRssKiB(child.pid!);
    peak.total = Math.max(peak.total, now.total);
    peak.largest = Math.max(peak.largest, now.largest);
  }, 100);
  const started = performance.now();
  // 'close', not 'exit': its stdout may still hold the end of the JSON answer when it exits.
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearInterval(poll);
  const seconds = (performance.now() - started) / 1000;
  let answer: SimAnswer;
  try {
    answer = JSON.parse(stdout) as SimAnswer;
  } catch {
    throw new Error(`iqp sync simulate exited ${code} without its JSON answer:\n${stdout.slice(-2000)}\n${stderr}`);
  }
  const sum = (f: (s: SimStats) => number) => answer.reports.reduce((n, r) => n + f(r.stats), 0);
  const steps = o.ops * answer.reports.length;
  const rows: Array<[string, string]> = [
    ['runs (seeds)', `${answer.reports.length} from ${o.seed}`],
    ['accounts × devices per run', `${o.users} × ${o.devices} (${o.users * o.devices} devices, each the real sync client)`],
    ['steps per run (edits, syncs, faults)', int(o.ops)],
    ['writes acknowledged', int(sum((s) => s.writes))],
    ['conflicts recorded', int(sum((s) => s.conflicts))],
    ['mutations rejected (seen by their device)', int(sum((s) => s.rejected))],
    ['resets (cursor behind the horizon)', int(sum((s) => s.resets))],
    ['app crashes (local queue reopened)', int(sum((s) => s.crashes))],
    ['registry SIGKILLed mid-sync', int(sum((s) => s.serverKills))],
    ['days passed (tokens expired, compaction)', int(sum((s) => s.timeJumps))],
    ['answers lost / duplicated', `${int(sum((s) => s.faults.dropped))} / ${int(sum((s) => s.faults.duplicated))}`],
    ['access tokens expired mid-sync', int(sum((s) => s.faults.expired))],
    ['wall time', `${seconds.toFixed(1)} s (${(steps / seconds).toFixed(0)} steps/s, restarts after kills included)`],
    ['peak RSS, whole process tree / largest process', `${(peak.total / 1024).toFixed(1)} / ${(peak.largest / 1024).toFixed(1)} MiB`],
  ];
  const violation = answer.failed ? `seed ${answer.failed.seed}: ${answer.failed.violation}` : null;
  const markdown = [
    `### Sync simulator, large (\`iqp ${args.join(' ')}\`)`,
    '',
    table(['', 'measured'], rows),
    '',
    violation ? `The first broken invariant: ${violation}` : 'Every invariant held in every run.',
  ].join('\n');
  return {
    name: 'simulate',
    markdown,
    verdicts: [
      {
        target: `sync simulator, ${o.users} × ${o.devices} devices, ${int(o.ops)} steps, ${answer.reports.length} seed(s)`,
        measured: violation ?? `every invariant held (${int(sum((s) => s.writes))} writes, ${int(sum((s) => s.serverKills))} kills)`,
        goal: 'no invariant broken',
        pass: code === 0 && answer.ok,
      },
    ],
    data: { options: o, seconds, peakRssKiB: peak, answer },
  };
}
