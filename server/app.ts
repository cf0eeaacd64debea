/**
 * createApp builds the registry's Express app from its stores, with no side effects (no listen,
 * no migrations, no timers), so tests can use it directly; start.ts does the wiring for real.
 */
import express, { type Express } from 'express';
import type { ServerConfig } from './config.js';
import { errorHandler, notFound } from './http/errors.js';
import { JsonCache } from './http/json-cache.js';
import { Metrics } from './metrics.js';
import { adminRoutes } from './routes/admin.js';
import { downloadRoutes } from './routes/download.js';
import { publicRoutes } from './routes/public.js';
import { type Clock, systemClock } from './services/clock.js';
import { KeyService } from './services/keys.js';
import { PackService } from './services/packs.js';
import { TokenService } from './services/tokens.js';
import { ReleaseService } from './services/releases.js';
import { adminReleaseRoutes, publicReleaseRoutes } from './routes/releases.js';
import type { ReleaseStore } from './stores/release-types.js';
import type { BlobStore, MetadataStore } from './stores/types.js';

export type Logger = (line: Record<string, unknown>) => void;

export interface AppDeps {
  readonly config: ServerConfig;
  readonly meta: MetadataStore;
  readonly blobs: BlobStore;
  readonly releases: ReleaseStore;
  readonly clock?: Clock;
  readonly log?: Logger;
}

export interface Registry {
  readonly app: Express;
  readonly metrics: Metrics;
  readonly services: { readonly packs: PackService; readonly keys: KeyService; readonly tokens: TokenService; readonly releases: ReleaseService };
}

export function createApp(deps: AppDeps): Registry {
  const { config, meta, blobs } = deps;
  const clock = deps.clock ?? systemClock;
  const log: Logger = deps.log ?? ((line) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`));
  const cache = new JsonCache();
  const metrics = new Metrics(() => meta.countPacks());
  const changed = () => cache.invalidate();
  const packs = new PackService(meta, blobs, clock, {
    changed,
    uploaded: (result, bytes) => {
      metrics.uploads.inc({ result });
      metrics.uploadBytes.inc(bytes);
    },
  }, { maxUploadBytes: config.maxUploadBytes, maxContentBytes: config.maxContentBytes });
  const keys = new KeyService(meta, clock, changed);
  const tokens = new TokenService(meta, clock);
  const releases = new ReleaseService(deps.releases, meta, keys, clock, config.channels, changed);

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // ETags are set deliberately: sha256 for packs, cached-body hashes for JSON.
  app.set('query parser', 'simple');
  app.set('trust proxy', 'loopback');

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('close', () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.requests.inc({ method: req.method, route, status: String(res.statusCode) });
      metrics.latency.observe({ method: req.method, route }, seconds);
      if (config.logRequests) log({ msg: 'request', method: req.method, path: req.originalUrl, status: res.statusCode, ms: Math.round(seconds * 1000) });
    });
    next();
  });

  app.use('/v1', publicRoutes({ config, packs, keys, meta, blobs, cache, metrics }));
  app.use('/v1', downloadRoutes({ packs, blobs, metrics }));
  app.use('/v1', publicReleaseRoutes({ config, releases, tokens, cache }));
  app.use('/v1/admin', adminRoutes({ config, packs, keys, tokens, meta }));
  app.use('/v1/admin', adminReleaseRoutes({ config, releases, tokens, cache }));
  app.use(notFound);
  app.use(errorHandler(log));

  return { app, metrics, services: { packs, keys, tokens, releases } };
}
