/** `iqp server start | migrate`: the registry server on the embedded SQLite + blob directory. */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { onStop } from '../lifecycle.js';
import { DEFAULT_SERVER, serverConfig, type ServerConfig } from '../../server/config.js';
import { SERVER_LIMIT_RANGES } from '../cli/config.js';
import { migrateDataDir } from '../../server/datadir.js';
import { lockDataDir } from '../../server/lock.js';
import { startServer } from '../../server/start.js';
import { createBackup, restoreBackup } from '../../server/backup.js';
import { IqpError } from '../errors.js';
import type { CommandGroup } from './types.js';

interface StartOptions {
  data?: string;
  host?: string;
  port?: string;
  maxUploadBytes?: string;
  maxCompressionRatio?: string;
  publicUrl?: string;
  logRequests?: boolean;
  jsonCacheBytes?: string;
  maxConcurrentUploads?: string;
  maxConnections?: string;
  headersTimeoutMs?: string;
  requestTimeoutMs?: string;
  uploadIdleTimeoutMs?: string;
}

function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new IqpError('IQP_E_USAGE', `${name} must be a whole number from ${min} to ${max}.`);
  return n;
}

/** A registry limit: the flag, else IQP_* or the config file (already range-checked), else the server's default. */
function limitOption(flag: string, raw: string | undefined, configured: number | null, key: keyof typeof SERVER_LIMIT_RANGES, fallback: number): number {
  const [min, max] = SERVER_LIMIT_RANGES[key];
  return intOption(flag, raw, configured ?? fallback, min, max);
}

export function resolveServerConfig(ctx: Context, opts: StartOptions): ServerConfig {
  return serverConfig({
    dataDir: opts.data ? resolve(ctx.cwd, opts.data) : ctx.config.dataDir,
    host: opts.host ?? ctx.config.host,
    port: intOption('--port', opts.port, ctx.config.port, 0, 65535),
    maxUploadBytes: intOption('--max-upload-bytes', opts.maxUploadBytes, ctx.config.maxUploadBytes, 1, Number.MAX_SAFE_INTEGER),
    maxContentBytes: ctx.config.maxContentBytes,
    maxCompressionRatio: intOption('--max-compression-ratio', opts.maxCompressionRatio, ctx.config.maxCompressionRatio, 2, 1_000_000),
    publicUrl: opts.publicUrl ?? ctx.config.publicUrl,
    logRequests: Boolean(opts.logRequests),
    channels: ctx.config.channels,
    jsonCacheBytes: limitOption('--json-cache-bytes', opts.jsonCacheBytes, ctx.config.jsonCacheBytes, 'json_cache_bytes', DEFAULT_SERVER.jsonCacheBytes),
    maxConcurrentUploads: limitOption('--max-concurrent-uploads', opts.maxConcurrentUploads, ctx.config.maxConcurrentUploads, 'max_concurrent_uploads', DEFAULT_SERVER.maxConcurrentUploads),
    maxConnections: limitOption('--max-connections', opts.maxConnections, ctx.config.maxConnections, 'max_connections', DEFAULT_SERVER.maxConnections),
    headersTimeoutMs: limitOption('--headers-timeout-ms', opts.headersTimeoutMs, ctx.config.headersTimeoutMs, 'headers_timeout_ms', DEFAULT_SERVER.headersTimeoutMs),
    requestTimeoutMs: limitOption('--request-timeout-ms', opts.requestTimeoutMs, ctx.config.requestTimeoutMs, 'request_timeout_ms', DEFAULT_SERVER.requestTimeoutMs),
    uploadIdleTimeoutMs: limitOption('--upload-idle-timeout-ms', opts.uploadIdleTimeoutMs, ctx.config.uploadIdleTimeoutMs, 'upload_idle_timeout_ms', DEFAULT_SERVER.uploadIdleTimeoutMs),
  });
}

const dataOption = () => new Option('-d, --data <dir>', 'data directory: registry.sqlite, blobs/, tmp/ (default: IQP_DATA, the config file’s "data_dir", or ./iqp-data)');

