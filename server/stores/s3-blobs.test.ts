/**
 * S3BlobStore against the shared store contract and the S3-specific promises, on a real
 * S3-compatible server: s3rver, on 127.0.0.1 with a random port and a temp directory, a fresh bucket
 * and staging directory per test, credentials through the environment (test/server/s3rver.ts).
 *
 * What s3rver does NOT check, so what passing here does not prove about S3 or another store:
 * - Request signatures: it checks only that the access key id is its own, never a SigV4 signature
 *   (a signing bug, or a server clock skewed past S3's 15 minutes, would pass here).
 * - Checksums: it ignores x-amz-checksum-* headers and does not decode aws-chunked bodies, so these
 *   tests use checksums 'when_required'; s3/options.test.ts checks what each mode makes the SDK send.
 * - Multipart ETags and part sizes: a completed multipart object gets a plain MD5 ETag (S3's is an
 *   MD5 of the parts' MD5s with a -N suffix), part ETags and the 5 MiB minimum are not checked. The
 *   store never compares ETags; it checks the object's size after every upload.
 * - If-Range and other conditional requests: ignored. The registry evaluates If-Range itself
 *   (server/http/range.ts) before it asks the store for a range, and the store refuses an answer
 *   whose Content-Range is not the range it asked for (tested below).
 * - ListMultipartUploads and AbortMultipartUpload: s3rver has neither; s3rver-child.mjs answers
 *   them from s3rver's directory, so real pagination and timing of those two are taken on trust.
 * - Last-Modified of a multipart object: s3rver dates it at completion, S3 at the upload's start.
 * - One process on one disk: no throttling (503 SlowDown), no retries, no eventual consistency.
 */
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { access, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import { s3rverForFile } from '../../test/server/s3rver.js';
import { blobStoreConformance } from '../../test/server/store-conformance.js';
import { IMMUTABLE, S3BlobStore, type S3BlobStoreOptions } from './s3-blobs.js';
import { ORPHAN_GRACE_MS } from './types.js';

/** lib-storage's part size for anything under 48 GiB. */
const PART = 5 * 1024 * 1024;

const s3 = s3rverForFile();

interface Harness {
  readonly store: S3BlobStore;
  readonly bucket: string;
  cleanup(): Promise<void>;
}

async function newStore(extra: Partial<S3BlobStoreOptions> = {}, bucket?: string): Promise<Harness> {
  const b = bucket ?? (await s3.newBucket());
  const stagingDir = await mkdtemp(join(tmpdir(), 'iqp-s3-staging-'));
  const store = new S3BlobStore({ endpoint: s3.endpoint, region: 'us-east-1', bucket: b, prefix: 'iqp/', forcePathStyle: true, checksums: 'when_required', stagingDir, ...extra });
  return {
    store,
    bucket: b,
    cleanup: async () => {
      store.client.destroy();
      await rm(stagingDir, { recursive: true, force: true });
    },
  };
}

blobStoreConformance('S3BlobStore on s3rver', async () => {
  const h = await newStore();
  return { store: h.store, age: (sha256, at) => utimes(s3.objectFile(h.bucket, h.store.key(sha256)), at, at), cleanup: h.cleanup };
});

/** A fixed, non-repeating byte pattern (an LCG from a constant seed), so a misplaced part shows. */
function patterned(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 0x2545f491;
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), i);
  return b;
}

const sha256Of = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function hashOf(stream: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of stream) h.update(c as Buffer);
  return h.digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Runs `fn` around each command the store's client sends (once a command, however often it is
 * retried), through the SDK's own middleware stack: `send` sends it.
 */
function aroundCommands(store: S3BlobStore, name: string, fn: (command: string, send: () => Promise<unknown>) => Promise<unknown>): void {
  store.client.middlewareStack.add((next, context) => (args) => fn(context.commandName ?? '?', () => next(args)) as ReturnType<typeof next>, { step: 'initialize', name });
}

/** Counts the commands the store's client sends, by name. */
function countCommands(store: S3BlobStore): Map<string, number> {
  const counts = new Map<string, number>();
  aroundCommands(store, 'iqpTestCount', (command, send) => {
    counts.set(command, (counts.get(command) ?? 0) + 1);
    return send();
  });
  return counts;
}

