/**
 * How many threads iqp build uses: compression workers, and threads loading one big data file in
 * parts. One per core, at most MAX_THREADS by default; `threads` in the config (IQP_THREADS,
 * --threads) overrides it, for example 1 on a shared CI runner. The pack's bytes never depend on it.
 */
import { availableParallelism } from 'node:os';

/** More threads than this give little on real packs and cost memory (40 MiB per zstd worker at level 6). */
export const MAX_THREADS = 4;
export const THREADS_LIMIT = 64;

/** One thread per core, 1 to MAX_THREADS. */
export function defaultThreads(): number {
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism()));
}
