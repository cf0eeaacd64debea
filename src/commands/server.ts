/** `iqp server start | migrate | backup | restore | migrate-store`: running and maintaining the registry server. */
import { Command } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { onStop } from '../lifecycle.js';
import { databaseChoice, serverConfig, type ServerConfig } from '../../server/config.js';
import { withSettings } from '../cli/setting-options.js';
import { maskPassword } from '../cli/setting-types.js';
import { migrateDataDir } from '../../server/datadir.js';
import { lockDataDir } from '../../server/lock.js';
import { IqpError } from '../errors.js';
import { requireFile } from '../files.js';
import { migrateStoreCommand } from './server-migrate-store.js';
import type { CommandGroup } from './types.js';

/** The registry's settings as `iqp server start` resolved them (flags included): ctx.config has every one, by the same name. */
export function resolveServerConfig(ctx: Context): ServerConfig {
  const c = ctx.config;
  return serverConfig({
    dataDir: c.dataDir,
    host: c.host,
    port: c.port,
    maxUploadBytes: c.maxUploadBytes,
    maxContentBytes: c.maxContentBytes,
    maxCompressionRatio: c.maxCompressionRatio,
    publicUrl: c.publicUrl,
    trustProxy: c.trustProxy,
    corsOrigins: c.corsOrigins,
    logRequests: c.logRequests,
    channels: c.channels,
    jsonCacheBytes: c.jsonCacheBytes,
    maxConcurrentUploads: c.maxConcurrentUploads,
    maxConnections: c.maxConnections,
    headersTimeoutMs: c.headersTimeoutMs,
    requestTimeoutMs: c.requestTimeoutMs,
    uploadIdleTimeoutMs: c.uploadIdleTimeoutMs,
    databaseUrl: c.databaseUrl,
    databasePoolSize: c.databasePoolSize,
    blobStore: c.blobStore,
    s3Endpoint: c.s3Endpoint,
    s3Region: c.s3Region,
    s3Bucket: c.s3Bucket,
    s3Prefix: c.s3Prefix,
    s3ForcePathStyle: c.s3ForcePathStyle,
    s3Checksums: c.s3Checksums,
    s3PublicUrl: c.s3PublicUrl,
    downloadMode: c.downloadMode,
    downloadUrlTtlS: c.downloadUrlTtlS,
  });
}

const start = {
  define(): Command {
    return withSettings(new Command('start').description('serve the registry (creates and migrates the data directory on first start)'), 'server start');
  },
  async run(ctx: Context): Promise<number> {
    const config = resolveServerConfig(ctx);
    const log = (line: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
    const count = ctx.config.workers;
    // Imported for the path taken: a primary of worker processes serves nothing, and needs none of
    // the app's modules (Express, the routes, the validators) that every worker loads for itself.
    const running =
      count > 1
        ? await (await import('../../server/cluster.js')).startCluster(config, count, log)
        : await (await import('../../server/start.js'))
            .startServer(config, log)
            .then((r) => ({ ...r, recovery: r.recovery!, plugins: r.plugins?.status() ?? { loaded: [], failed: [] }, workers: () => [] }));
    // This process holds the lock, so it ran recovery.
    const { migrated, sweptTemp, sweptOrphans } = running.recovery;
    const plugins = running.plugins;
    const workers = running.workers();
    ctx.out.result(
      { url: running.url, data_dir: config.dataDir, database: config.databaseUrl === null ? 'sqlite' : maskPassword(config.databaseUrl), migrated, swept_temp_files: sweptTemp, swept_orphan_blobs: sweptOrphans, pid: process.pid, workers, plugins },
      () => `iqp registry listening on ${running.url} (data: ${config.dataDir}${workers.length > 0 ? `; ${workers.length} worker processes` : ''})`,
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
    return withSettings(new Command('migrate').description('create or migrate the data directory without serving'), 'server migrate');
  },
  async run(ctx: Context): Promise<void> {
    const dataDir = ctx.config.dataDir;
    // Refused while a server runs on it: that server runs the schema it started with.
    const lock = lockDataDir(dataDir, 'iqp server migrate');
    const migrated = await migrateDataDir(dataDir, databaseChoice(ctx.config)).finally(() => lock.release());
    ctx.out.result({ data_dir: dataDir, migrated }, () => (migrated.length > 0 ? `Applied migrations ${migrated.join(', ')} to ${dataDir}` : `${dataDir} is up to date`));
  },
};

/**
 * Backups cover the embedded registry: registry.sqlite and blobs/. On PostgreSQL or a bucket they
 * would copy a data directory that holds none of it and report success, so they are refused.
 */
function embeddedOnly(ctx: Context, command: string): void {
  const elsewhere = [ctx.config.databaseUrl !== null ? 'database_url is set (the metadata is in PostgreSQL: back it up with pg_dump)' : null, ctx.config.blobStore === 's3' ? 'blob_store is s3 (the packs are in the bucket: use its versioning or replication)' : null].filter((w) => w !== null);
  if (elsewhere.length > 0) {
    throw new IqpError('IQP_E_CONFIG', `iqp server ${command} covers a registry kept in its data directory, but ${elsewhere.join(', and ')}.`, { command }, { hint: 'docs/scaling.md says how to back up a registry on PostgreSQL and object storage.' });
  }
}

const backup = {
  define(): Command {
    const cmd = new Command('backup')
      .description('back up the data directory while the server runs (SQLite online backup plus the blobs it refers to, with a checksum)')
      .requiredOption('-o, --out <file>', 'backup file to write (a .sha256 file is written beside it)');
    return withSettings(cmd, 'server backup');
  },
  async run(ctx: Context, opts: { out: string }): Promise<void> {
    embeddedOnly(ctx, 'backup');
    const dataDir = ctx.config.dataDir;
    const { createBackup } = await import('../../server/backup.js');
    const spinner = await ctx.out.spinner(`Backing up ${dataDir}…`);
    const result = await createBackup(dataDir, resolve(ctx.cwd, opts.out)).finally(() => spinner.stop());
    ctx.out.result({ ...result, data_dir: dataDir }, () =>
      [`Backed up ${result.packs} pack(s) from ${dataDir} to ${result.path} (${result.size_bytes} bytes)`, `  sha256 ${result.sha256}  (also in ${result.path}.sha256)`].join('\n'),
    );
  },
};

const restore = {
  define(): Command {
    const cmd = new Command('restore')
      .description('restore a backup into a data directory (checked completely before anything is moved into place)')
      .argument('<file>', 'backup made by iqp server backup');
    return withSettings(cmd, 'server restore').option('-f, --force', 'replace a non-empty data directory (stop the server first)');
  },
  async run(ctx: Context, opts: { force?: boolean }, file: string): Promise<void> {
    embeddedOnly(ctx, 'restore');
    const dataDir = ctx.config.dataDir;
    await requireFile(resolve(ctx.cwd, file), 'Backup');
    const { restoreBackup } = await import('../../server/backup.js');
    const spinner = await ctx.out.spinner(`Restoring ${file}…`);
    const result = await restoreBackup(resolve(ctx.cwd, file), dataDir, { force: Boolean(opts.force) }).finally(() => spinner.stop());
    ctx.out.result(result, () => `Restored ${result.packs} pack(s) from a backup of ${result.created_at} into ${dataDir}. Start it with: iqp server start --data ${dataDir}`);
  },
};

export const serverGroup: CommandGroup = {
  group: () => new Command('server').description('run and maintain the registry server'),
  commands: [start, migrate, backup, restore, migrateStoreCommand],
};
