/**
 * A registry configured with `blob_store = s3` (startServer, as `iqp server start` runs it): a pack
 * published through the API lands in the bucket, not in the data directory, and downloads whole
 * and by range through the store's ranged reads (serveDownload's path for stores without local
 * files), on s3rver (test/server/s3rver.ts).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMMUTABLE, S3BlobStore } from '../../server/stores/s3-blobs.js';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import { blobFiles, buildRandomPack, buildTemplatePack, type BuiltPack, call, newKey, startRegistry, tempDir, type TestKey, type TestRegistry, tmpFiles, upload } from './helpers.js';
import { iqp } from '../e2e/helpers.js';
import { s3rverForFile } from './s3rver.js';

const s3 = s3rverForFile();
let store: S3BlobStore;
let stagingDir: string;
let reg: TestRegistry;
let small: BuiltPack;
let packKey: TestKey;

/** A registry's settings for the bucket the tests look into (prefix registry/). */
const s3Config = (bucket: string) =>
  ({ blobStore: 's3', s3Endpoint: s3.endpoint, s3Region: 'us-east-1', s3Bucket: bucket, s3Prefix: 'registry/', s3ForcePathStyle: true, s3Checksums: 'when_required' }) as const;
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
  packKey = key;
  reg = await startRegistry({ keys: [key], config: s3Config(store.bucket) });
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

describe('download_mode = redirect', () => {
  let redirecting: TestRegistry;
  beforeAll(async () => {
    redirecting = await startRegistry({ keys: [packKey], config: { ...s3Config(await s3.newBucket()), downloadMode: 'redirect', downloadUrlTtlS: 300 } });
    expect((await upload(redirecting.url, redirecting.publisher, small.path)).status).toBe(201);
  });
  afterAll(() => redirecting?.close());

  it('answers /download with a 302 to a presigned URL of the object, with the pack\'s own headers, never stored', async () => {
    for (const path of ['/v1/packs/s3.small/download', '/v1/packs/s3.small/download?version=1.0.0']) {
      const r = await fetch(`${redirecting.url}${path}`, { redirect: 'manual' });
      expect(r.status, path).toBe(302);
      expect([r.headers.get('etag'), r.headers.get('x-iqp-sha256'), r.headers.get('cache-control')]).toEqual([`"${small.sha256}"`, small.sha256, 'private, no-store']);
      const location = new URL(r.headers.get('location')!);
      expect(location.origin).toBe(new URL(s3.endpoint).origin);
      expect(location.searchParams.get('X-Amz-Expires')).toBe('300');
      const ranged = await fetch(location, { headers: { range: 'bytes=10-19' } });
      expect(ranged.status).toBe(206);
      expect(Buffer.from(await ranged.arrayBuffer()).equals(readFileSync(small.path).subarray(10, 20))).toBe(true);
    }
    const cached = await fetch(`${redirecting.url}/v1/packs/s3.small/download`, { redirect: 'manual', headers: { 'if-none-match': `"${small.sha256}"` } });
    expect(cached.status, 'a client holding the pack needs no redirect').toBe(304);
  });

  it('is followed by iqp pull, which checks and verifies the pack, and resumes a part through it', async () => {
    const out = tempDir('iqp-s3-pull-');
    writeFileSync(join(out, `.${small.package_id}-1.0.0.iqp.part`), readFileSync(small.path).subarray(0, 1000));
    const r = await iqp(['pull', 's3.small', '--registry', redirecting.url, '--out', out, '--json'], { cwd: out, env: { HOME: out } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ package_id: 's3.small', version: '1.0.0', sha256: small.sha256, resumed_from: 1000, restarted: false });
    expect(readFileSync(join(out, 's3.small-1.0.0.iqp')).equals(readFileSync(small.path))).toBe(true);
  });
});
