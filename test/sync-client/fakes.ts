/**
 * Stand-ins for the network, the clock and the token source in the client's unit tests: a fetch
 * whose answers each test scripts (and which records every request), virtual time that advances
 * by exactly what the client sleeps, and a store that records every write. End-to-end tests use
 * the real server instead (e2e.test.ts).
 */
import { MemoryStore, type SyncStore, type WriteBatch } from '../../src/sync-client/store.js';
import type { FetchLike } from '../../src/sync-client/transport.js';
import { aborted } from '../../src/sync-client/errors.js';
import type { TokenSource } from '../../src/sync-client/tokens.js';

export interface SentRequest {
  path: string;
  body: any;
  headers: Record<string, string>;
  signal: AbortSignal;
}

export type Handler = (req: SentRequest) => Response | Promise<Response>;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export function error(status: number, code: string, headers: Record<string, string> = {}): Response {
  return json(status, { error: { code, message: code } }, headers);
}

/**
 * A fetch that answers by route: each path has a queue of handlers used in turn (the last one
 * repeats); every request is recorded, and the number in flight is tracked.
 */
export class ScriptedFetch {
  readonly sent: SentRequest[] = [];
  inFlight = 0;
  maxInFlight = 0;
  readonly #routes = new Map<string, Handler[]>();

  on(path: string, ...handlers: Handler[]): this {
    this.#routes.set(path, [...(this.#routes.get(path) ?? []), ...handlers]);
    return this;
  }

  /** Replaces whatever is left for the path. */
  set(path: string, ...handlers: Handler[]): this {
    this.#routes.set(path, handlers);
    return this;
  }

  requests(path: string): SentRequest[] {
    return this.sent.filter((r) => r.path === path);
  }

  readonly fetch: FetchLike = async (url, init) => {
    const path = new URL(url).pathname;
    const req: SentRequest = { path, body: JSON.parse(init.body), headers: init.headers, signal: init.signal };
    this.sent.push(req);
    const queue = this.#routes.get(path);
    if (!queue || queue.length === 0) throw new Error(`no scripted answer for ${path}`);
    const handler = queue.length > 1 ? queue.shift()! : queue[0]!;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (init.signal.aborted) throw new DOMException('aborted', 'AbortError');
      return await handler(req);
    } finally {
      this.inFlight--;
    }
  };
}

/** A handler that holds the request until it is aborted (a long poll nobody answers). */
export const hang: Handler = (req) =>
  new Promise((_, reject) => {
    if (req.signal.aborted) return reject(new DOMException('aborted', 'AbortError'));
    req.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true });
  });

/** A handler that throws like fetch does when the network is down. */
export const offline: Handler = () => {
  throw new TypeError('fetch failed');
};

/** Virtual time: sleep() advances it by exactly what was asked and records it; nothing really waits. */
export class VirtualClock {
  ms = Date.UTC(2026, 11, 5, 10, 0, 0);
  readonly slept: number[] = [];
  now = (): number => this.ms;
  sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) throw aborted();
    this.slept.push(ms);
    this.ms += ms;
    // Yield to other tasks (a real timer would), so a loop on virtual time cannot starve the test.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw aborted();
  };
}

/** A MemoryStore that records each write and can be told to fail the next matching one (a crash). */
export class RecordingStore implements SyncStore {
  readonly inner: SyncStore;
  readonly writes: WriteBatch[] = [];
  failNext: ((batch: WriteBatch) => boolean) | undefined;

  constructor(inner: SyncStore = new MemoryStore()) {
    this.inner = inner;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  scan(prefix: string) {
    return this.inner.scan(prefix);
  }
  async write(batch: WriteBatch) {
    if (this.failNext?.(batch)) {
      this.failNext = undefined;
      throw new Error('simulated crash before this write');
    }
    this.writes.push(structuredClone(batch));
    await this.inner.write(batch);
  }
}

export class CountingTokens implements TokenSource {
  refreshes = 0;
  constructor(
    public token: string | null = 'tok-1',
    public next: Array<string | null> = ['tok-2'],
  ) {}
  async accessToken() {
    return this.token;
  }
  async refresh() {
    this.refreshes++;
    this.token = this.next.length > 0 ? this.next.shift()! : null;
    return this.token;
  }
}

/** A push answer applying every mutation as sent, versions counting up from `from`. */
export function applyAll(from = 1, seq = { n: 0 }): Handler {
  return (req) =>
    json(200, {
      results: req.body.mutations.map((m: any, i: number) => ({ mutation_id: m.mutation_id, status: 'applied', entity: m.entity, entity_id: m.entity_id, version: from + i, seq: ++seq.n })),
      head: seq.n,
    });
}

export function page(changes: any[], cursor: string, hasMore = false, extra: Record<string, unknown> = {}): Response {
  return json(200, { changes, conflicts: [], cursor, has_more: hasMore, head: 100, ...extra });
}

export function change(entity_id: string, version: number, seq: number, payload: Record<string, unknown> | null = { v: version }, entity = 'card') {
  return { entity, entity_id, op: payload === null ? 'delete' : 'upsert', payload, version, seq };
}
