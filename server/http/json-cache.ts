/**
 * Read endpoints serialize once: the body and its ETag are cached until the next write (publish,
 * deprecate, key or release change), by any process on the same database, moves the store's change
 * counter (MetadataStore.generation). Repeat requests cost a map lookup and that counter's read,
 * and clients holding the ETag get 304 without a body.
 *
 * An entry's key is what its answer depends on, and nothing else: the route, the base of its links
 * (http/base-url.ts) when it has any, its path parameters, and the raw values of the query
 * parameters it reads (a repeated one is an array, so it never shares a key with a single one).
 * Other query parameters and headers cannot make new entries, and the cache is capped in bytes
 * (json_cache_bytes), so no stream of requests can grow it past that.
 *
 * A cached answer is also served before Express (lookup + respond, from http/fast-path.ts): every
 * route that caches here is public and decides its answer from that key alone, so a request whose
 * key has a fresh entry gets exactly what its route would send, without the cost of routing to it.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import type { Request, Response } from 'express';
import type { ServerConfig } from '../config.js';
import { requestBase } from './base-url.js';
import { NOSNIFF } from './headers.js';
import { noneMatch } from './range.js';

/** A route whose answers are cached: declared by the route file, next to the route. */
export interface CachedRoute {
  /** Mount path + route path, as Express matches it and the metrics label it: `/v1/packs/:id`. */
  readonly route: string;
  /** The query parameters the answer depends on. */
  readonly query: readonly string[];
  /** Whether the answer holds absolute links, and so depends on the request's base URL. */
  readonly links: boolean;
}

export interface CachedBody {
  readonly generation: number;
  readonly body: Buffer;
  readonly etag: string;
  readonly cacheControl: string;
  /** The route that made it, as the request metrics label it (baseUrl + route path). */
  readonly route: string;
  /** The headers of a 200 and of a 304, in order, as res.writeHead takes them (built once, not per request). */
  readonly ok: readonly string[];
  readonly notModified: readonly string[];
}

function cachedBody(generation: number, body: Buffer, cacheControl: string, route: string): CachedBody {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  const notModified = [...NOSNIFF, 'ETag', etag, 'Cache-Control', cacheControl];
  return { generation, body, etag, cacheControl, route, notModified, ok: [...notModified, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(body.length)] };
}

/** What an entry costs besides its body: its key (UTF-16), header lists, map slot. */
const ENTRY_OVERHEAD = 512;

interface Slot {
  readonly entry: CachedBody;
  readonly bytes: number;
  /** Served since the eviction sweep last passed it (second-chance eviction). */
  used: boolean;
}

type Value = string | string[] | undefined;
type Values = Readonly<Record<string, Value>>;

/** One value of a key, self-delimiting (length-prefixed), so no two lists of values make the same key. */
function keyPart(v: Value | null): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string') return `${v.length}:${v}`;
  let out = `[${v.length}`;
  for (const item of v) out += keyPart(item);
  return out;
}

function keyOf(spec: CachedRoute, base: string | null, params: readonly string[], query: Values): string {
  let key = `${spec.route} ${keyPart(base)}`;
  for (const p of params) key += keyPart(p);
  for (const name of spec.query) key += keyPart(query[name]);
  return key;
}

/**
 * The values of `names` in a raw query string exactly as querystring.parse (Express's 'simple'
 * query parser) gives them, without its cost (over a microsecond for one short pair) when there is
 * nothing to decode; anything with an escape, a '+' or very many pairs goes to querystring.parse.
 */
