/**
 * Read endpoints serialize once: the body and its ETag are cached per URL until the next write
 * (publish, deprecate, key change) bumps the generation. Repeat requests cost a map lookup, and
 * clients holding the ETag get 304 without a body.
 */
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { noneMatch } from './range.js';

interface Entry {
  readonly generation: number;
  readonly body: Buffer;
  readonly etag: string;
}

const MAX_ENTRIES = 10_000;

export class JsonCache {
  #generation = 0;
  readonly #entries = new Map<string, Entry>();

  invalidate(): void {
    this.#generation += 1;
    this.#entries.clear();
  }

  /** Serves the cached body for this URL, computing it with `make` when absent or stale. */
  async send(req: Request, res: Response, make: () => Promise<unknown>, cacheControl = 'no-cache'): Promise<void> {
    // Bodies hold absolute URLs derived from Host, so the host is part of the key.
    const key = `${req.headers.host ?? ''}${req.originalUrl}`;
    let entry = this.#entries.get(key);
    if (!entry || entry.generation !== this.#generation) {
      const generation = this.#generation;
      const body = Buffer.from(JSON.stringify(await make()), 'utf8');
      entry = { generation, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      if (generation === this.#generation) {
        if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
        this.#entries.set(key, entry);
      }
    }
    res.setHeader('ETag', entry.etag);
    res.setHeader('Cache-Control', cacheControl);
    if (noneMatch(req.headers['if-none-match'], entry.etag)) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', entry.body.length);
    res.status(200).end(req.method === 'HEAD' ? undefined : entry.body);
  }
}
