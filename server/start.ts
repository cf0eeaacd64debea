/** Serves the app on a port over a data directory: takes its lock, recovers it, and listens. */
import { pluginAudit } from './plugins/audit.js';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp, type Logger, type Registry } from './app.js';
import type { ServerConfig } from './config.js';
import { type OpenedStores, openStores, type Recovery, recoverDataDir } from './datadir.js';
import { type DataDirLock, lockDataDir } from './lock.js';
import { createHttpServer, drain } from './http/connections.js';
import { Router } from 'express';
import { storageChoice } from './config.js';
import { createValidator } from './http/contract.js';
import { knownPaths, type ListableRouter } from './http/methods.js';
import { AUTH_V1, type PluginClock } from './plugins/api.js';
import { createGuard } from './http/guard.js';
import { PluginHost } from './plugins/host.js';
import type { PeerChannel } from './plugins/peers.js';
import { coreShapes } from './plugins/routes.js';
import { type OpenedPluginDatabase, openPluginDatabase } from './plugins/open-db.js';
import type { ServerFile } from './plugins/server-file.js';

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  readonly registry: Registry;
  readonly stores: OpenedStores;
  /** What start-up recovery did; null for a server started with `lock: false`. */
  readonly recovery: Recovery | null;
  /** The plugins server.json enables: which run, which failed (absent for a test's hand-made server). */
  readonly plugins?: PluginHost;
  /**
   * Stops serving: no new connections, requests in progress finish (plugins' waits end at once),
   * and any still running after graceMs (default DRAIN_GRACE_MS) are cut; then closes the stores.
   */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  /**
   * false: neither take the data directory's lock nor recover it, for a process serving beside the
   * one that holds it (a worker under a primary that ran recovery); the directory must be migrated
   * or free to migrate. Default true: own the directory until close().
   */
  readonly lock?: boolean;
  /** Check every JSON answer against its route's declared schema (test helpers turn it on). */
  readonly validateResponses?: boolean;
  /** The other processes serving this data directory, for plugins' messages to their twins (a cluster worker's); none by default. */
  readonly peers?: PeerChannel;
  /** Where /metrics gets its text (a cluster worker asks its primary for every worker's); default this process's own. */
  readonly gatherMetrics?: () => Promise<string>;
  /** The plugins' clock (tests move it by hand to cross token lifetimes); default the system's. */
  readonly pluginClock?: PluginClock;
  /**
   * server.json as read when the registry started (a cluster worker gets its primary's, so that a
   * worker started later to replace one runs the same plugins and config); default: read it now.
   */
  readonly serverFile?: ServerFile;
}

export async function startServer(config: ServerConfig, log?: Logger, options: StartOptions = {}): Promise<RunningServer> {
  // Settings that cannot work together are refused before anything is created or locked.
  const storage = storageChoice(config);
  let lock: DataDirLock | null = null;
  let stores: OpenedStores | null = null;
  let pluginDb: OpenedPluginDatabase | null = null;
  const logger: Logger = log ?? ((line) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`));
  try {
    let recovery: Recovery | null = null;
    if (options.lock === false) {
      stores = await openStores(config.dataDir, 'iqp server start (worker)', storage);
    } else {
      lock = lockDataDir(config.dataDir, 'iqp server start');
      ({ stores, recovery } = await recoverDataDir(lock, storage));
    }
    const opened = stores;
    const held = lock;
    // Plugins get their own connection (their transactions never mix with the core's) and routes on
    // a router the app mounts before its 404, filled once they have started.
    const plugDb = await openPluginDatabase(config.dataDir, storage.database, { log: logger });
    pluginDb = plugDb;
    const pdb = plugDb.db;
    const pluginRoutes = Router();
    const stopping = new AbortController();
    let pluginHost: PluginHost | null = null;
    const registry = createApp({
      config,
      meta: opened.meta,
      blobs: opened.blobs,
      releases: opened.releases,
      log: logger,
      validateResponses: options.validateResponses ?? false,
      ...(options.gatherMetrics ? { gatherMetrics: options.gatherMetrics } : {}),
      userAuth: () => pluginHost?.service(AUTH_V1) ?? null,
      plugins: { router: pluginRoutes, status: () => pluginHost?.status() ?? { loaded: [], failed: [] } },
    });
    pluginHost = await PluginHost.start({
      dataDir: config.dataDir,
      mode: 'server',
      db: pdb,
      ...(options.pluginClock ? { clock: options.pluginClock } : {}),
      log: logger,
      audit: pluginAudit(pdb),
      metrics: registry.metrics.registry,
      ...(options.peers ? { peers: options.peers } : {}),
      ...(options.serverFile ? { serverFile: options.serverFile } : {}),
      coreRoutes: coreShapes(knownPaths(registry.app.router as unknown as ListableRouter)),
      mount: {
        stopping: stopping.signal,
        ajv: createValidator(),
        log: logger,
        guard: createGuard({ tokens: registry.services.tokens, userAuth: () => pluginHost?.service(AUTH_V1) ?? null }),
        // Plugins' answers are held to their declared schemas exactly when the core's are.
        ...(options.validateResponses ? { validateResponses: true } : {}),
      },
      // The lock is held for the server's life; a worker takes it for the moment, as commands do.
      ...(held ? {} : { lockForMigrations: () => lockDataDir(config.dataDir, 'iqp server start (worker): plugin migrations') }),
    });
    const plugins = pluginHost;
    plugins.mount(pluginRoutes);
    // Timeouts and connection caps: http/connections.ts and http/deadlines.ts.
    const server = createHttpServer(config, registry.handler);
    server.listen(config.port, config.host);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const { port } = server.address() as AddressInfo;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    return {
      url: `http://${host}:${port}`,
      server,
      registry,
      stores: opened,
      recovery,
      plugins,
      async close(graceMs?: number) {
        // Long polls answer now with what they have, rather than hold the stop for their whole wait.
        stopping.abort();
        await drain(server, graceMs);
        await plugins.stop();
        await plugDb.close();
        await opened.meta.close();
        held?.release();
      },
    };
  } catch (err) {
    await pluginDb?.close();
    await stores?.meta.close();
    lock?.release();
    throw err;
  }
}
