/**
 * GET/HEAD /v1/packs/{id}/download[?version=]: the pack bytes with RFC 9110 range semantics,
 * strong ETags (the sha256) and caching headers a CDN can act on.
 */
import { Router, type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { IqpError } from '../../src/errors.js';
import { packFileName } from '../../src/pack/format.js';
import { isSemver } from '../../src/pack/manifest.js';
import type { Metrics } from '../metrics.js';
import type { PackService } from '../services/packs.js';
import type { BlobStore } from '../stores/types.js';
import { ifRangeAllows, noneMatch, parseRange } from '../http/range.js';

export const PACK_MEDIA_TYPE = 'application/vnd.iqp.pack+zstd';

export function downloadRoutes(d: { packs: PackService; blobs: BlobStore; metrics: Metrics }): Router {
  const r = Router();

  const handler = async (req: Request, res: Response) => {
    const rawVersion = req.query['version'];
    if (rawVersion !== undefined && (typeof rawVersion !== 'string' || !isSemver(rawVersion))) {
      throw new IqpError('IQP_E_INVALID_VERSION', `version ${JSON.stringify(rawVersion)} is not a semver version.`);
    }
    const versioned = typeof rawVersion === 'string';
    const pack = await d.packs.resolve(String(req.params['id']), versioned ? rawVersion : null);
    const size = pack.size_bytes;
    const etag = `"${pack.sha256}"`;
    const lastModified = new Date(pack.published_at).toUTCString();

    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', lastModified);
    // A version's bytes never change; the unversioned URL moves when a new version is published.
    res.setHeader('Cache-Control', versioned ? 'public, max-age=31536000, immutable' : 'public, no-cache');
    res.setHeader('Content-Disposition', `attachment; filename="${packFileName(pack.package_id, pack.version)}"`);
    res.setHeader('X-Iqp-Version', pack.version);
    res.setHeader('X-Iqp-Sha256', pack.sha256);

    if (noneMatch(req.headers['if-none-match'], etag)) {
      res.status(304).end();
      return;
    }
    let range = parseRange(req.headers.range, size);
    if (range.kind !== 'full' && !ifRangeAllows(req.headers['if-range'] as string | undefined, etag, lastModified)) range = { kind: 'full' };
    if (range.kind === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${size}`);
      throw new IqpError('IQP_E_RANGE_NOT_SATISFIABLE', `The pack is ${size} bytes; the requested range starts beyond it.`, { size_bytes: size });
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : size - 1;
    res.status(range.kind === 'partial' ? 206 : 200);
    if (range.kind === 'partial') res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Type', PACK_MEDIA_TYPE);
    res.setHeader('Content-Length', end - start + 1);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let body;
    try {
      body = await d.blobs.read(pack.sha256, { start, end });
    } catch (err) {
      // The row says the pack exists but its bytes are gone: a damaged data directory, not a client error.
      throw new IqpError('IQP_E_UNAVAILABLE', `The registry cannot read ${pack.package_id}@${pack.version}'s data.`, undefined, { cause: err });
    }
    res.on('finish', () => d.metrics.bytesServed.inc(end - start + 1));
    try {
      await pipeline(body, res);
    } catch (err) {
      // A client that hangs up mid-download is normal; pipeline has already closed the file.
      if ((err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE' || res.destroyed) return;
      throw err;
    }
  };

  r.get('/packs/:id/download', handler);
  r.head('/packs/:id/download', handler);
  return r;
}
