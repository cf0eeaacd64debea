/**
 * Interleaved runs of the variants of a measurement (A B C A B C …, so that drift on a shared
 * machine hits every variant alike), how their figures are shown, and the flags every registry
 * benchmark takes for them.
 */
import { samples, type Samples } from '../lib/proc.js';

/** Runs each variant `runs` times, interleaved, after one warm-up each (not kept); every run's result, by variant. */
export async function interleaveRuns<T>(variants: ReadonlyArray<readonly [string, () => Promise<T>]>, runs: number, between: () => Promise<void>, warmup = true): Promise<Map<string, T[]>> {
  if (warmup) for (const [, f] of variants) await f();
  const values = new Map<string, T[]>(variants.map(([k]) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [k, f] of variants) {
      await between();
      values.get(k)!.push(await f());
    }
  }
  return values;
}

/** interleaveRuns for variants that return one figure: its samples, by variant. */
export async function interleave(variants: ReadonlyArray<readonly [string, () => Promise<number>]>, runs: number, between: () => Promise<void>, warmup = true): Promise<Map<string, Samples>> {
  const values = await interleaveRuns(variants, runs, between, warmup);
  return new Map([...values].map(([k, v]) => [k, samples(v)]));
}

export const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
export const spread = (s: Samples) => `±${(s.spread * 50).toFixed(0)}%`;

/** Command-line flags (node:util parseArgs) of every registry benchmark: what to run, how long, and the wait for a quiet machine. */
export const RUN_FLAGS = {
  only: { type: 'string' },
  runs: { type: 'string' },
  seconds: { type: 'string' },
  connections: { type: 'string', default: '32' },
  'wrk-threads': { type: 'string', default: '2' },
  quick: { type: 'boolean', default: false },
  'max-load': { type: 'string', default: '0.5' },
  'no-wait': { type: 'boolean', default: false },
  'max-wait': { type: 'string', default: '60' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** waitForQuiet's options from RUN_FLAGS' values. */
export function quietOptionsFrom(values: { 'max-load'?: string; 'no-wait'?: boolean; 'max-wait'?: string }): { maxLoad: number; enabled: boolean; maxWaitSeconds: number } {
  return { maxLoad: Number(values['max-load'] ?? 0.5), enabled: !values['no-wait'], maxWaitSeconds: Number(values['max-wait'] ?? 60) * 60 };
}
