/**
 * Content-addressed blobs in an S3-compatible bucket, as `<prefix>sha256/<hex>`, for registries
 * whose servers share one bucket. Uploads are staged and verified on the local disk first, exactly
 * as with FsBlobStore; commit sends the staged file (multipart when large) and checks what landed.
 * A crash leaves at most a staged file, a multipart upload (both cleared by sweep) or a whole
 * object no row refers to (cleared by recovery once older than ORPHAN_GRACE_MS).
 */
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { mkdir, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { PACK_MEDIA_TYPE } from '../../src/api/core/packs.js';
import { IqpError } from '../../src/errors.js';
import { isNotFound, missingBlob, s3Failure } from './s3/errors.js';
import { abortStaleUploads, uploadFile } from './s3/multipart.js';
import { checkOptions, createS3Client, type S3BlobStoreOptions } from './s3/options.js';
import { assertSha256, createStagedFile, probeWritable, removeStaged, SHA256 } from './staging.js';
import { type BlobInfo, type BlobRange, type BlobStore, ORPHAN_GRACE_MS, type StagedBlob } from './types.js';

export type { S3BlobStoreOptions } from './s3/options.js';

/** A blob's bytes never change under its address, so any cache may keep them for good. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * An existing object younger than this is not uploaded again on commit. Older, it is, so that its
 * Last-Modified moves: otherwise a sweep on another server could take it, as an old orphan, between
 * this commit and the row that is about to refer to it.
 */
const REUPLOAD_AFTER_MS = ORPHAN_GRACE_MS / 2;

export class S3BlobStore implements BlobStore {
  /** The SDK client this store sends with (open for tests' middleware and, later, presigned URLs). */
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  readonly stagingDir: string;
  /** Where clients fetch blobs without a signature (a CDN, a public bucket); null: presigned URLs. */
  readonly publicUrl: string | null;
  readonly #now: () => number;
  readonly #pageSize: number | undefined;

  constructor(options: S3BlobStoreOptions) {
    checkOptions(options);
    this.client = createS3Client(options);
    this.bucket = options.bucket;
    this.prefix = options.prefix;
    this.stagingDir = options.stagingDir;
    this.publicUrl = options.publicUrl?.replace(/\/+$/, '') ?? null;
    this.#now = options.now ?? Date.now;
    this.#pageSize = options.pageSize;
  }

  /** Where the blobs live: every key is this plus a sha256. */
  get #base(): string {
    return `${this.prefix}sha256/`;
  }

  key(sha256: string): string {
    assertSha256(sha256);
    return `${this.#base}${sha256}`;
  }

  #where(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async #checkBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      // HEAD answers carry no body: a 404 here can only mean the bucket.
      if (isNotFound(err)) {
        throw new IqpError('IQP_E_UNAVAILABLE', `The bucket ${this.bucket} does not exist.`, { bucket: this.bucket }, { cause: err, hint: 'Create the bucket, or fix its name in the blob store configuration.' });
      }
      throw s3Failure('reach the bucket', `s3://${this.bucket}`, err);
    }
  }

  async init(): Promise<void> {
    await mkdir(this.stagingDir, { recursive: true });
    await this.#checkBucket();
  }

  async health(): Promise<void> {
    await probeWritable(this.stagingDir);
    await this.#checkBucket();
  }

  async #head(key: string): Promise<{ size: number; modifiedAt: number | null } | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0, modifiedAt: out.LastModified?.getTime() ?? null };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw s3Failure('look up', this.#where(key), err);
    }
  }

  async #commit(path: string, sha256: string, signal: AbortSignal): Promise<void> {
    const key = this.key(sha256);
    const { size } = await stat(path);
    const existing = await this.#head(key);
    if (existing && existing.size === size && existing.modifiedAt !== null && this.#now() - existing.modifiedAt < REUPLOAD_AFTER_MS) return;
    await uploadFile(this.client, { Bucket: this.bucket, Key: key, CacheControl: IMMUTABLE, ContentType: PACK_MEDIA_TYPE }, path, size, signal);
    const landed = await this.#head(key);
    if (landed?.size !== size) {
      throw new IqpError('IQP_E_UNAVAILABLE', `The blob store holds ${landed ? `${landed.size} bytes` : 'nothing'} at ${this.#where(key)} after an upload of ${size}.`, {
        location: this.#where(key),
        expected: size,
        actual: landed?.size ?? null,
      });
    }
  }

  async stage(): Promise<StagedBlob> {
    const path = await createStagedFile(this.stagingDir);
    let settled = false;
    let inFlight: { done: Promise<void>; interrupt: AbortController } | null = null;
    return {
      path,
      commit: async (sha256: string) => {
        const interrupt = new AbortController();
        const done = this.#commit(path, sha256, interrupt.signal);
        inFlight = { done, interrupt };
        try {
          await done;
        } finally {
          inFlight = null;
        }
        settled = true;
        // The bucket has the bytes now; a staged copy that will not go is swept at the next start.
        await rm(path, { force: true }).catch(() => {});
      },
      abort: async () => {
        const running = inFlight;
        if (running) {
          running.interrupt.abort();
          await running.done.catch(() => {});
        }
        if (settled) return;
        settled = true;
        await rm(path, { force: true });
      },
    };
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.size(sha256)) !== null;
  }

  async size(sha256: string): Promise<number | null> {
    return (await this.#head(this.key(sha256)))?.size ?? null;
  }

  /**
   * A presigned GET of the blob, naming the file clients save it as; with `publicUrl` (a CDN in
   * front of the bucket, or a public bucket), that URL and the key instead, which never expires.
   */
  async downloadUrl(sha256: string, options: { readonly expiresInS: number; readonly fileName: string; readonly contentType: string }): Promise<{ readonly url: string; readonly permanent: boolean }> {
    const key = this.key(sha256);
    if (this.publicUrl !== null) return { url: `${this.publicUrl}/${key}`, permanent: true };
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentDisposition: `attachment; filename="${options.fileName}"`, ResponseContentType: options.contentType });
    return { url: await getSignedUrl(this.client, command, { expiresIn: options.expiresInS }), permanent: false };
  }

  async read(sha256: string, range?: BlobRange): Promise<Readable> {
    const key = this.key(sha256);
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }));
    } catch (err) {
      if (isNotFound(err)) throw missingBlob(this.#where(key));
      throw s3Failure('read', this.#where(key), err);
    }
    const body = out.Body;
    if (!(body instanceof Readable)) throw new IqpError('IQP_E_INTERNAL', `The S3 client returned no Node stream for ${this.#where(key)}.`);
    // A store or proxy that ignores Range answers with the whole object: sent as the range, it would
    // be a corrupt download with a 206 status.
    if (range && !out.ContentRange?.startsWith(`bytes ${range.start}-${range.end}/`)) {
      body.destroy();
      throw new IqpError('IQP_E_UNAVAILABLE', `The blob store answered ${out.ContentRange ?? 'with the whole object'} for bytes ${range.start}-${range.end} of ${this.#where(key)}.`, {
        location: this.#where(key),
      });
    }
    return body;
  }

  async delete(sha256: string): Promise<void> {
    const key = this.key(sha256);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw s3Failure('delete', this.#where(key), err);
    }
  }

  /**
   * Empties the staging directory (this server's alone: only before it serves, as FsBlobStore's
   * sweep) and aborts multipart uploads under the blob keys begun more than ORPHAN_GRACE_MS ago
   * (the bucket is shared: a younger one may be another server's commit in flight).
   */
  async sweep(): Promise<number> {
    const staged = await removeStaged(this.stagingDir);
    return staged + (await abortStaleUploads(this.client, this.bucket, this.#base, this.#now() - ORPHAN_GRACE_MS, this.#pageSize));
  }

  async list(): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    let ContinuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.#base, ContinuationToken, ...(this.#pageSize ? { MaxKeys: this.#pageSize } : {}) }));
      } catch (err) {
        throw s3Failure('list', `s3://${this.bucket}/${this.#base}`, err);
      }
      for (const o of page.Contents ?? []) {
        const sha256 = o.Key?.slice(this.#base.length) ?? '';
        if (!SHA256.test(sha256)) continue;
        // An object with no date cannot be shown to be old, so it counts as written now.
        out.push({ sha256, modifiedAt: o.LastModified ?? new Date(this.#now()) });
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out.sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
  }
}
