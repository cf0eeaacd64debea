/**
 * Multipart uploads: sending one staged file, and clearing the ones a crash left open. S3 keeps
 * (and bills) the parts of an upload that was neither completed nor aborted, invisibly to any
 * listing of objects, so every failure here ends in an AbortMultipartUpload.
 */
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { IqpError } from '../../../src/errors.js';
import { s3Failure, statusOf } from './errors.js';

/** Parts sent at once: memory per commit is this many parts (5 MiB each, more above 48 GiB). */
const QUEUE_SIZE = 4;
const READ_SIZE = 1024 * 1024;

export interface UploadTarget {
  readonly Bucket: string;
  readonly Key: string;
  readonly CacheControl: string;
  readonly ContentType: string;
}

const where = (t: { Bucket: string; Key: string }) => `s3://${t.Bucket}/${t.Key}`;

/** Aborts one multipart upload; one already gone is fine. */
async function abortUpload(client: S3Client, Bucket: string, Key: string, UploadId: string): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}

/**
 * Uploads the file at `path` (`size` bytes) as one PUT, or as a multipart upload when it is larger
 * than a part. `signal` interrupts it.
 *
 * Interrupting destroys the file stream rather than calling Upload.abort(): after abort(), done()
 * rejects at once and lib-storage sends its AbortMultipartUpload later, unawaited, so a caller
 * could not know when the parts are gone. A failed source fails the upload from inside, and
 * lib-storage then aborts the multipart upload before done() settles; should that abort fail, it
 * is sent once more here, and what still survives is left to sweep() (abortStaleUploads).
 * A single PUT already on the wire cannot be called back: it lands whole or not at all.
 */
export async function uploadFile(client: S3Client, target: UploadTarget, path: string, size: number, signal: AbortSignal): Promise<void> {
  const body = createReadStream(path, { highWaterMark: READ_SIZE });
  const interrupt = () => body.destroy(new IqpError('IQP_E_CANCELLED', `The upload to ${where(target)} was interrupted.`));
  if (signal.aborted) interrupt();
  else signal.addEventListener('abort', interrupt, { once: true });
  const upload = new Upload({ client, params: { ...target, Body: body, ContentLength: size }, queueSize: QUEUE_SIZE, leavePartsOnError: false });
  try {
    await upload.done();
  } catch (err) {
    if (upload.uploadId) await abortUpload(client, target.Bucket, target.Key, upload.uploadId).catch(() => {});
    if (signal.aborted) throw new IqpError('IQP_E_CANCELLED', `The upload to ${where(target)} was interrupted; nothing was stored.`, undefined, { cause: err });
    throw s3Failure('upload to', where(target), err);
  } finally {
    signal.removeEventListener('abort', interrupt);
    body.destroy();
  }
}

/**
 * Aborts the multipart uploads under `prefix` begun before `cutoff` (ms): what a crash mid-commit
 * left. Younger ones may be another server's commit in flight. Returns how many it aborted.
 */
export async function abortStaleUploads(client: S3Client, Bucket: string, prefix: string, cutoff: number, pageSize?: number): Promise<number> {
  let aborted = 0;
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix, KeyMarker, UploadIdMarker, ...(pageSize ? { MaxUploads: pageSize } : {}) }));
    } catch (err) {
      throw s3Failure('list the multipart uploads in', `s3://${Bucket}/${prefix}`, err);
    }
    for (const u of page.Uploads ?? []) {
      // An upload with no start time cannot be shown to be stale, so it is left alone.
      if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated.getTime() >= cutoff) continue;
      try {
        await abortUpload(client, Bucket, u.Key, u.UploadId);
      } catch (err) {
        throw s3Failure('abort the multipart upload to', `s3://${Bucket}/${u.Key}`, err);
      }
      aborted += 1;
    }
    // A truncated page without a marker would list the same page forever.
    if (!page.IsTruncated || !page.NextKeyMarker) return aborted;
    KeyMarker = page.NextKeyMarker;
    UploadIdMarker = page.NextUploadIdMarker;
  }
}
