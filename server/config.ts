/** Registry server settings. The CLI resolves them (flag > IQP_* > config file > default); tests pass them directly. */
import { join, resolve } from 'node:path';
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
  /** Base URL used in download links (e.g. behind a proxy or CDN); default: from the request. */
  readonly publicUrl: string | null;
  /** Log one JSON line per request to stderr. */
  readonly logRequests: boolean;
  /** Release channels this registry offers. */
  readonly channels: readonly string[];
}

export const DEFAULT_SERVER: Omit<ServerConfig, 'dataDir'> = {
  host: '127.0.0.1',
  port: 8686,
  maxUploadBytes: 8 * GiB,
  maxContentBytes: DEFAULT_LIMITS.maxContentBytes,
  publicUrl: null,
  logRequests: false,
  channels: ['stable', 'beta', 'nightly'],
};

export function serverConfig(partial: Partial<ServerConfig> & { dataDir: string }): ServerConfig {
  return { ...DEFAULT_SERVER, ...partial, dataDir: resolve(partial.dataDir) };
}

export function databasePath(dataDir: string): string {
  return join(dataDir, 'registry.sqlite');
}
