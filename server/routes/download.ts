/**
 * GET/HEAD /v1/packs/{id}/download[?version=]: the pack bytes with RFC 9110 range semantics,
 * strong ETags (the sha256) and caching headers a CDN can act on.
 *
 * Two ways in, one implementation: the Express route below (every URL form, validation, every
 * error), and downloadFastPath, a stage before Express for the plain form of this URL when the
 * pack's record is already resolved (see http/fast-path.ts for why). Both plan with planDownload
 * and answer with serveDownload; the fast path takes only what it can answer exactly as the route
 * would, and hands everything else to Express untouched.
 */
import type { Request, Response, Router } from 'express';
import * as api from '../../src/api/core/packs.js';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IqpError } from '../../src/errors.js';
import { packFileName } from '../../src/pack/format.js';
import { isSemver } from '../../src/pack/manifest.js';
import { ANSWERED, type ValidatedRequest } from '../http/contract.js';
import { codedError, logServerFault } from '../http/errors.js';
import type { Track } from '../http/fast-path.js';
import { NOSNIFF } from '../http/headers.js';
import { ifRangeAllows, noneMatch, parseRange } from '../http/range.js';
import { sendFileRange } from '../http/send-file.js';
import type { Metrics } from '../metrics.js';
import type { PackService } from '../services/packs.js';
import type { BlobFile } from '../stores/fs-blobs.js';
import type { BlobStore, PackRecord } from '../stores/types.js';
import { declaredRouter, type RouteContract } from './mount.js';


/** The metrics label of this route (what Express reports as baseUrl + route.path). */
export const DOWNLOAD_ROUTE = '/v1/packs/:id/download';

/** A blob store that can hand out its files for positional reads (FsBlobStore). */
interface FileBlobs {
  openFile(sha256: string): Promise<BlobFile>;
}

function hasFiles(blobs: BlobStore): blobs is BlobStore & FileBlobs {
  return typeof (blobs as Partial<FileBlobs>).openFile === 'function';
}

interface PackHeaders {
  readonly etag: string;
  readonly lastModified: string;
  /** Set on every answer about this pack, in this order. */
  readonly list: readonly (readonly [string, string])[];
}

// A record is immutable and cached by PackService until the next change, so its headers are too.
const headerCache = new WeakMap<PackRecord, { versioned?: PackHeaders; latest?: PackHeaders }>();

export function packHeaders(pack: PackRecord, versioned: boolean): PackHeaders {
  let entry = headerCache.get(pack);
  if (!entry) headerCache.set(pack, (entry = {}));
  const cached = versioned ? entry.versioned : entry.latest;
  if (cached) return cached;
  const etag = `"${pack.sha256}"`;
  const lastModified = new Date(pack.published_at).toUTCString();
  const headers: PackHeaders = {
    etag,
    lastModified,
    list: [
      NOSNIFF,
      ['Accept-Ranges', 'bytes'],
      ['ETag', etag],
      ['Last-Modified', lastModified],
      // A version's bytes never change; the unversioned URL moves when a new version is published.
      ['Cache-Control', versioned ? 'public, max-age=31536000, immutable' : 'public, no-cache'],
      ['Content-Disposition', `attachment; filename="${packFileName(pack.package_id, pack.version)}"`],
      ['X-Iqp-Version', pack.version],
      ['X-Iqp-Sha256', pack.sha256],
    ],
  };
  if (versioned) entry.versioned = headers;
  else entry.latest = headers;
  return headers;
}

type Plan =
  | { readonly kind: 'not-modified' }
  | { readonly kind: 'unsatisfiable' }
  | { readonly kind: 'send'; readonly partial: boolean; readonly start: number; readonly end: number };

/** What to answer: 304, 416, or these bytes (200 or 206). */
function planDownload(req: IncomingMessage, pack: PackRecord, h: PackHeaders): Plan {
  if (noneMatch(req.headers['if-none-match'], h.etag)) return { kind: 'not-modified' };
  const size = pack.size_bytes;
  let range = parseRange(req.headers.range, size);
  if (range.kind !== 'full' && !ifRangeAllows(req.headers['if-range'] as string | undefined, h.etag, h.lastModified)) range = { kind: 'full' };
  if (range.kind === 'unsatisfiable') return { kind: 'unsatisfiable' };
  return range.kind === 'partial' ? { kind: 'send', partial: true, start: range.start, end: range.end } : { kind: 'send', partial: false, start: 0, end: size - 1 };
}

