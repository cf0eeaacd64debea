/**
 * A registry configured with `blob_store = s3` (startServer, as `iqp server start` runs it): a pack
 * published through the API lands in the bucket, not in the data directory, and downloads whole
 * and by range through the store's ranged reads (serveDownload's path for stores without local
 * files), on s3rver (test/server/s3rver.ts).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMMUTABLE, S3BlobStore } from '../../server/stores/s3-blobs.js';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import { blobFiles, buildRandomPack, buildTemplatePack, type BuiltPack, call, newKey, startRegistry, tempDir, type TestRegistry, tmpFiles, upload } from './helpers.js';
import { s3rverForFile } from './s3rver.js';

const s3 = s3rverForFile();
let store: S3BlobStore;
let stagingDir: string;
let reg: TestRegistry;
let small: BuiltPack;
let big: BuiltPack;

beforeAll(async () => {
  stagingDir = await mkdtemp(join(tmpdir(), 'iqp-s3-staging-'));
  store = new S3BlobStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: await s3.newBucket(), prefix: 'registry/', forcePathStyle: true, checksums: 'when_required', stagingDir });
  const key = newKey();
  const work = tempDir('iqp-s3-packs-');
  [small, big] = await Promise.all([
    buildTemplatePack(work, key, { authored: { package_id: 's3.small', version: '1.0.0' } }),
    buildRandomPack(work, key, { mib: 6, package_id: 's3.big', version: '1.0.0' }),
  ]);
  // The store the registry is configured with, for looking at the bucket underneath it.
  const config = { blobStore: 's3', s3Endpoint: s3.endpoint, s3Region: 'us-east-1', s3Bucket: store.bucket, s3Prefix: 'registry/', s3ForcePathStyle: true, s3Checksums: 'when_required' } as const;
  reg = await startRegistry({ keys: [key], config });
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
    expect(tmpFiles(reg.dataDir), 'no staged copy left behind').toEqual([]);
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
