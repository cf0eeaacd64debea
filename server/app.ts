/**
 * createApp builds the registry's Express app from its stores, with no side effects (no listen,
 * no migrations, no timers), so tests can use it directly; start.ts does the wiring for real.
 */
import express, { type Express, type Router } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { ServerConfig } from './config.js';
import { createValidator } from './http/contract.js';
import { bodyDeadline } from './http/deadlines.js';
import { createGuard } from './http/guard.js';
import { errorHandler, notFound } from './http/errors.js';
import { fastStage, type Track } from './http/fast-path.js';
import { pipeline } from './http/pipeline.js';
import { NOSNIFF } from './http/headers.js';
import { JsonCache, respond } from './http/json-cache.js';
import type { ListableRouter } from './http/methods.js';
import { markMount, routeLabel } from './http/route-label.js';
import { Slots } from './http/slots.js';
import { corsStage } from './http/cors.js';
import { Metrics } from './metrics.js';
import type { AuthServiceV1 } from './plugins/api.js';
import type { PluginStatus } from './plugins/host.js';
import { adminRoutes } from './routes/admin.js';
import type { RouteContract } from './routes/mount.js';
import { downloadFastPath, downloadRoutes } from './routes/download.js';
import { PUBLIC_CACHED, publicRoutes } from './routes/public.js';
import { type Clock, systemClock } from './services/clock.js';
import { KeyService } from './services/keys.js';
import { PackService } from './services/packs.js';
import { TokenService } from './services/tokens.js';
import { ReleaseService } from './services/releases.js';
import { adminReleaseRoutes, publicReleaseRoutes, RELEASE_CACHED } from './routes/releases.js';
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
  /** The auth plugin's service while one runs (asked per request: plugins start after the app is made). */
  readonly userAuth?: () => AuthServiceV1 | null;
  /** Check every JSON answer against its route's declared schema (tests): a mismatch is a 500. Costs nothing on cache hits. */
  readonly validateResponses?: boolean;
  /** Where /metrics gets its text when several processes serve the data directory (Metrics.render). */
  readonly gatherMetrics?: () => Promise<string>;
  /** Plugin routes (each plugin at /<id> on `router`, mounted at /v1; see plugins/host.ts) and their state for /v1/health. */
  readonly plugins?: { readonly router: Router; status(): PluginStatus };
}

export interface Registry {
  /** The routes. Serve `handler`, not this: it is the pipeline's last stage. */
  readonly app: Express;
  /** What the HTTP server calls for every request (http/pipeline.ts). */
  readonly handler: RequestListener;
  readonly metrics: Metrics;
  readonly cache: JsonCache;
  readonly services: { readonly packs: PackService; readonly keys: KeyService; readonly tokens: TokenService; readonly releases: ReleaseService };
}

