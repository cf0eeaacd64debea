/**
 * The registry client: one HTTP request with retries, error mapping and a debug line, on which
 * publish, pull, deprecate and keys are built. The token goes only to the registry's own origin,
 * only on requests that need it, and is scrubbed from every error this client raises.
 */
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import { IqpError, toIqpError } from '../errors.js';
import { AnswerTimeout, isConnectionError, isNetworkError, networkError, networkReason, redactError, responseError } from './errors.js';
import { backoffDelay, DEFAULT_JSON_TIMEOUT_MS, DEFAULT_RETRY, RETRYABLE_STATUSES, retryAfterMs, type RetryPolicy, sleep, totalAttempts } from './retry.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

export interface RequestSpec {
  readonly method: Method;
  /** A path under the registry URL (`/v1/…`), or an absolute URL the registry handed out. */
  readonly path: string;
  /** Send the bearer token (admin endpoints only). */
  readonly auth?: boolean;
  readonly headers?: Readonly<Record<string, string>>;
  /** A JSON request body. */
  readonly json?: unknown;
  /** A streamed request body, opened afresh for every attempt. */
  readonly body?: () => Readable;
  /** Statuses that count as an answer; others become errors. Default: 200. */
  readonly expect?: readonly number[];
  /** Time allowed until the response headers arrive (an upload is verified before the answer). */
  readonly headersTimeoutMs?: number;
}

export type Response = Dispatcher.ResponseData<null>;

export interface ClientOptions {
  /** Registry base URL, without a trailing slash. */
  readonly baseUrl: string;
  readonly token: string | null;
  readonly retry?: RetryPolicy;
  /** One line per request and retry, for IQP_DEBUG; never holds the token. */
  readonly debug?: (line: string) => void;
  /** Told before each retry, for people watching stderr. */
  readonly onRetry?: (message: string) => void;
  readonly userAgent?: string;
  /** For tests of the backoff. */
  readonly random?: () => number;
  /** Time for a whole JSON answer, and for any error answer's body, per attempt: json_timeout_ms. */
  readonly jsonTimeoutMs?: number;
  /** The clock json_timeout_ms runs on (default: real time). */
  readonly timer?: Timer;
}

/** A status we will retry after, carried out of one attempt. */
class RetryableStatus extends Error {
  constructor(
    readonly status: number,
    readonly bodyText: string,
    readonly retryAfter: string | string[] | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

const ERROR_BODY_LIMIT = 64 * 1024;

/** A response body as text, reading at most `limit` bytes (an error page can be anything). */
export async function readText(body: Readable, limit = ERROR_BODY_LIMIT): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    parts.push(chunk);
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).subarray(0, limit).toString('utf8');
}

/**
 * The most JSON iqp reads from a registry in one answer. Listings and manifests are kilobytes; a
 * pack with thousands of versions stays far below. Anything larger is a broken or hostile registry,
 * and reading it whole would exhaust memory before JSON.parse could fail.
 */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/**
 * Drops a response body without reading it (the connection goes with it). undici reports such an
 * abort as an 'error' event; nobody waits for that body any more, so the event is expected.
 */
export function discardBody(res: Response): void {
  res.body.on('error', () => {});
  res.body.destroy();
}

/**
 * A response body parsed as JSON, holding at most `limit` bytes: a Content-Length over the limit is
 * refused before reading, and a body that grows past it is dropped the moment it does.
 */
export async function readJson<T>(res: Response, what: string, limit = MAX_JSON_BYTES): Promise<T> {
  const tooLarge = (details: Record<string, unknown>) =>
    new IqpError('IQP_E_RESPONSE_TOO_LARGE', `${what}: the answer is larger than the ${limit} bytes of JSON iqp reads.`, { limit, ...details }, {
      hint: 'The registry is misbehaving or is not an iqp registry; check --registry.',
    });
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    discardBody(res);
    throw tooLarge({ content_length: declared });
  }
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      discardBody(res);
      throw tooLarge({});
    }
    parts.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(parts, size).toString('utf8')) as T;
  } catch {
    throw new IqpError('IQP_E_REGISTRY', `${what}: HTTP ${res.statusCode} with a body that is not JSON.`, { status: res.statusCode });
  }
}

/** A URL fit for logs and messages: no user-info (a password could sit there). */
export function displayUrl(url: URL): string {
  const shown = new URL(url);
  shown.username = '';
  shown.password = '';
  return shown.toString();
}

