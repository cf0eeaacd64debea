/**
 * An S3-compatible server for tests: s3rver in a child process (s3rver-child.mjs says why a child)
 * on 127.0.0.1 with a random port and a temp directory, a fresh bucket per test, and credentials
 * for the AWS SDK's default provider chain through the environment, as an operator would give them.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 's3rver-child.mjs');

/** s3rver knows one account; it checks the access key id, never the signature. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } as const;

export interface S3rver {
  readonly endpoint: string;
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

/** Sets the SDK's environment credentials to s3rver's; returns what puts the environment back. */
export function useS3rverCredentials(): () => void {
  const saved = Object.fromEntries(Object.keys(S3RVER_CREDENTIALS).map((k) => [k, process.env[k]]));
  Object.assign(process.env, S3RVER_CREDENTIALS);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
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

/**
 * One s3rver for the calling test file, started before its tests with s3rver's credentials in the
 * environment, and stopped (the environment put back) after them.
 */
export function s3rverForFile(): Omit<S3rver, 'stop'> {
  let s3: S3rver | undefined;
  let restore = () => {};
  beforeAll(async () => {
    restore = useS3rverCredentials();
    s3 = await startS3rver();
  });
  afterAll(async () => {
    await s3?.stop();
    restore();
  });
  const live = () => {
    if (!s3) throw new Error('s3rver runs only while the tests of its file do');
    return s3;
  };
  return {
    get endpoint() {
      return live().endpoint;
    },
    get dir() {
      return live().dir;
    },
    newBucket: () => live().newBucket(),
    objectFile: (bucket, key) => live().objectFile(bucket, key),
    pendingUploads: (bucket) => live().pendingUploads(bucket),
  };
}
