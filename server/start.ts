/** Opens the embedded stores (migrating and sweeping), and serves the app on a port. */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp, type Logger, type Registry } from './app.js';
import { databasePath, type ServerConfig } from './config.js';
import { createHttpServer } from './http/connections.js';
import { FsBlobStore } from './stores/fs-blobs.js';
import { SqliteMetadataStore } from './stores/sqlite/metadata.js';
import { SqliteReleaseStore } from './stores/sqlite/releases.js';

export interface OpenedStores {
  readonly meta: SqliteMetadataStore;
  readonly releases: SqliteReleaseStore;
  readonly blobs: FsBlobStore;
  readonly migrated: number[];
  readonly sweptTemp: number;
  readonly sweptOrphans: number;
}

/** Opens (creating and migrating on first use) the data dir, and cleans what a crash may have left. */
export async function openStores(dataDir: string): Promise<OpenedStores> {
  await mkdir(dataDir, { recursive: true });
  const blobs = new FsBlobStore(dataDir);
  await blobs.init();
  const meta = new SqliteMetadataStore(databasePath(dataDir));
  const migrated = await meta.migrate();
  const sweptTemp = await blobs.sweep();
  // Blobs are committed before their row; a crash in between leaves a blob nothing refers to.
  const referenced = new Set(await meta.listBlobRefs());
  let sweptOrphans = 0;
  for (const sha of await blobs.list()) {
    if (!referenced.has(sha)) {
      await blobs.delete(sha);
      sweptOrphans += 1;
    }
  }
  return { meta, releases: new SqliteReleaseStore(meta.db), blobs, migrated, sweptTemp, sweptOrphans };
}

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  readonly registry: Registry;
  readonly stores: OpenedStores;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig, log?: Logger): Promise<RunningServer> {
  const stores = await openStores(config.dataDir);
  const registry = createApp({ config, meta: stores.meta, blobs: stores.blobs, releases: stores.releases, ...(log ? { log } : {}) });
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
    stores,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await stores.meta.close();
    },
  };
}