interface AnswerDeadline {
  readonly signal: AbortSignal;
  /** Starts the clock, once: a second call changes nothing. */
  start(): void;
  clear(): void;
}

/** Runs `fn` after `ms` and returns what cancels it: the json_timeout_ms clock (tests pass their own). */
export type Timer = (ms: number, fn: () => void) => () => void;

const realTimer: Timer = (ms, fn) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/** Aborts one attempt with AnswerTimeout `ms` after start(): the request, or the body being read. */
function answerDeadline(ms: number, timer: Timer): AnswerDeadline {
  const controller = new AbortController();
  let cancel: (() => void) | undefined;
  return {
    signal: controller.signal,
    start: () => {
      cancel ??= timer(ms, () => controller.abort(new AnswerTimeout(ms)));
    },
    clear: () => cancel?.(),
  };
}

export class RegistryClient {
  readonly baseUrl: string;
  readonly #token: string | null;
  readonly #retry: RetryPolicy;
  readonly #agent = new Agent({ connect: { timeout: 15_000 }, bodyTimeout: 120_000 });
  readonly #options: ClientOptions;
  readonly #jsonTimeoutMs: number;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#options = options;
    this.#jsonTimeoutMs = options.jsonTimeoutMs ?? DEFAULT_JSON_TIMEOUT_MS;
  }

  get hasToken(): boolean {
    return this.#token !== null;
  }

  /** Fails before any request is made when an admin call has no token to send. */
  requireToken(): void {
    if (this.#token === null) throw new IqpError('IQP_E_TOKEN_REQUIRED');
  }

  url(path: string): URL {
    return /^https?:\/\//i.test(path) ? new URL(path) : new URL(`${this.baseUrl}${path}`);
  }

  /** Display form of a request, for messages: `GET http://host/v1/packs/x`. */
  describe(method: Method, path: string): string {
    return `${method} ${displayUrl(this.url(path))}`;
  }

  /**
   * One logical request: `spec` (or a function giving it, called per attempt) is sent until it gets
   * an expected status, retrying network failures and 502/503/504 with backoff; `consume` reads the
   * response inside the same attempt, so a connection lost mid-body is retried too. When `progress`
   * got further than it ever had before a failure, the attempt count starts again (a long download
   * keeps going); a download that starts again from zero and stops short of that point has not
   * moved on. However far each gets, there are at most totalAttempts(policy) attempts.
   */
  send<T>(spec: RequestSpec | (() => Promise<RequestSpec> | RequestSpec), consume: (res: Response) => Promise<T>, progress?: () => number): Promise<T> {
    return this.#send(spec, consume, progress, false);
  }

  async #send<T>(spec: RequestSpec | (() => Promise<RequestSpec> | RequestSpec), consume: (res: Response) => Promise<T>, progress: (() => number) | undefined, timed: boolean): Promise<T> {
    let failures = 0;
    let attempts = 0;
    let furthest = progress?.() ?? 0;
    for (;;) {
      const current = typeof spec === 'function' ? await spec() : spec;
      const what = this.describe(current.method, current.path);
      attempts += 1;
      try {
        return await this.#attempt(current, what, consume, timed);
      } catch (err) {
        const retryable = err instanceof RetryableStatus || isNetworkError(err);
        const now = progress?.() ?? 0;
        if (now > furthest) {
          furthest = now;
          failures = 0;
        }
        failures += 1;
        if (!retryable || failures >= this.#retry.attempts || attempts >= totalAttempts(this.#retry)) throw this.#final(err, what, attempts);
        const wait = (err instanceof RetryableStatus ? retryAfterMs(err.retryAfter, this.#retry) : null) ?? backoffDelay(failures, this.#retry, this.#options.random);
        const reason = `${what}: ${err instanceof RetryableStatus ? err.message : networkReason(err)}`;
        this.#options.debug?.(`retry ${failures}/${this.#retry.attempts - 1} in ${wait} ms: ${reason}`);
        this.#options.onRetry?.(`${reason}; retrying in ${(wait / 1000).toFixed(1)} s (attempt ${failures + 1} of ${this.#retry.attempts})`);
        await sleep(wait);
      }
    }
  }

  /**
   * A JSON request; resolves to the parsed body (undefined for 204). Each attempt has
   * json_timeout_ms for the whole answer, counted from the request, or for an upload from the
   * answer's headers (sending it and the registry's check of it take as long as they take).
   */
  async json<T>(spec: RequestSpec): Promise<T> {
    return this.#send(
      spec,
      async (res) => {
        if (res.statusCode === 204) {
          await res.body.dump();
          return undefined as T;
        }
        return readJson<T>(res, this.describe(spec.method, spec.path));
      },
      undefined,
      true,
    );
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /**
   * One request and its answer. `timed`: the whole answer within json_timeout_ms (see json());
   * otherwise only an error answer's body is, and an expected answer is the consumer's to pace.
   */
  async #attempt<T>(spec: RequestSpec, what: string, consume: (res: Response) => Promise<T>, timed: boolean): Promise<T> {
    const deadline = answerDeadline(this.#jsonTimeoutMs, this.#options.timer ?? realTimer);
    try {
      if (timed && !spec.body) deadline.start();
      return await this.#exchange(spec, what, consume, timed, deadline);
    } finally {
      deadline.clear();
    }
  }

  async #exchange<T>(spec: RequestSpec, what: string, consume: (res: Response) => Promise<T>, timed: boolean, deadline: AnswerDeadline): Promise<T> {
    const url = this.url(spec.path);
    const headers: Record<string, string> = { 'user-agent': this.#options.userAgent ?? 'iqp', accept: 'application/json', ...spec.headers };
    if (spec.auth) {
      this.requireToken();
      // Never hand the token to another origin (a CDN in a download_url, say).
      if (url.origin !== new URL(this.baseUrl).origin) throw new IqpError('IQP_E_REGISTRY', `Refusing to send the token to ${url.origin}, which is not the registry.`);
      headers['authorization'] = `Bearer ${this.#token}`;
    }
    let body: string | Readable | undefined;
    let localError: unknown = null;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers['content-type'] = 'application/json';
    } else if (spec.body) {
      body = spec.body();
      // An error of our own file is not a network failure: remember it to report it as what it is.
      body.once('error', (err) => (localError = err));
    }
    const started = Date.now();
    let res: Response;
    try {
      res = await request(url, {
        method: spec.method,
        headers,
        body: body ?? null,
        dispatcher: this.#agent,
        // A JSON answer's headers have the whole deadline (raised, it is not cut at 60 s).
        headersTimeout: spec.headersTimeoutMs ?? (timed ? this.#jsonTimeoutMs : 60_000),
        signal: deadline.signal,
      });
    } catch (err) {
      // undici destroys the body with the connection's error too; only a non-network error is ours.
      if (localError && !isConnectionError(err)) throw toIqpError(localError);
      if (body && typeof body !== 'string') body.destroy();
      this.#options.debug?.(`${what} → ${(err as { code?: string }).code ?? 'error'} after ${Date.now() - started} ms`);
      throw err;
    }
    this.#options.debug?.(`${what} → ${res.statusCode} in ${Date.now() - started} ms`);
    const expected = spec.expect ?? [200];
    if (!expected.includes(res.statusCode) || timed) deadline.start();
    if (!expected.includes(res.statusCode)) {
      const text = await readText(res.body);
      if (RETRYABLE_STATUSES.has(res.statusCode)) throw new RetryableStatus(res.statusCode, text, res.headers['retry-after']);
      throw this.#routeHint(responseError(res.statusCode, text, what));
    }
    return consume(res);
  }

  /**
   * A path the registry does not serve (its 404 says "No route for …") means the URL is not the
   * registry's root: most often one that ends in /v1, which iqp adds itself.
   */
  #routeHint(err: IqpError): IqpError {
    if (err.code !== 'IQP_E_NOT_FOUND') return err;
    const base = new URL(this.baseUrl);
    if (/\/v1$/i.test(base.pathname)) {
      base.pathname = base.pathname.replace(/\/v1$/i, '');
      const root = displayUrl(base).replace(/\/+$/, '');
      return new IqpError(err.code, err.message, err.details, { hint: `The registry URL ends in /v1, which iqp adds itself: give the registry's root URL, --registry ${root}.` });
    }
    if (!err.message.startsWith('No route for ')) return err;
    return new IqpError(err.code, err.message, err.details, { hint: `The registry serves no such path: check that ${displayUrl(base)} is the registry's root URL (iqp adds /v1 itself) and that it runs iqp.` });
  }

  #final(err: unknown, what: string, attempts: number): IqpError {
    let coded: IqpError;
    if (err instanceof RetryableStatus) coded = responseError(err.status, err.bodyText, what);
    else if (isConnectionError(err)) coded = networkError(err, what, attempts);
    else coded = toIqpError(err);
    return redactError(coded, this.#token ? [this.#token] : []);
  }
}