export function createApp(deps: AppDeps): Registry {
  const { config, meta, blobs } = deps;
  const clock = deps.clock ?? systemClock;
  const log: Logger = deps.log ?? ((line) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`));
  // Every cache below checks the store's change counter, which writes by any process move.
  const cache = new JsonCache(config, [...Object.values(PUBLIC_CACHED), ...Object.values(RELEASE_CACHED)], () => meta.generation());
  const metrics = new Metrics(() => meta.countPacks(), () => cache, deps.gatherMetrics ?? null);
  const uploads = new Slots(config.maxConcurrentUploads);
  const redirectTtlS = config.downloadMode === 'redirect' ? config.downloadUrlTtlS : null;
  const packs = new PackService(meta, blobs, clock, {
    uploaded: (result, bytes) => {
      metrics.uploads.inc({ result });
      metrics.uploadBytes.inc(bytes);
    },
    skipped: (p, field) =>
      log({ level: 'warn', msg: `stored pack ${p.package_id}@${p.version} has a ${field} the semver library rejects; it is left out of listings until deprecated (docs/runbook.md)`, package_id: p.package_id, version: p.version, [field]: p[field] }),
  }, { maxUploadBytes: config.maxUploadBytes, maxContentBytes: config.maxContentBytes, maxCompressionRatio: config.maxCompressionRatio });
  const releasedPacks = async () =>
    (await Promise.all(config.channels.map((c) => deps.releases.listPublished(c)))).flat().flatMap((r) => r.artifacts.map((a) => ({ release_id: r.id, package_id: a.package_id, version: a.version })));
  const keys = new KeyService(meta, clock, releasedPacks);
  const tokens = new TokenService(meta, clock);
  const reportedReleases = new Set<number>();
  const releases = new ReleaseService(deps.releases, meta, keys, clock, config.channels, (r) =>
    reportedReleases.has(r.id) || !reportedReleases.add(r.id) || log({ level: 'warn', msg: `published release ${r.id} has a min_app_version the semver library rejects; latest skips it until it is deprecated (docs/runbook.md)`, release_id: r.id, min_app_version: r.min_app_version }),
  );

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag'); // ETags are set deliberately: sha256 for packs, cached-body hashes for JSON.
  app.set('query parser', 'simple');
  // Whose X-Forwarded-For/-Proto req.ip and req.protocol believe: the operator's trust_proxy (none by default).
  app.set('trust proxy', config.trustProxy === false || typeof config.trustProxy === 'number' ? config.trustProxy : [...config.trustProxy]);

  /** Counts a request when its response closes; `route` is called then (Express knows the route only after routing). */
  const observe = (req: IncomingMessage, res: ServerResponse, route: () => string): (() => void) => {
    const started = process.hrtime.bigint();
    const onClose = () => {
      const label = route();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const method = req.method ?? '';
      metrics.requests.record(method, label, res.statusCode, seconds);
      if (config.logRequests) log({ msg: 'request', method, path: (req as { originalUrl?: string }).originalUrl ?? req.url, status: res.statusCode, ms: Math.round(seconds * 1000) });
    };
    res.on('close', onClose);
    return () => res.off('close', onClose);
  };
  const track: Track = (req, res, route) => observe(req, res, () => route);

  app.use((req, res, next) => {
    observe(req, res, () => routeLabel(req));
    // Every answer, JSON or pack bytes: the fast path's prepared header lists start with it too.
    res.setHeader(NOSNIFF[0], NOSNIFF[1]);
    next();
  });
  app.use(bodyDeadline(config.requestTimeoutMs));

  // Every core route is declared in src/api/core and mounted with its schemas (http/contract.ts).
  const contract: RouteContract = {
    ajv: createValidator(),
    options: { guard: createGuard({ tokens, ...(deps.userAuth ? { userAuth: deps.userAuth } : {}) }), validateResponses: deps.validateResponses ?? false },
  };
  app.use('/v1', markMount, publicRoutes({ config, packs, keys, meta, blobs, cache, metrics, log, ...(deps.plugins ? { plugins: () => deps.plugins!.status() } : {}) }, contract));
  app.use('/v1', markMount, downloadRoutes({ packs, blobs, metrics, log, redirectTtlS }, contract));
  app.use('/v1', markMount, publicReleaseRoutes({ config, releases, cache }, contract));
  app.use('/v1/admin', markMount, adminRoutes({ config, packs, keys, meta, uploads }, contract));
  app.use('/v1/admin', markMount, adminReleaseRoutes({ config, releases, cache }, contract));
  if (deps.plugins) app.use('/v1', markMount, deps.plugins.router);
  app.use(notFound(app.router as unknown as ListableRouter));
  app.use(errorHandler(log));

  // In front of Express: CORS first (cached reads need its headers as much as routes do), then
  // cached JSON bodies and pack bytes, answered before Express when they can be answered exactly
  // as the routes above would (http/fast-path.ts says why and how).
  const cors = corsStage(config.corsOrigins);
  const handler = pipeline(
    [
      ...(cors ? [cors] : []),
      fastStage(
        [
          (req, res, t) => {
            const entry = cache.lookup(req);
            if (!entry) return false;
            t(req, res, entry.route);
            respond(req, res, entry);
            return true;
          },
          downloadFastPath({ packs, blobs, metrics, log, redirectTtlS }),
        ],
        track,
      ),
    ],
    app,
  );

  return { app, handler, metrics, cache, services: { packs, keys, tokens, releases } };
}
