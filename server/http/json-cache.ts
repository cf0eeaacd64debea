/**
 * Read endpoints serialize once: the body and its ETag are cached per URL until the next write
 * (publish, deprecate, key change) bumps the generation. Repeat requests cost a map lookup, and
 * clients holding the ETag get 304 without a body.
 *
 * A cached answer is also served before Express (lookup + respond, from http/fast-path.ts): every
 * route that caches here is public and decides its answer from the URL and Host alone, so a URL
 * with a fresh entry gets exactly what its route would send, without the cost of routing to it.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { noneMatch } from './range.js';

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
  const notModified = ['ETag', etag, 'Cache-Control', cacheControl];
  return { generation, body, etag, cacheControl, route, notModified, ok: [...notModified, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(body.length)] };
}

const MAX_ENTRIES = 10_000;

export class JsonCache {
  #generation = 0;
  readonly #entries = new Map<string, CachedBody>();

  invalidate(): void {
    this.#generation += 1;
    this.#entries.clear();
  }

  /** The fresh entry for a GET or HEAD of this URL, if there is one. */
  lookup(req: IncomingMessage): CachedBody | undefined {
    // Bodies hold absolute URLs derived from Host, so the host is part of the key.
    const entry = this.#entries.get(`${req.headers.host ?? ''}${req.url ?? ''}`);
    return entry && entry.generation === this.#generation ? entry : undefined;
  }

  /** Serves the cached body for this URL, computing it with `make` when absent or stale. */
  async send(req: Request, res: Response, make: () => Promise<unknown>, cacheControl = 'no-cache'): Promise<void> {
    const key = `${req.headers.host ?? ''}${req.originalUrl}`;
    let entry = this.#entries.get(key);
    if (!entry || entry.generation !== this.#generation || entry.cacheControl !== cacheControl) {
      const generation = this.#generation;
      const body = Buffer.from(JSON.stringify(await make()), 'utf8');
      entry = cachedBody(generation, body, cacheControl, req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched');
      if (generation === this.#generation) {
        if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
        this.#entries.set(key, entry);
      }
    }
    respond(req, res, entry);
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
