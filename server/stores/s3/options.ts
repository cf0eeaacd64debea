/**
 * What an S3BlobStore is told, checked once, and the S3 client built from it. Credentials are
 * deliberately not among the options: the AWS SDK's default provider chain finds them (environment
 * variables, shared config files, web identity, the instance or task role), so a key never sits in
 * iqp's config files or in a process listing.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { IqpError } from '../../../src/errors.js';

export interface S3BlobStoreOptions {
  /** An S3-compatible endpoint (`https://minio.internal:9000`); left out for AWS itself. */
  readonly endpoint?: string;
  readonly region: string;
  readonly bucket: string;
  /** Put before every key: '' or a path ending in '/' (`iqp/`). Keys are `<prefix>sha256/<hex>`. */
  readonly prefix: string;
  /** URLs as endpoint/bucket/key rather than bucket.endpoint/key: what most S3-compatible stores need. */
  readonly forcePathStyle: boolean;
  /**
   * When the SDK computes request checksums and validates response ones. `when_supported` is the
   * SDK's default (CRC32 on every upload); some S3-compatible stores reject those headers or the
   * aws-chunked bodies that carry them, and `when_required` sends checksums only where S3 insists.
   */
  readonly checksums: 'when_required' | 'when_supported';
  /** A URL clients can read the bucket's objects at without signatures (a CDN in front of it), for download redirects. */
  readonly publicUrl?: string;
  /** A local directory for staged uploads, this server's alone (sweep empties it). */
  readonly stagingDir: string;
  /** The clock that ages stale multipart uploads and re-committed blobs; default Date.now. */
  readonly now?: () => number;
  /** Keys or uploads per listing request; S3's own maximum (1000) unless a test wants pages. */
  readonly pageSize?: number;
}

const CHECKSUM_MODES = { when_required: 'WHEN_REQUIRED', when_supported: 'WHEN_SUPPORTED' } as const;

/** Not allowed to connect for longer: an unreachable endpoint fails a health check instead of hanging it. */
const CONNECT_TIMEOUT_MS = 10_000;

function refuse(key: string, why: string): IqpError {
  return new IqpError('IQP_E_CONFIG', `Blob store option ${key}: ${why}`, { key });
}

/** Throws IQP_E_CONFIG naming the first option that cannot work. */
export function checkOptions(o: S3BlobStoreOptions): void {
  // What any bucket name is made of, old us-east-1 names (capitals, underscores) included: enough to
  // keep a slash or a space out of every URL; the store judges the rest.
  if (!/^[A-Za-z0-9._-]{3,255}$/.test(o.bucket)) throw refuse('bucket', `${JSON.stringify(o.bucket)} is not a bucket name.`);
  if (!o.region) throw refuse('region', 'a region is required (any value an S3-compatible store accepts, e.g. us-east-1).');
  if (o.prefix !== '' && (!o.prefix.endsWith('/') || o.prefix.startsWith('/') || o.prefix.includes('//'))) {
    throw refuse('prefix', `${JSON.stringify(o.prefix)} must be empty or a path like "iqp/" (no leading slash, one trailing slash).`);
  }
  if (o.endpoint !== undefined) {
    let url: URL | null = null;
    try {
      url = new URL(o.endpoint);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw refuse('endpoint', `${JSON.stringify(o.endpoint)} is not an http(s) URL.`);
  }
  if (!(o.checksums in CHECKSUM_MODES)) throw refuse('checksums', `${JSON.stringify(o.checksums)} is not one of ${Object.keys(CHECKSUM_MODES).join(', ')}.`);
  if (!o.stagingDir) throw refuse('stagingDir', 'a local directory for staged uploads is required.');
  if (o.pageSize !== undefined && !(Number.isInteger(o.pageSize) && o.pageSize >= 1 && o.pageSize <= 1000)) throw refuse('pageSize', 'must be an integer from 1 to 1000.');
}

/** The client's configuration: no credentials, so the SDK's default provider chain supplies them. */
export function s3ClientConfig(o: S3BlobStoreOptions): S3ClientConfig {
  const mode = CHECKSUM_MODES[o.checksums];
  return {
    region: o.region,
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    forcePathStyle: o.forcePathStyle,
    requestChecksumCalculation: mode,
    responseChecksumValidation: mode,
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS },
  };
}

export function createS3Client(o: S3BlobStoreOptions): S3Client {
  // The SDK warns on stderr, once per process, that its releases after January 2027 need Node 22:
  // true of the SDK, not of iqp (which pins what it installs), and stderr carries only iqp's own
  // messages (`--json` leaves it empty). An operator who set the variable keeps their choice.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  return new S3Client(s3ClientConfig(o));
}
