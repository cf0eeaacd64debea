/**
 * An S3-compatible server for tests and benchmarks: s3rver in a child process (s3rver-child.mjs
 * beside this file says why a child) on 127.0.0.1 with a random port and a temp directory, a fresh
 * bucket on demand. Callers give the AWS SDK s3rver's credentials through the environment, as an
 * operator would give a registry its own.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// This file runs from scripts/ (tests) or dist/scripts/ (benchmarks); the child is not compiled.
const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = join(basename(dirname(HERE)) === 'dist' ? join(HERE, '..', '..', 'scripts') : HERE, 's3rver-child.mjs');

/** s3rver knows one account; it checks the access key id, never the signature. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } as const;

export interface S3rver {
  readonly endpoint: string;
  /** The s3rver process (its CPU time is part of what a benchmark on it measures). */
  readonly pid: number;
  /** Where s3rver keeps its buckets. */
  readonly dir: string;
  /** A new, empty bucket. */
  newBucket(): Promise<string>;
  /** The file s3rver keeps an object's bytes in (its mtime is the object's Last-Modified). */
  objectFile(bucket: string, key: string): string;
  /** Upload ids of the multipart uploads in progress in `bucket`, read from s3rver's directory. */
  pendingUploads(bucket: string): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startS3rver(): Promise<S3rver> {
  const dir = await mkdtemp(join(tmpdir(), 'iqp-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', CHILD], { env: { ...process.env, S3RVER_DIR: dir }, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening`)));
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  return {
    endpoint,
    pid: child.pid!,
    dir,
    async newBucket() {
      const bucket = `iqp-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      return bucket;
    },
    objectFile(bucket, key) {
      const parts = key.split('/');
      const last = parts.pop()!;
      return join(dir, bucket, ...parts, `${last}._S3rver_object`);
    },
    async pendingUploads(bucket) {
      return (await readdir(join(dir, bucket, '._S3rver_uploads')).catch(() => [] as string[])).sort();
    },
    async stop() {
      admin.destroy();
      child.stdin!.end();
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