const uploadsSent = (counts: Map<string, number>) => (counts.get('PutObjectCommand') ?? 0) + (counts.get('UploadPartCommand') ?? 0);
const exists = (path: string) => access(path).then(() => true, () => false);

describe('S3BlobStore on s3rver', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.cleanup();
  });

  async function stageBytes(bytes: Buffer) {
    const staged = await h.store.stage();
    await writeFile(staged.path, bytes);
    return staged;
  }

  it('commits a file larger than a part as a multipart upload that reads back byte-identical, whole and by range', async () => {
    h = await newStore();
    const counts = countCommands(h.store);
    const bytes = patterned(2 * PART + 17);
    const sha = sha256Of(bytes);
    const staged = await stageBytes(bytes);
    await staged.commit(sha);
    expect(Object.fromEntries(counts)).toMatchObject({ CreateMultipartUploadCommand: 1, UploadPartCommand: 3, CompleteMultipartUploadCommand: 1 });
    expect(counts.get('PutObjectCommand')).toBeUndefined();
    expect(await exists(staged.path), 'the staged copy is gone once the bucket has the bytes').toBe(false);
    expect(await h.store.size(sha)).toBe(bytes.length);
    expect(await hashOf(await h.store.read(sha))).toBe(sha);
    const last = bytes.length - 1;
    for (const [start, end] of [[0, 0], [last, last], [PART - 3, PART + 2], [2 * PART - 1, 2 * PART], [PART, last]] as const) {
      expect((await readAll(await h.store.read(sha, { start, end }))).equals(bytes.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
  });

  it('stores blobs, single-part and multipart, as immutable packs', async () => {
    h = await newStore();
    for (const bytes of [Buffer.from('a small pack'), patterned(PART + 1)]) {
      const sha = sha256Of(bytes);
      await (await stageBytes(bytes)).commit(sha);
      const head = await h.store.client.send(new HeadObjectCommand({ Bucket: h.bucket, Key: `iqp/sha256/${sha}` }));
      expect([head.CacheControl, head.ContentType, head.ContentLength]).toEqual([IMMUTABLE, PACK_MEDIA_TYPE, bytes.length]);
    }
    expect(IMMUTABLE).toBe('public, max-age=31536000, immutable');
  });

  it('uploads content it already holds once; an object of the wrong size is uploaded again', async () => {
    h = await newStore();
    const counts = countCommands(h.store);
    const bytes = patterned(4096);
    const sha = sha256Of(bytes);
    await (await stageBytes(bytes)).commit(sha);
    const again = await stageBytes(bytes);
    await again.commit(sha);
    expect(uploadsSent(counts)).toBe(1);
    expect(await exists(again.path)).toBe(false);

    await h.store.client.send(new PutObjectCommand({ Bucket: h.bucket, Key: h.store.key(sha), Body: bytes.subarray(0, 100) }));
    await (await stageBytes(bytes)).commit(sha);
    expect(uploadsSent(counts)).toBe(3);
    expect((await readAll(await h.store.read(sha))).equals(bytes)).toBe(true);
  });

  it('uploads an object again once it is old, so that its date moves before a row refers to it', async () => {
    h = await newStore();
    const counts = countCommands(h.store);
    const bytes = patterned(4096);
    const sha = sha256Of(bytes);
    await (await stageBytes(bytes)).commit(sha);
    const longAgo = new Date(Date.now() - ORPHAN_GRACE_MS);
    await utimes(s3.objectFile(h.bucket, h.store.key(sha)), longAgo, longAgo);
    await (await stageBytes(bytes)).commit(sha);
    expect(uploadsSent(counts)).toBe(2);
  });

  it('an upload interrupted mid-way by abort() leaves no object, no multipart upload and no staged file', async () => {
    h = await newStore();
    const counts = countCommands(h.store);
    // More parts than lib-storage sends at once (4), so some are still unread when it is interrupted.
    const bytes = patterned(4 * PART + 17);
    const sha = sha256Of(bytes);
    const staged = await stageBytes(bytes);
    let aborting: Promise<void> | null = null;
    aroundCommands(h.store, 'iqpTestInterrupt', async (command, send) => {
      const out = await send();
      if (command === 'UploadPartCommand' && !aborting) aborting = staged.abort();
      return out;
    });
    await expect(staged.commit(sha)).rejects.toMatchObject({ code: 'IQP_E_CANCELLED' });
    expect(aborting).not.toBeNull();
    await aborting;
    expect(counts.get('AbortMultipartUploadCommand')).toBeGreaterThanOrEqual(1);
    expect(counts.get('CompleteMultipartUploadCommand')).toBeUndefined();
    expect(await s3.pendingUploads(h.bucket)).toEqual([]);
    expect(await h.store.has(sha)).toBe(false);
    expect(await exists(staged.path)).toBe(false);
  });

  it('an upload the bucket fails mid-way is aborted, keeps its staged file for a retry, and the retry lands', async () => {
    h = await newStore();
    const bytes = patterned(2 * PART + 5);
    const sha = sha256Of(bytes);
    const staged = await stageBytes(bytes);
    let parts = 0;
    aroundCommands(h.store, 'iqpTestFail', async (command, send) => {
      if (command === 'UploadPartCommand' && ++parts === 2) {
        throw Object.assign(new Error('We encountered an internal error.'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
      }
      return send();
    });
    await expect(staged.commit(sha)).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE', details: { s3_code: 'InternalError', status: 500 } });
    expect(await s3.pendingUploads(h.bucket)).toEqual([]);
    expect(await h.store.has(sha)).toBe(false);
    expect(await exists(staged.path)).toBe(true);
    await staged.commit(sha);
    expect(await hashOf(await h.store.read(sha))).toBe(sha);
    await staged.abort();
  });

  it('sweep empties the staging directory and aborts only multipart uploads under its keys older than the grace period', async () => {
    h = await newStore();
    const startUpload = async (Key: string) => (await h.store.client.send(new CreateMultipartUploadCommand({ Bucket: h.bucket, Key }))).UploadId!;
    const ours = [await startUpload(h.store.key('a'.repeat(64))), await startUpload(h.store.key('b'.repeat(64))), await startUpload(h.store.key('c'.repeat(64)))];
    const foreign = await startUpload('someone-else/file.bin');
    await writeFile((await h.store.stage()).path, 'left by a crash');
    expect(await h.store.sweep(), 'young uploads may be another server’s commit in flight').toBe(1);
    expect(await s3.pendingUploads(h.bucket)).toEqual([...ours, foreign].sort());

    const later = await newStore({ now: () => Date.now() + ORPHAN_GRACE_MS + 60_000, pageSize: 1 }, h.bucket);
    try {
      expect(await later.store.sweep()).toBe(3);
      expect(await s3.pendingUploads(h.bucket)).toEqual([foreign]);
    } finally {
      await later.cleanup();
    }
  });

  it('lists every blob across pages, and only keys that are a sha256 under its prefix', async () => {
    h = await newStore({ pageSize: 2 });
    const counts = countCommands(h.store);
    const shas: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const bytes = Buffer.from(`blob ${i}`);
      await (await stageBytes(bytes)).commit(sha256Of(bytes));
      shas.push(sha256Of(bytes));
    }
    for (const Key of ['iqp/sha256/not-a-sha256', `iqp/sha256/${'A'.repeat(64)}`, `iqp/other/${shas[0]}`, `${shas[1]}`]) {
      await h.store.client.send(new PutObjectCommand({ Bucket: h.bucket, Key, Body: 'not a blob' }));
    }
    expect((await h.store.list()).map((b) => b.sha256)).toEqual([...shas].sort());
    expect(counts.get('ListObjectsV2Command')).toBeGreaterThan(2);
  });

  it('refuses an answer that is not the range it asked for (a store or proxy that drops Range)', async () => {
    h = await newStore();
    const bytes = patterned(10_000);
    const sha = sha256Of(bytes);
    await (await stageBytes(bytes)).commit(sha);
    h.store.client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        delete request.headers['range'];
        delete request.headers['Range'];
        return next(args);
      },
      { step: 'build', name: 'iqpTestDropRange' },
    );
    await expect(h.store.read(sha, { start: 10, end: 19 })).rejects.toMatchObject({ code: 'IQP_E_UNAVAILABLE' });
  });
});