export function queryValues(qs: string, names: readonly string[]): Values {
  if (qs.includes('%') || qs.includes('+')) return parseQuery(qs);
  const out: Record<string, string | string[]> = {};
  let pairs = 0;
  for (const pair of qs.split('&')) {
    if (pair === '') continue;
    if (++pairs > 1000) return parseQuery(qs); // its maxKeys: pairs past 1000 are dropped
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (!names.includes(name)) continue;
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    const seen = out[name];
    out[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return out;
}

/** A cached route's path as a pattern over the raw URL path; parameters only of unreserved characters (nothing to decode). */
interface Matcher {
  readonly spec: CachedRoute;
  readonly pattern: RegExp;
}

export class JsonCache {
  /** The change counter the entries were made at; all are dropped when it moves. */
  #generation = -1;
  #bytes = 0;
  readonly #entries = new Map<string, Slot>();
  readonly #exact = new Map<string, CachedRoute>();
  readonly #patterns: Matcher[] = [];

  /**
   * `routes` in the order Express tries them; a path with no parameters wins over patterns, as
   * it does in the routers (each registers its literal paths before the patterns they overlap).
   */
  constructor(
    readonly config: Pick<ServerConfig, 'publicUrl' | 'host' | 'port' | 'trustProxy' | 'jsonCacheBytes'>,
    routes: readonly CachedRoute[],
    private readonly changes: () => number,
  ) {
    for (const spec of routes) {
      if (!spec.route.includes(':')) this.#exact.set(spec.route, spec);
      else this.#patterns.push({ spec, pattern: new RegExp(`^${spec.route.replace(/[.]/g, '\\.').replace(/:\w+/g, '([A-Za-z0-9._~-]+)')}$`) });
    }
  }

  /** Bytes held (bodies plus an estimate of each entry's overhead) and entries, for the metrics. */
  get bytes(): number {
    return this.#bytes;
  }
  get entries(): number {
    return this.#entries.size;
  }

  /** The store's change counter now; entries made at an older one are dropped first. */
  #current(): number {
    const generation = this.changes();
    if (generation !== this.#generation) {
      this.#generation = generation;
      this.#entries.clear();
      this.#bytes = 0;
    }
    return generation;
  }

  /**
   * The fresh entry for a GET or HEAD of this raw request, if there is one. Only URLs in the plain
   * form (exact lower-case path, unreserved path parameters) are looked up; any other form goes
   * to the route, which caches under the same key.
   */
  lookup(req: IncomingMessage): CachedBody | undefined {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    let spec = this.#exact.get(path);
    let params: string[] = [];
    if (!spec) {
      for (const m of this.#patterns) {
        const match = m.pattern.exec(path);
        if (match) {
          spec = m.spec;
          params = match.slice(1);
          break;
        }
      }
      if (!spec) return undefined;
    }
    if (url.includes('#')) return undefined;
    let base: string | null = null;
    if (spec.links) {
      try {
        base = requestBase(req, this.config);
      } catch {
        return undefined; // the route refuses it
      }
    }
    const query = spec.query.length > 0 && q >= 0 ? queryValues(url.slice(q + 1), spec.query) : {};
    const generation = this.#current();
    const slot = this.#entries.get(keyOf(spec, base, params, query));
    if (!slot || slot.entry.generation !== generation) return undefined;
    slot.used = true;
    return slot.entry;
  }

  /** Serves the cached answer for this request, computing it with `make` (given the links' base) when absent or stale. */
  async send(req: Request, res: Response, spec: CachedRoute, make: (base: string) => Promise<unknown>, cacheControl = 'no-cache'): Promise<void> {
    const base = spec.links ? requestBase(req, this.config) : null;
    const params = Object.values(req.params as Record<string, string>);
    const key = keyOf(spec, base, params, req.query as Values);
    const generation = this.#current();
    let entry = this.#entries.get(key)?.entry;
    if (!entry || entry.generation !== generation || entry.cacheControl !== cacheControl) {
      const body = Buffer.from(JSON.stringify(await make(base ?? '')), 'utf8');
      entry = cachedBody(generation, body, cacheControl, spec.route);
      // A write while `make` read the database may have made the answer stale: keep it only if none happened.
      if (generation === this.#current()) this.#store(key, entry);
    }
    respond(req, res, entry);
  }

  #store(key: string, entry: CachedBody): void {
    const bytes = entry.body.length + key.length * 2 + ENTRY_OVERHEAD;
    const old = this.#entries.get(key);
    if (old) {
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
    // An answer bigger than the whole cache is served but not kept.
    if (bytes > this.config.jsonCacheBytes) return;
    // Second chance (CLOCK): the oldest entry goes unless it was served since the sweep last
    // passed it; then it moves to the back instead. As good as least-recently-used here, and a
    // hit costs one flag write rather than moving the entry in the map.
    while (this.#bytes + bytes > this.config.jsonCacheBytes) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Slot];
      this.#entries.delete(oldestKey);
      if (oldest.used) {
        oldest.used = false;
        this.#entries.set(oldestKey, oldest);
      } else {
        this.#bytes -= oldest.bytes;
      }
    }
    this.#entries.set(key, { entry, bytes, used: false });
    this.#bytes += bytes;
  }
}

/**
 * The answer for a cached body: 304 to a matching If-None-Match, else the body (none for HEAD).
 * One writeHead with the prepared header list costs less than a setHeader per header, and sends
 * the same bytes (same names, values and order; headers set earlier would come first).
 */
export function respond(req: IncomingMessage, res: ServerResponse, entry: CachedBody): void {
  if (noneMatch(req.headers['if-none-match'], entry.etag)) {
    res.writeHead(304, entry.notModified as string[]);
    res.end();
    return;
  }
  res.writeHead(200, entry.ok as string[]);
  res.end(req.method === 'HEAD' ? undefined : entry.body);
}