/** Status and the headers that depend on the range, after packHeaders' list. */
function writeSendHeaders(res: ServerResponse, pack: PackRecord, plan: Extract<Plan, { kind: 'send' }>): void {
  res.statusCode = plan.partial ? 206 : 200;
  if (plan.partial) res.setHeader('Content-Range', `bytes ${plan.start}-${plan.end}/${pack.size_bytes}`);
  res.setHeader('Content-Type', PACK_MEDIA_TYPE);
  res.setHeader('Content-Length', plan.end - plan.start + 1);
}

function unavailable(pack: PackRecord, err: unknown): IqpError {
  // The row says the pack exists but its bytes are gone: a damaged data directory, not a client error.
  return new IqpError('IQP_E_UNAVAILABLE', `The registry cannot read ${pack.package_id}@${pack.version}'s data.`, undefined, { cause: err });
}

interface DownloadDeps {
  readonly blobs: BlobStore;
  readonly metrics: Metrics;
  readonly log: (line: Record<string, unknown>) => void;
  /** download_mode = redirect: answer with a 302 to the blob store's URL, valid this many seconds; null: send the bytes. */
  readonly redirectTtlS?: number | null;
}

/**
 * The 302 of download_mode = redirect, with the pack's own headers (ETag, sha256, version) so a
 * client knows what to expect there. A presigned URL expires, so that answer is never stored; a
 * public URL of a content-addressed object never changes, so a versioned one may be kept for ever.
 */
async function redirectDownload(res: ServerResponse, pack: PackRecord, h: PackHeaders, versioned: boolean, blobs: Required<Pick<BlobStore, 'downloadUrl'>>, ttlS: number): Promise<void> {
  let target: { url: string; permanent: boolean };
  try {
    target = await blobs.downloadUrl(pack.sha256, { expiresInS: ttlS, fileName: packFileName(pack.package_id, pack.version), contentType: PACK_MEDIA_TYPE });
  } catch (err) {
    throw unavailable(pack, err);
  }
  for (const [name, value] of h.list) res.setHeader(name, value);
  res.setHeader('Cache-Control', !target.permanent ? 'private, no-store' : versioned ? 'public, max-age=31536000, immutable' : 'public, no-cache');
  res.setHeader('Location', target.url);
  res.setHeader('Content-Length', 0);
  res.statusCode = 302;
  res.end();
}

/**
 * The one download implementation, for both ways in: answers a planned 304, HEAD, 200 or 206 for
 * `pack` and resolves once the answer is out. It throws (IQP_E_UNAVAILABLE) only before the
 * response has started (the pack's bytes cannot be opened, or the first read fails), so the caller
 * can answer the error; a failure mid-stream is logged as a server fault and the connection cut,
 * which is all HTTP allows once a status has gone out.
 */
async function serveDownload(req: IncomingMessage, res: ServerResponse, pack: PackRecord, versioned: boolean, h: PackHeaders, plan: Exclude<Plan, { kind: 'unsatisfiable' }>, d: DownloadDeps): Promise<void> {
  const { downloadUrl } = d.blobs;
  if (plan.kind !== 'not-modified' && d.redirectTtlS != null && downloadUrl) {
    await redirectDownload(res, pack, h, versioned, { downloadUrl: downloadUrl.bind(d.blobs) }, d.redirectTtlS);
    return;
  }
  if (plan.kind === 'not-modified' || req.method === 'HEAD') {
    for (const [name, value] of h.list) res.setHeader(name, value);
    if (plan.kind === 'not-modified') res.statusCode = 304;
    else writeSendHeaders(res, pack, plan);
    res.end();
    return;
  }
  const { start, end } = plan;
  let source: { file: BlobFile } | { stream: Readable };
  try {
    source = hasFiles(d.blobs) ? { file: await d.blobs.openFile(pack.sha256) } : { stream: await d.blobs.read(pack.sha256, { start, end }) };
  } catch (err) {
    throw unavailable(pack, err);
  }
  const served = () => d.metrics.bytesServed.inc(end - start + 1);
  try {
    for (const [name, value] of h.list) res.setHeader(name, value);
    writeSendHeaders(res, pack, plan);
    res.on('finish', served);
    if ('file' in source) await sendFileRange(source.file, res, start, end);
    else await pipeline(source.stream, res);
  } catch (err) {
    // A client that hangs up is normal, and there is no one left to answer.
    if (res.destroyed) return;
    if (!res.headersSent) {
      res.off('finish', served);
      for (const [name] of h.list) res.removeHeader(name);
      for (const name of ['Content-Range', 'Content-Type', 'Content-Length']) res.removeHeader(name);
      throw unavailable(pack, err);
    }
    logServerFault(d.log, req.method ?? 'GET', (req.url ?? '').split('?')[0]!, err, codedError(err));
    res.destroy();
  } finally {
    if ('file' in source) source.file.close();
    else if (!source.stream.destroyed) source.stream.destroy();
  }
}

