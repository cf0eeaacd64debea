/**
 * What an operator sees when the bucket cannot be used: every failure other than an absent object
 * is IQP_E_UNAVAILABLE, with a hint that names what to fix. On s3rver (test/server/s3rver.ts), and
 * on a port nothing listens on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { s3rverForFile } from '../../../test/server/s3rver.js';
import { S3BlobStore } from '../s3-blobs.js';

const s3 = s3rverForFile();

const sha = 'e'.repeat(64);

async function withStore(bucket: string, endpoint: string, fn: (store: S3BlobStore) => Promise<void>): Promise<void> {
  const stagingDir = await mkdtemp(join(tmpdir(), 'iqp-s3-staging-'));
  const store = new S3BlobStore({ endpoint, region: 'us-east-1', bucket, prefix: '', forcePathStyle: true, checksums: 'when_required', stagingDir });
  try {
    await fn(store);
  } finally {
    store.client.destroy();
    await rm(stagingDir, { recursive: true, force: true });
  }
}

/** A loopback port that was just free: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('S3BlobStore when the bucket cannot be used', () => {
  it('credentials the store does not know: every call is IQP_E_UNAVAILABLE with a hint about credentials', async () => {
    const bucket = await s3.newBucket();
    const previous = process.env['AWS_ACCESS_KEY_ID'];
    process.env['AWS_ACCESS_KEY_ID'] = 'AKIANOTKNOWNHERE';
    try {
      await withStore(bucket, s3.endpoint, async (store) => {
        const refused = { code: 'IQP_E_UNAVAILABLE', hint: expect.stringMatching(/credentials/), details: expect.objectContaining({ status: 403 }) };
        await expect(store.has(sha)).rejects.toMatchObject(refused);
        await expect(store.read(sha)).rejects.toMatchObject({ ...refused, details: expect.objectContaining({ s3_code: 'InvalidAccessKeyId' }) });
        await expect(store.list()).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE' });
        await expect(store.health()).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE' });
      });
    } finally {
      process.env['AWS_ACCESS_KEY_ID'] = previous;
    }
  });

  it('a bucket that does not exist: init says so', async () => {
    await withStore('iqp-no-such-bucket', s3.endpoint, async (store) => {
      await expect(store.init()).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE', message: expect.stringMatching(/iqp-no-such-bucket does not exist/), hint: expect.stringMatching(/Create the bucket/) });
      await expect(store.read(sha)).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE', details: expect.objectContaining({ s3_code: 'NoSuchBucket' }) });
    });
  });

  it('an endpoint nothing listens on: IQP_E_UNAVAILABLE with a hint about the endpoint', async () => {
    await withStore('iqp-packs', `http://127.0.0.1:${await closedPort()}`, async (store) => {
      await expect(store.has(sha)).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE', hint: expect.stringMatching(/endpoint/) });
    });
  });
});
