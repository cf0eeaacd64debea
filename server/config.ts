/**
 * Registry server settings. The CLI resolves them (flag > IQP_* > config file > default, from the
 * table in src/cli/settings.ts, which takes its defaults from DEFAULT_SERVER below); tests pass
 * them directly to serverConfig().
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IqpError } from '../src/errors.js';
import { DEFAULT_LIMITS, GiB } from '../src/pack/format.js';

export interface ServerConfig {
  /** Holds registry.sqlite, blobs/ and tmp/. */
  readonly dataDir: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Largest upload accepted, in bytes (the compressed .iqp). */
  readonly maxUploadBytes: number;
  /** Largest content.sqlite inside an upload. */
  readonly maxContentBytes: number;
  /** Most decompressed bytes an upload may expand to per compressed byte read (decompression bombs). */
  readonly maxCompressionRatio: number;
  /** Base URL used in download links (e.g. behind a proxy or CDN); default: from the request. */
  readonly publicUrl: string | null;
  /** Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (Express's `trust proxy`). */
  readonly trustProxy: TrustProxy;
  /** Origins (`https://app.example`, or `*`) whose web pages may call the registry (CORS); none by default. */
  readonly corsOrigins: readonly string[];
  /** Log one JSON line per request to stderr. */
  readonly logRequests: boolean;
  /** Release channels this registry offers. */
  readonly channels: readonly string[];
  /** Bytes of serialized JSON answers kept in memory (least recently used go first). */
  readonly jsonCacheBytes: number;
  /** Uploads received at once; one more is answered 503 IQP_E_BUSY with Retry-After. */
  readonly maxConcurrentUploads: number;
  /** Open connections at once (more are closed on arrival); 0: no cap. */
  readonly maxConnections: number;
  /** Time allowed to receive a request's headers. */
  readonly headersTimeoutMs: number;
  /** Time allowed to receive a request's body after its headers; uploads get uploadIdleTimeoutMs instead. */
  readonly requestTimeoutMs: number;
  /** Longest pause in an authenticated upload's body; an upload that keeps sending is never cut. */
  readonly uploadIdleTimeoutMs: number;
  /** The registry's metadata in PostgreSQL (postgres:// URL) instead of the data directory's SQLite file; null: SQLite. */
  readonly databaseUrl: string | null;
  /** Connections each server process keeps to PostgreSQL. */
  readonly databasePoolSize: number;
  /** Where pack bytes live: the data directory's blobs/ ('fs'), or an S3-compatible bucket ('s3', with the s3* settings). */
  readonly blobStore: 'fs' | 's3';
  /** An S3-compatible endpoint (MinIO, R2…); null for AWS itself. */
  readonly s3Endpoint: string | null;
  readonly s3Region: string;
  readonly s3Bucket: string | null;
  /** '' or a path ending in '/' put before every key (`iqp/`). */
  readonly s3Prefix: string;
  readonly s3ForcePathStyle: boolean;
  readonly s3Checksums: 'when_required' | 'when_supported';
  /** A URL the bucket's objects are public at (a CDN in front of it); download redirects go there instead of to presigned URLs. */
  readonly s3PublicUrl: string | null;
  /** 'proxy': the registry sends pack bytes itself; 'redirect': /download answers 302 to the bucket (blob_store = s3). */
  readonly downloadMode: 'proxy' | 'redirect';
  /** How long a presigned download URL is valid. */
  readonly downloadUrlTtlS: number;
}

/** Where a registry keeps its pack bytes. */
export type BlobChoice =
  | { readonly kind: 'fs' }
  | {
      readonly kind: 's3';
      readonly endpoint: string | null;
      readonly region: string;
      readonly bucket: string;
      readonly prefix: string;
      readonly forcePathStyle: boolean;
      readonly checksums: 'when_required' | 'when_supported';
      readonly publicUrl: string | null;
    };

/** The database and the blob store a configuration names; IQP_E_CONFIG when s3 lacks its bucket. */
export interface StorageChoice {
  readonly database: DatabaseChoice;
  readonly blobs: BlobChoice;
}

export function storageChoice(
  config: Pick<ServerConfig, 'databaseUrl' | 'databasePoolSize' | 'blobStore' | 's3Endpoint' | 's3Region' | 's3Bucket' | 's3Prefix' | 's3ForcePathStyle' | 's3Checksums' | 's3PublicUrl' | 'downloadMode'>,
): StorageChoice {
  if (config.blobStore === 'fs') {
    if (config.downloadMode === 'redirect') throw new IqpError('IQP_E_CONFIG', 'download_mode is redirect, but blob_store is fs: there is nowhere to redirect to.', { key: 'download_mode' }, { hint: 'Use download_mode = proxy, or blob_store = s3.' });
    return { database: databaseChoice(config), blobs: { kind: 'fs' } };
  }
  if (!config.s3Bucket) throw new IqpError('IQP_E_CONFIG', 'blob_store is s3, but s3_bucket is not set.', { key: 's3_bucket' }, { hint: 'Set s3_bucket (IQP_S3_BUCKET), and s3_region, s3_endpoint as your store needs; credentials come from the AWS SDK\'s usual environment variables.' });
  return {
    database: databaseChoice(config),
    blobs: { kind: 's3', endpoint: config.s3Endpoint, region: config.s3Region, bucket: config.s3Bucket, prefix: config.s3Prefix, forcePathStyle: config.s3ForcePathStyle, checksums: config.s3Checksums, publicUrl: config.s3PublicUrl },
  };
}

