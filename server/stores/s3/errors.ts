/**
 * The S3 SDK's errors, as iqp speaks them. An absent object is an answer, not a failure; everything
 * else the bucket says (or a network that says nothing) is IQP_E_UNAVAILABLE, with a hint for the
 * causes an operator can fix: credentials, the bucket's name, the endpoint.
 */
import { IqpError } from '../../../src/errors.js';

interface SdkError {
  readonly name?: string;
  readonly Code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

const sdk = (err: unknown): SdkError => (typeof err === 'object' && err !== null ? (err as SdkError) : {});

export const statusOf = (err: unknown): number | undefined => sdk(err).$metadata?.httpStatusCode;

/** A 404 about the object itself (HEAD answers have no body, so `NotFound` is all they say). */
export function isNotFound(err: unknown): boolean {
  const e = sdk(err);
  return statusOf(err) === 404 && (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.Code === 'NoSuchKey');
}

const CREDENTIALS = new Set(['CredentialsProviderError', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'ExpiredToken', 'InvalidToken']);

function hintFor(code: string, status: number | undefined): string | undefined {
  if (CREDENTIALS.has(code) || status === 403) {
    return 'Check the credentials the AWS SDK finds (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the machine’s role) and that they may read and write the bucket.';
  }
  if (code === 'NoSuchBucket') return 'Create the bucket, or fix its name in the blob store configuration.';
  if (status === undefined) return 'Check the blob store endpoint and that this server can reach it.';
  return undefined;
}

/** `operation` reads as "could not <operation> s3://bucket/key". */
export function s3Failure(operation: string, location: string, err: unknown): IqpError {
  if (err instanceof IqpError) return err;
  const e = sdk(err);
  const status = statusOf(err);
  const code = e.Code ?? e.name ?? 'Error';
  const hint = hintFor(code, status);
  return new IqpError(
    'IQP_E_UNAVAILABLE',
    `The blob store could not ${operation} ${location}: ${code}${status ? ` (HTTP ${status})` : ''}${e.message ? `: ${e.message}` : ''}`,
    { operation, location, s3_code: code, ...(status ? { status } : {}) },
    { cause: err, ...(hint ? { hint } : {}) },
  );
}

/** What reading a missing blob rejects with in every store: the error a missing file gives. */
export function missingBlob(location: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no such blob, ${location}`), { code: 'ENOENT', errno: -2, syscall: 'open', path: location });
}
