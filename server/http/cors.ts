/**
 * CORS for web apps served from another origin (a flash-card app at https://cards.example calling
 * the registry's /v1/auth and /v1/sync): the origins in `cors_origins` may read answers and send
 * the headers apps need. Bearer tokens, never cookies, so no credentials mode. It is the first
 * stage of the request pipeline (http/pipeline.ts), so cached reads carry the headers too;
 * preflights are answered here, before any route or guard.
 */
import type { Stage } from './pipeline.js';

const ALLOW_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
/** What apps send: tokens, JSON and NDJSON bodies, resumed downloads, publish signatures. */
const ALLOW_HEADERS = 'Authorization, Content-Type, Range, If-Range, If-None-Match, X-Iqp-Signature';
/** What apps read: back-off hints, download validators and ranges, the export's head. */
const EXPOSE_HEADERS = 'Retry-After, ETag, Content-Range, Accept-Ranges, Content-Length, WWW-Authenticate, X-Iqp-Sync-Head, Location';
const MAX_AGE_S = '600';

/** The CORS stage for these origins; none when no origin is configured. */
export function corsStage(origins: readonly string[]): Stage | null {
  if (origins.length === 0) return null;
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      res.setHeader('Vary', 'Origin');
      if (any || allowed.has(origin)) {
        res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin);
        res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
        if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
          res.writeHead(204, { 'Access-Control-Allow-Methods': ALLOW_METHODS, 'Access-Control-Allow-Headers': ALLOW_HEADERS, 'Access-Control-Max-Age': MAX_AGE_S, 'Content-Length': '0' });
          res.end();
          return;
        }
      }
    }
    next();
  };
}