/** The 416 for a range past the end: its Content-Range names the size, as RFC 9110 asks. */
function unsatisfiable(res: ServerResponse, pack: PackRecord, h: PackHeaders): IqpError {
  for (const [name, value] of h.list) res.setHeader(name, value);
  res.setHeader('Content-Range', `bytes */${pack.size_bytes}`);
  return new IqpError('IQP_E_RANGE_NOT_SATISFIABLE', `The pack is ${pack.size_bytes} bytes; the requested range starts beyond it.`, { size_bytes: pack.size_bytes });
}

export function downloadRoutes(d: DownloadDeps & { packs: PackService }, contract: RouteContract): Router {
  const { router, mount } = declaredRouter(contract);

  const handler = async ({ params, query }: ValidatedRequest<typeof api.download>, req: Request, res: Response): Promise<typeof ANSWERED> => {
    const rawVersion = query.version;
    if (rawVersion !== undefined && !isSemver(rawVersion)) {
      throw new IqpError('IQP_E_INVALID_VERSION', `version ${JSON.stringify(rawVersion)} is not a semver version.`);
    }
    const versioned = rawVersion !== undefined;
    const pack = await d.packs.resolve(params.id, versioned ? rawVersion : null);
    const h = packHeaders(pack, versioned);
    const plan = planDownload(req, pack, h);
    if (plan.kind === 'unsatisfiable') throw unsatisfiable(res, pack, h);
    await serveDownload(req, res, pack, versioned, h, plan, d);
    return ANSWERED;
  };

  mount(api.download, handler);
  mount(api.downloadHead, (input, req, res) => handler(input, req, res));
  return router;
}

/** /v1/packs/<id>/download[?version=<v>] with only unreserved characters (nothing to decode). */
const PLAIN_URL = /^\/v1\/packs\/([A-Za-z0-9._~-]+)\/download(?:\?version=([0-9A-Za-z.-]+))?$/;

/**
 * The download route's way in for the common case, on the bare node:http objects: a GET or HEAD
 * of the plain URL (lower case, no trailing slash, no other query parameter, nothing
 * percent-encoded) whose record PackService has already resolved since the last change. Returns
 * false, having touched nothing, for anything else, and for a range it would refuse; a taken
 * request whose bytes turn out unreadable before anything was sent goes on to Express (`fallback`),
 * so that errors keep coming from one place.
 */
export function downloadFastPath(d: DownloadDeps & { packs: PackService }) {
  return (req: IncomingMessage, res: ServerResponse, track: Track, fallback: () => void): boolean => {
    const m = PLAIN_URL.exec(req.url ?? '');
    if (!m) return false;
    const version = m[2] ?? null;
    if (version !== null && !isSemver(version)) return false;
    const pack = d.packs.peekResolved(m[1]!, version);
    if (!pack) return false;
    const h = packHeaders(pack, version !== null);
    const plan = planDownload(req, pack, h);
    if (plan.kind === 'unsatisfiable') return false;
    const untrack = track(req, res, DOWNLOAD_ROUTE);
    serveDownload(req, res, pack, version !== null, h, plan, d).catch(() => {
      // Nothing was sent: Express answers, as the route does, and counts the request.
      untrack();
      fallback();
    });
    return true;
  };
}
