/** Time and chance, injectable so tests and simulators run on virtual time with seeded randomness. */
import { aborted } from './errors.js';

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Real timers; rejects with an aborted SyncError as soon as the signal fires. */
export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const onAbort = () => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 60_000;

/** Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffMs(attempt: number, random: () => number): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** A server's Retry-After can be absurd; waiting longer than this is never what the user wants. */
const RETRY_AFTER_MAX_MS = 3_600_000;

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(RETRY_AFTER_MAX_MS, Math.max(0, ms));
}

/** A signal that fires when any of the given ones does (AbortSignal.any is not everywhere yet). */
export function anySignal(signals: Array<AbortSignal | undefined>): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const onAbort = () => controller.abort();
  for (const s of live) {
    if (s.aborted) {
      controller.abort();
      break;
    }
    s.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of live) s.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * `p`, unless `signal` fires first (rejects with an aborted SyncError) or `ms` pass (rejects with
 * `onTimeout()`; 0: no limit). For waits on code the client does not control, such as a token
 * source: whatever `p` does later is ignored, so a promise that never settles cannot hold the caller.
 */
export function bounded<T>(p: Promise<T>, signal: AbortSignal | undefined, ms: number, onTimeout: () => Error): Promise<T> {
  p.catch(() => undefined);
  if (!signal && ms <= 0) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => finish(() => reject(aborted()));
    const timer = ms > 0 ? setTimeout(() => finish(() => reject(onTimeout())), ms) : undefined;
    const finish = (settle: () => void) => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    if (signal?.aborted) return finish(() => reject(aborted()));
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(
      (value) => finish(() => resolve(value)),
      (err: unknown) => finish(() => reject(err)),
    );
  });
}

/** Random bytes as hex: crypto.getRandomValues where it exists, else the given source. */
export function randomHex(bytes: number, random?: () => number): string {
  const buf = new Uint8Array(bytes);
  const c = (globalThis as { crypto?: { getRandomValues?(b: Uint8Array): Uint8Array } }).crypto;
  if (random === undefined && c?.getRandomValues) c.getRandomValues(buf);
  else for (let i = 0; i < bytes; i++) buf[i] = Math.floor((random ?? Math.random)() * 256);
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
}