/** Where a registry keeps its metadata: the data directory's SQLite file, or PostgreSQL. */
export type DatabaseChoice = { readonly kind: 'sqlite' } | { readonly kind: 'postgres'; readonly url: string; readonly poolSize: number };

export function databaseChoice(config: Pick<ServerConfig, 'databaseUrl' | 'databasePoolSize'>): DatabaseChoice {
  return config.databaseUrl === null ? { kind: 'sqlite' } : { kind: 'postgres', url: config.databaseUrl, poolSize: config.databasePoolSize };
}

/**
 * Real packs expand 2-12× (quran corpus 4.1, synthetic benchmark 2.1, the templates 7-12; see
 * docs/runbook.md): 100 leaves room for very repetitive content, while a bomb of zeros (thousands
 * to one) is stopped within its first 16 MiB (RATIO_FLOOR in src/pack/reader.ts).
 */
export const DEFAULT_MAX_COMPRESSION_RATIO = 100;

/**
 * Express's `trust proxy` values the registry takes: false (believe no proxy: the client's address
 * and protocol are the connection's), a hop count, or addresses and CIDRs (`loopback`,
 * `linklocal` and `uniquelocal` name Express's ranges). Never `true`: every client would be
 * believed.
 */
export type TrustProxy = false | number | readonly string[];

/** The registry's defaults, for the CLI's settings table and for tests alike: the one list. */
export const DEFAULT_SERVER: Omit<ServerConfig, 'dataDir'> = {
  host: '127.0.0.1',
  port: 8686,
  maxUploadBytes: 8 * GiB,
  maxContentBytes: DEFAULT_LIMITS.maxContentBytes,
  maxCompressionRatio: DEFAULT_MAX_COMPRESSION_RATIO,
  publicUrl: null,
  trustProxy: false,
  corsOrigins: [],
  logRequests: false,
  channels: ['stable', 'beta', 'nightly'],
  jsonCacheBytes: 32 * 1024 * 1024,
  maxConcurrentUploads: 4,
  maxConnections: 0,
  headersTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  uploadIdleTimeoutMs: 60_000,
  databaseUrl: null,
  databasePoolSize: 10,
  blobStore: 'fs',
  s3Endpoint: null,
  s3Region: 'us-east-1',
  s3Bucket: null,
  s3Prefix: '',
  s3ForcePathStyle: false,
  s3Checksums: 'when_supported',
  s3PublicUrl: null,
  downloadMode: 'proxy',
  downloadUrlTtlS: 600,
};

export function serverConfig(partial: Partial<ServerConfig> & { dataDir: string }): ServerConfig {
  return { ...DEFAULT_SERVER, ...partial, dataDir: resolve(partial.dataDir) };
}

export function databasePath(dataDir: string): string {
  return join(dataDir, 'registry.sqlite');
}

/**
 * Refuses a data directory that holds no registry, for the commands that administer one (token,
 * users, auth, sync, plugins, backups): a mistyped --data must not become a new, empty registry
 * that no server serves. A registry is made by `iqp server start` or `iqp server migrate` (or
 * restored); it has registry.sqlite, or with database_url its metadata in PostgreSQL and the
 * directory for its blobs and staged uploads.
 */
export function requireRegistry(dataDir: string, database: DatabaseChoice): void {
  const missing = !existsSync(dataDir) ? 'the directory does not exist' : database.kind === 'sqlite' && !existsSync(databasePath(dataDir)) ? 'it has no registry.sqlite' : null;
  if (missing === null) return;
  throw new IqpError('IQP_E_FILE_NOT_FOUND', `No registry in ${dataDir}: ${missing}.`, { data_dir: dataDir }, {
    hint: `Name the registry's data directory with --data (or IQP_DATA, data_dir). To make a new registry there, run \`iqp server migrate --data ${dataDir}\` (or start one with \`iqp server start --data ${dataDir}\`).`,
  });
}

/** The data directory of the registry the command works on, refused if there is none (requireRegistry). */
export function registryDataDir(config: Pick<ServerConfig, 'dataDir' | 'databaseUrl' | 'databasePoolSize'>): string {
  requireRegistry(config.dataDir, databaseChoice(config));
  return config.dataDir;
}
