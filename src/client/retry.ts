/**
 * When and how long to wait before trying a registry request again: exponential backoff with
 * jitter, a bounded number of attempts, and only for failures that another attempt can fix
 * (the network, or a gateway saying the registry is briefly away). A 4xx is never retried.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included, since a download last got further than ever before. */
  readonly attempts: number;
  /**
   * Attempts in all for one request however far each gets (a download that keeps dropping):
   * default TOTAL_ATTEMPTS_FACTOR times `attempts`.
   */
  readonly totalAttempts?: number;
  /** Delay before the first retry; doubles each time. */
  readonly baseMs: number;
  /** No single wait is longer than this. */
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 500, maxMs: 8_000 };

/**
 * A download that drops again and again but gets further each time goes on, up to this many times
 * the policy's attempts (100 by default): enough for a long download through a proxy that cuts
 * connections, not for a registry that sends a byte per connection. The part stays to resume from.
 */
const TOTAL_ATTEMPTS_FACTOR = 20;

export function totalAttempts(policy: RetryPolicy): number {
  return policy.totalAttempts ?? policy.attempts * TOTAL_ATTEMPTS_FACTOR;
}

/**
 * Time a registry has to send a whole JSON answer, headers and body, in one attempt (json_timeout_ms):
 * the connection's own timeouts only limit a pause, so a body that drips would never end.
 */
export const DEFAULT_JSON_TIMEOUT_MS = 60_000;

/** Statuses a proxy or a restarting registry answers with for a moment; another attempt may work. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/**
 * Wait before retry number `retry` (1 for the first retry). Half the exponential step is fixed and
 * half random ("equal jitter"), so waits grow while many clients retrying at once spread out.
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/** Retry-After in seconds (RFC 9110 §10.2.3); the HTTP-date form is rare from registries and ignored. */
export function retryAfterMs(header: string | string[] | undefined, policy: RetryPolicy): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  return Math.min(policy.maxMs, Number(value.trim()) * 1000);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
