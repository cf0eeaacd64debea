/**
 * The registry's own upload and download routes over an S3BlobStore (not yet something `iqp server
 * start` can be configured to do): a pack published through the API lands in the bucket, not in
 * the data directory, and downloads whole and by range through the store's ranged reads
 * (serveDownload's path for stores without local files), on s3rver (test/server/s3rver.ts).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.js';
import type { ServerConfig } from '../../server/config.js';
import { openStores } from '../../server/datadir.js';
import type { RunningServer } from '../../server/start.js';
import { IMMUTABLE, S3BlobStore } from '../../server/stores/s3-blobs.js';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import { blobFiles, buildRandomPack, buildTemplatePack, type BuiltPack, call, newKey, startRegistry, tempDir, type TestRegistry, upload } from './helpers.js';
import { s3rverForFile } from './s3rver.js';

const s3 = s3rverForFile();
let store: S3BlobStore;
let stagingDir: string;
let reg: TestRegistry;
let small: BuiltPack;
let big: BuiltPack;

/** What startServer does, with the S3 store in place of the data directory's blobs. */
async function startOnS3(config: ServerConfig): Promise<RunningServer> {
  const stores = await openStores(config.dataDir, 'test');
  await store.init();
  const registry = createApp({ config, meta: stores.meta, blobs: store, releases: stores.releases, log: () => {}, validateResponses: true });
  const server = createServer(registry.handler).listen(config.port, config.host);
  await once(server, 'listening');
  const close = async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await stores.meta.close();
  };
  return { url: `http://${config.host}:${(server.address() as AddressInfo).port}`, server, registry, stores, recovery: null, close };
}

beforeAll(async () => {
  stagingDir = await mkdtemp(join(tmpdir(), 'iqp-s3-staging-'));
  store = new S3BlobStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: await s3.newBucket(), prefix: 'registry/', forcePathStyle: true, checksums: 'when_required', stagingDir });
  const key = newKey();
  const work = tempDir('iqp-s3-packs-');
  [small, big] = await Promise.all([
    buildTemplatePack(work, key, { authored: { package_id: 's3.small', version: '1.0.0' } }),
    buildRandomPack(work, key, { mib: 6, package_id: 's3.big', version: '1.0.0' }),
  ]);
  reg = await startRegistry({ keys: [key], start: startOnS3 });
});

afterAll(async () => {
  await reg?.close();
  store?.client.destroy();
  if (stagingDir) await rm(stagingDir, { recursive: true, force: true });
});

describe('a registry whose blobs are in an S3-compatible bucket', () => {
  it('stores a published pack in the bucket, once, and nothing in the data directory', async () => {
    expect((await upload(reg.url, reg.publisher, small.path)).status).toBe(201);
    expect((await upload(reg.url, reg.publisher, small.path)).status, 'the same pack again').toBe(200);
    const head = await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: `registry/sha256/${small.sha256}` }));
    expect([head.ContentLength, head.CacheControl, head.ContentType]).toEqual([small.size_bytes, IMMUTABLE, PACK_MEDIA_TYPE]);
    expect(blobFiles(reg.dataDir)).toEqual([]);
    expect(await store.sweep(), 'no staged copy left behind').toBe(0);
  });

  it('serves a multipart-sized pack whole and by range, byte for byte', async () => {
    expect((await upload(reg.url, reg.publisher, big.path)).status).toBe(201);
    const bytes = readFileSync(big.path);
    const url = '/v1/packs/s3.big/download?version=1.0.0';
    const whole = await call(reg.url, url);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(bytes)).toBe(true);
    const part = 5 * 1024 * 1024;
    const last = bytes.length - 1;
    for (const [start, end] of [[0, 0], [last, last], [part - 2, part + 1]] as const) {
      const r = await call(reg.url, url, { headers: { range: `bytes=${start}-${end}` } });
      expect([r.status, r.headers.get('content-range')], `${start}-${end}`).toEqual([206, `bytes ${start}-${end}/${bytes.length}`]);
      expect(r.body.equals(bytes.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
  });
});
