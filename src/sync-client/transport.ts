/**
 * One JSON POST with the protocol's recovery rules in one place: refresh once on an expired token,
 * honour Retry-After on 429/503, back off with full jitter on network errors and 5xx, and turn the
 * answers that need the user (sign in, update the app) into SyncErrors the loop stops on.
 */
import { CLIENT_CODES, SyncError, aborted } from './errors.js';
import { CODES, type ErrorBody } from './protocol.js';
import { type Sleep, anySignal, backoffMs, bounded, retryAfterMs } from './timing.js';
import type { TokenSource } from './tokens.js';

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<Response>;

/** What the transport reports while it waits (the client turns it into a status). */
export type WaitReason = { state: 'offline' | 'retrying'; code?: string; delayMs: number };

export interface TransportOptions {
  baseUrl: string;
  fetch: FetchLike;
  tokens: TokenSource;
  sleep: Sleep;
  random: () => number;
  now: () => number;
  requestTimeoutMs: number;
  onWait?(reason: WaitReason): void;
}

/** A push too big for the server (413, or 422 IQP_E_SYNC_PUSH_TOO_LARGE): the caller sends fewer. */
export class TooLarge extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

/** Responses are capped: a pull page is at most 8 MiB of changes by contract, so this is generous. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

export async function readBody(res: Response, max = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) throw new SyncError(CLIENT_CODES.BAD_RESPONSE, `response of ${declared} bytes is over the ${max}-byte cap`, 'failed', res.status);
  if (!res.body) return res.text();
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new SyncError(CLIENT_CODES.BAD_RESPONSE, `response over the ${max}-byte cap`, 'failed', res.status);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

function errorOf(text: string): ErrorBody['error'] | undefined {
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (body && typeof body.error?.code === 'string') return body.error;
  } catch {
    // not JSON: a proxy's page, say; the status alone decides
  }
  return undefined;
}

export class Transport {
  readonly #o: TransportOptions;
  /** The back-offs under way that a nudge may end (not a server's Retry-After). */
  readonly #backoffs = new Set<AbortController>();

  constructor(options: TransportOptions) {
    this.#o = options;
  }

  /** POSTs until it gets a 2xx answer or an error retrying cannot fix; aborts when signal fires. */
  async post<T>(path: string, body: unknown, signal: AbortSignal, extraTimeoutMs = 0): Promise<T> {
    const o = this.#o;
    const json = JSON.stringify(body);
    let attempt = 0;
    let refreshed = false;
    const wait = async (delayMs: number, state: WaitReason['state'], code?: string, serverSet = false) => {
      o.onWait?.({ state, delayMs, ...(code ? { code } : {}) });
      if (serverSet) return o.sleep(delayMs, signal);
      const nudge = new AbortController();
      this.#backoffs.add(nudge);
      const both = anySignal([signal, nudge.signal]);
      try {
        await o.sleep(delayMs, both.signal);
      } catch (err) {
        // Nudged: try again now (the attempt count stands, so a failure backs off further).
        if (signal.aborted || !nudge.signal.aborted) throw err;
      } finally {
        both.dispose();
        this.#backoffs.delete(nudge);
      }
    };
    for (;;) {
      if (signal.aborted) throw aborted();
      let token: string | null;
      let res: Response;
      let text: string;
      try {
        token = await this.#token(() => o.tokens.accessToken(), signal);
        if (token === null) throw signedOut('no access token: sign in');
        ({ res, text } = await this.#exchange(path, json, token, signal, extraTimeoutMs));
      } catch (err) {
        if (signal.aborted) throw aborted();
        if (err instanceof SyncError && err.kind !== 'failed') throw err;
        // A network error (or the token source could not reach the server): the same request, later.
        await wait(backoffMs(attempt++, o.random), 'offline');
        continue;
      }
      if (res.ok) {
        try {
          return JSON.parse(text) as T;
        } catch {
          // A 200 that is not JSON is a broken proxy or a cut answer: retry like a 5xx.
          await wait(backoffMs(attempt++, o.random), 'retrying', CLIENT_CODES.BAD_RESPONSE);
          continue;
        }
      }
      const err = errorOf(text);
      const code = err?.code ?? `HTTP_${res.status}`;
      const message = err?.message ?? `HTTP ${res.status}`;
      if (res.status === 401) {
        if (code === CODES.TOKEN_EXPIRED && !refreshed) {
          refreshed = true;
          let fresh: string | null;
          try {
            fresh = await this.#token(() => o.tokens.refresh(), signal);
          } catch (e) {
            if (signal.aborted) throw aborted();
            if (e instanceof SyncError && e.kind !== 'failed') throw e;
            // The refresh itself hit the network: back off, and allow the refresh again.
            refreshed = false;
            await wait(backoffMs(attempt++, o.random), 'offline');
            continue;
          }
          if (fresh === null) throw signedOut('the session ended: sign in again', code);
          continue;
        }
        // A second 401, or one that refreshing cannot fix: no loop.
        throw signedOut(message, code, res.status);
      }
      if (res.status === 429 || res.status === 503) {
        const asked = retryAfterMs(res.headers.get('retry-after'), o.now());
        await wait(asked ?? backoffMs(attempt, o.random), 'retrying', code, asked !== undefined);
        attempt++;
        continue;
      }
      if (res.status === 413 || code === CODES.PUSH_TOO_LARGE || code === CODES.UPLOAD_TOO_LARGE) throw new TooLarge(code);
      // A request refused as malformed (400 INVALID_REQUEST or USAGE) is refused the same way every
      // time: the protocol says not to send it again unchanged, so syncing stops until the app is fixed.
      const malformed = res.status === 400 && (code === CODES.INVALID_REQUEST || code === CODES.USAGE);
      if (malformed || code === CODES.SCHEMA_VERSION || code === CODES.EMAIL_UNVERIFIED || code === CODES.DEVICE_FOREIGN) {
        throw new SyncError(code, message, 'blocked', res.status, err?.details);
      }
      if (res.status >= 500) {
        await wait(backoffMs(attempt++, o.random), 'retrying', code);
        continue;
      }
      throw new SyncError(code, message, 'failed', res.status, err?.details);
    }
  }

  /**
   * Ends the back-offs under way so their requests go out now: the app has new work (a local
   * mutation, a syncOnce call), which is the best sign the user expects the network to be back.
   * A Retry-After the server set is kept.
   */
  nudge(): void {
    for (const c of this.#backoffs) c.abort();
  }

  /**
   * The token source's answer, given up when `signal` fires or after requestTimeoutMs (a failure
   * the caller backs off from, like a network error): a refresh that never answers must not hold
   * the loop, or stop().
   */
  #token(get: () => Promise<string | null>, signal: AbortSignal): Promise<string | null> {
    const ms = this.#o.requestTimeoutMs;
    return bounded(get(), signal, ms, () => new SyncError(CLIENT_CODES.TIMEOUT, `the token source did not answer within ${ms} ms`));
  }

  async #exchange(path: string, body: string, token: string, signal: AbortSignal, extraTimeoutMs: number): Promise<{ res: Response; text: string }> {
    const o = this.#o;
    const url = o.baseUrl.replace(/\/+$/, '') + path;
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    // A request (or a body) that never ends, on a black-holed network, must not hang the loop forever.
    const timeoutMs = o.requestTimeoutMs > 0 ? o.requestTimeoutMs + extraTimeoutMs : 0;
    const timer = timeoutMs > 0 ? setTimeout(() => controller.abort(), timeoutMs) : undefined;
    try {
      const res = await o.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}` },
        body,
        signal: controller.signal,
      });
      return { res, text: await readBody(res) };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

export function signedOut(message: string, code: string = CLIENT_CODES.SIGNED_OUT, status?: number): SyncError {
  return new SyncError(code, message, 'signed_out', status);
}