const start = {
  define(): Command {
    return new Command('start')
      .description('serve the registry (creates and migrates the data directory on first start)')
      .addOption(dataOption())
      .option('--host <host>', 'address to listen on (default: IQP_HOST or 127.0.0.1)')
      .option('-p, --port <port>', 'port, 0 for any free one (default: IQP_PORT or 8686)')
      .option('--max-upload-bytes <n>', 'largest pack upload accepted (default: IQP_MAX_UPLOAD_BYTES or 8 GiB)')
      .option('--max-compression-ratio <n>', 'refuse uploads that expand to more than n bytes per compressed byte (default: IQP_MAX_COMPRESSION_RATIO or 100)')
      .option('--public-url <url>', 'base URL for download links, e.g. behind a proxy or CDN (default: IQP_PUBLIC_URL or from each request)')
      .option('--log-requests', 'log one JSON line per request on stderr')
      .option('--json-cache-bytes <n>', 'memory for cached JSON answers (default: IQP_JSON_CACHE_BYTES or 32 MiB)')
      .option('--max-concurrent-uploads <n>', 'uploads received at once; more get 503 with Retry-After (default: IQP_MAX_CONCURRENT_UPLOADS or 4)')
      .option('--max-connections <n>', 'open connections at once, 0 for no cap (default: IQP_MAX_CONNECTIONS or 0)')
      .option('--headers-timeout-ms <ms>', 'time to receive request headers (default: IQP_HEADERS_TIMEOUT_MS or 30000)')
      .option('--request-timeout-ms <ms>', 'time to receive a request body after its headers (default: IQP_REQUEST_TIMEOUT_MS or 60000)')
      .option('--upload-idle-timeout-ms <ms>', 'longest pause in an upload before it is cut (default: IQP_UPLOAD_IDLE_TIMEOUT_MS or 60000)');
  },
  async run(ctx: Context, opts: StartOptions): Promise<number> {
    const config = resolveServerConfig(ctx, opts);
    const running = await startServer(config, (line) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`));
    // Always there: this process holds the lock, so it ran recovery.
    const { migrated, sweptTemp, sweptOrphans } = running.recovery!;
    const plugins = running.plugins?.status() ?? { loaded: [], failed: [] };
    ctx.out.result(
      { url: running.url, data_dir: config.dataDir, migrated, swept_temp_files: sweptTemp, swept_orphan_blobs: sweptOrphans, pid: process.pid, plugins },
      () => `iqp registry listening on ${running.url} (data: ${config.dataDir})`,
    );
    if (plugins.loaded.length > 0) ctx.out.note(`plugins started: ${plugins.loaded.map((p) => `${p.id}@${p.version}`).join(', ')}`);
    for (const f of plugins.failed) ctx.out.warn(`plugin ${f.id} failed and is left out (its routes answer 503; /v1/health says degraded): ${f.code}: ${f.message}`);
    if (migrated.length > 0) ctx.out.note(`applied migrations ${migrated.join(', ')}`);
    if (sweptTemp + sweptOrphans > 0) ctx.out.note(`removed ${sweptTemp} unfinished upload(s) and ${sweptOrphans} unreferenced blob(s) left by an earlier stop`);
    return new Promise<number>((resolvePromise) => {
      onStop(async (signal) => {
        ctx.out.note(`${signal}: finishing requests and closing the database…`);
        await running.close();
        resolvePromise(0);
        return 0;
      });
    });
  },
};

const migrate = {
  define(): Command {
    return new Command('migrate').description('create or migrate the data directory without serving').addOption(dataOption());
  },
  async run(ctx: Context, opts: { data?: string }): Promise<void> {
    const dataDir = opts.data ? resolve(ctx.cwd, opts.data) : ctx.config.dataDir;
    // Refused while a server runs on it: that server runs the schema it started with.
    const lock = lockDataDir(dataDir, 'iqp server migrate');
    const migrated = await migrateDataDir(dataDir).finally(() => lock.release());
    ctx.out.result({ data_dir: dataDir, migrated }, () => (migrated.length > 0 ? `Applied migrations ${migrated.join(', ')} to ${dataDir}` : `${dataDir} is up to date`));
  },
};

const backup = {
  define(): Command {
    return new Command('backup')
      .description('back up the data directory while the server runs (SQLite online backup plus the blobs it refers to, with a checksum)')
      .requiredOption('-o, --out <file>', 'backup file to write (a .sha256 file is written beside it)')
      .addOption(dataOption());
  },
  async run(ctx: Context, opts: { out: string; data?: string }): Promise<void> {
    const dataDir = opts.data ? resolve(ctx.cwd, opts.data) : ctx.config.dataDir;
    const spinner = await ctx.out.spinner(`Backing up ${dataDir}…`);
    const result = await createBackup(dataDir, resolve(ctx.cwd, opts.out)).finally(() => spinner.stop());
    ctx.out.result({ ...result, data_dir: dataDir }, () =>
      [`Backed up ${result.packs} pack(s) from ${dataDir} to ${result.path} (${result.size_bytes} bytes)`, `  sha256 ${result.sha256}  (also in ${result.path}.sha256)`].join('\n'),
    );
  },
};

const restore = {
  define(): Command {
    return new Command('restore')
      .description('restore a backup into a data directory (checked completely before anything is moved into place)')
      .argument('<file>', 'backup made by iqp server backup')
      .addOption(dataOption())
      .option('-f, --force', 'replace a non-empty data directory (stop the server first)');
  },
  async run(ctx: Context, opts: { data?: string; force?: boolean }, file: string): Promise<void> {
    const dataDir = opts.data ? resolve(ctx.cwd, opts.data) : ctx.config.dataDir;
    const spinner = await ctx.out.spinner(`Restoring ${file}…`);
    const result = await restoreBackup(resolve(ctx.cwd, file), dataDir, { force: Boolean(opts.force) }).finally(() => spinner.stop());
    ctx.out.result(result, () => `Restored ${result.packs} pack(s) from a backup of ${result.created_at} into ${dataDir}. Start it with: iqp server start --data ${dataDir}`);
  },
};

export const serverGroup: CommandGroup = {
  group: () => new Command('server').description('run and maintain the registry server'),
  commands: [start, migrate, backup, restore],
};
