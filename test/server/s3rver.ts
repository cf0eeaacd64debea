/**
 * s3rver for a test file (scripts/s3rver.ts starts the process): a fresh bucket per test, and
 * credentials for the AWS SDK's default provider chain through the environment, as an operator
 * would give them.
 */
import { afterAll, beforeAll } from 'vitest';
import { S3RVER_CREDENTIALS, type S3rver, startS3rver } from '../../scripts/s3rver.js';

export { S3RVER_CREDENTIALS, type S3rver, startS3rver };

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
    get pid() {
      return live().pid;
    },
    get dir() {
      return live().dir;
    },
    newBucket: () => live().newBucket(),
    objectFile: (bucket, key) => live().objectFile(bucket, key),
    pendingUploads: (bucket) => live().pendingUploads(bucket),
  };
}
