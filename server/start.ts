/** Serves the app on a port over a data directory: takes its lock, recovers it, and listens. */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp, type Logger, type Registry } from './app.js';
import type { ServerConfig } from './config.js';
import { type OpenedStores, openStores, type Recovery, recoverDataDir } from './datadir.js';
import { type DataDirLock, lockDataDir } from './lock.js';
import { createHttpServer } from './http/connections.js';

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  readonly registry: Registry;
  readonly stores: OpenedStores;
  /** What start-up recovery did; null for a server started with `lock: false`. */
  readonly recovery: Recovery | null;
  close(): Promise<void>;
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
}

export async function startServer(config: ServerConfig, log?: Logger, options: StartOptions = {}): Promise<RunningServer> {
  let lock: DataDirLock | null = null;
  let stores: OpenedStores | null = null;
  try {
    let recovery: Recovery | null = null;
    if (options.lock === false) {
      stores = await openStores(config.dataDir, 'iqp server start (worker)');
    } else {
      lock = lockDataDir(config.dataDir, 'iqp server start');
      ({ stores, recovery } = await recoverDataDir(lock));
    }
    const opened = stores;
    const held = lock;
    const registry = createApp({ config, meta: opened.meta, blobs: opened.blobs, releases: opened.releases, ...(log ? { log } : {}), validateResponses: options.validateResponses ?? false });
    // Timeouts and connection caps: http/connections.ts and http/deadlines.ts.
    const server = createHttpServer(config, registry.app);
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
      async close() {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await opened.meta.close();
        held?.release();
      },
    };
  } catch (err) {
    await stores?.meta.close();
    lock?.release();
    throw err;
  }
}
