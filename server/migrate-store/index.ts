/**
 * `iqp server migrate-store`: moves a registry from its data directory (registry.sqlite, blobs/)
 * to the storage its configuration names (PostgreSQL with database_url, a bucket with
 * blob_store = s3, or both), once, in a maintenance window. The data directory is the source and
 * is left as it was (it is the rollback); its lock is held throughout, so no server runs on it.
 *
 * The order makes every failure safe to run again: checks that write nothing (the lock, both
 * schemas, the plugins, an empty target), then the target's migrations and the table mapping (a
 * table or column the target would lack stops it here), then the blobs (idempotent: what landed
 * is skipped next time), then every row in one transaction (all or nothing), then verification
 * of both before success is reported.
 */
import { IqpError, isIqpError } from '../../src/errors.js';
import type { StorageChoice } from '../config.js';
import { openBlobs } from '../datadir.js';
import { lockDataDir } from '../lock.js';
import { FsBlobStore } from '../stores/fs-blobs.js';
import { applyPgMigrations } from '../stores/postgres/schema.js';
import { S3BlobStore } from '../stores/s3-blobs.js';
import type { BlobStore } from '../stores/types.js';
import { type BlobCopy, copyBlobs, planBlobs, verifyBlobs } from './blobs.js';
import { copyDatabase, planCopy, refuseOccupied, registryTables, type TableCount, verifyDatabase } from './copy.js';
import { checkPlugins, migratePlugins, registryPlugins } from './plugins.js';
import { SourceRegistry } from './source.js';
import { PgTarget, pgFailure } from './target.js';

export const MIGRATE_STORE = 'iqp server migrate-store';

export interface MigrateStoreOptions {
  readonly dataDir: string;
  /** The storage the registry moves to, as `server start` will use it. */
  readonly storage: StorageChoice;
  /** Check everything and say what would move, writing nothing. */
  readonly dryRun?: boolean;
  /** One line per step, for people. */
  readonly progress?: (line: string) => void;
  readonly now?: () => Date;
}

export interface MigrateStoreResult {
  readonly data_dir: string;
  readonly dry_run: boolean;
  readonly registry_id: string;
  /** Dry run only: who holds the data directory now (a real run would be refused until it stops); null when nobody. */
  readonly source_in_use: string | null;
  readonly database: {
    /** Every table with its rows in the source and, after the copy, in PostgreSQL (null in a dry run). */
    readonly tables: readonly TableCount[];
    readonly rows: number;
    /** The migrations applied to the target now (null in a dry run). */
    readonly migrated: { readonly core: readonly number[]; readonly plugins: Readonly<Record<string, readonly string[]>> } | null;
  } | null;
  readonly blobs: (BlobCopy & { readonly to: string; readonly to_copy: number }) | null;
  readonly duration_ms: number;
}

/** Who holds the directory's lock, without keeping it: a dry run reports it rather than refusing. */
function holderOf(dataDir: string): string | null {
  try {
    lockDataDir(dataDir, `${MIGRATE_STORE} --dry-run`).release();
    return null;
  } catch (err) {
    if (isIqpError(err, 'IQP_E_DATA_DIR_LOCKED')) return err.message;
    throw err;
  }
}

export async function migrateStore(o: MigrateStoreOptions): Promise<MigrateStoreResult> {
  const started = Date.now();
  if (o.storage.database.kind === 'sqlite' && o.storage.blobs.kind === 'fs') {
    throw new IqpError('IQP_E_CONFIG', `Nothing to move: database_url is not set and blob_store is fs, so the storage configured is ${o.dataDir} itself.`, { data_dir: o.dataDir }, {
      hint: 'Set database_url (PostgreSQL) and/or blob_store = s3 with its s3_* settings, as `iqp server start` will use them after the move, then run migrate-store.',
    });
  }
  SourceRegistry.exists(o.dataDir);
  const inUse = o.dryRun ? holderOf(o.dataDir) : null;
  const lock = o.dryRun ? null : lockDataDir(o.dataDir, MIGRATE_STORE);
  try {
    const source = SourceRegistry.open(o.dataDir);
    try {
      const result = await move(source, o);
      return { ...result, data_dir: o.dataDir, dry_run: Boolean(o.dryRun), source_in_use: inUse, duration_ms: Date.now() - started };
    } finally {
      source.close();
    }
  } finally {
    lock?.release();
  }
}

async function move(source: SourceRegistry, o: MigrateStoreOptions): Promise<Pick<MigrateStoreResult, 'registry_id' | 'database' | 'blobs'>> {
  const say = o.progress ?? (() => {});
  const now = o.now ?? (() => new Date());
  const database = o.storage.database.kind === 'postgres' ? o.storage.database : null;
  source.checkSchema();
  const ledger = source.ledger();
  const plugins = database ? registryPlugins(o.dataDir, ledger) : [];
  await checkPlugins(plugins, ledger, o.dataDir);
  const tables = source.tables();
  const refs = source.blobRefs();
  const registryId = source.registryId();
  const rows = tables.reduce((n, t) => n + t.rows, 0);

  const target = database ? new PgTarget(database.url) : null;
  const blobs: BlobStore | null = o.storage.blobs.kind === 's3' ? await openBlobs(o.dataDir, o.storage.blobs) : null;
  const blobsTo = o.storage.blobs.kind === 's3' ? `s3://${o.storage.blobs.bucket}/${o.storage.blobs.prefix}` : '';
  try {
    let pluginIds = plugins.map((p) => p.id);
    if (target) {
      say('checking the PostgreSQL database…');
      await target.schema();
      const catalog = await target.catalog();
      if (catalog.has('plugin_migrations')) pluginIds = [...new Set([...pluginIds, ...(await target.query<{ id: string }>('SELECT DISTINCT plugin_id AS id FROM plugin_migrations')).map((r) => r.id)])];
      await refuseOccupied(target, registryTables(tables, catalog, pluginIds), registryId);
    }
    const fsBlobs = new FsBlobStore(o.dataDir);
    if (blobs) {
      say(`checking ${blobsTo}…`);
      await blobs.init();
    }
    const blobPlan = blobs ? await planBlobs(refs, fsBlobs, blobs) : null;
    if (o.dryRun) {
      return {
        registry_id: registryId,
        database: target ? { tables: tables.map((t) => ({ table: t.name, rows: t.rows, target_rows: null })), rows, migrated: null } : null,
        blobs: blobPlan && {
          to: blobsTo,
          referenced: refs.length,
          copied: 0,
          skipped: blobPlan.present.length,
          to_copy: blobPlan.missing.length,
          bytes_copied: 0,
          bytes_total: refs.reduce((n, r) => n + r.size, 0),
        },
      };
    }

    let prepared: { plan: ReturnType<typeof planCopy>; migrated: { core: number[]; plugins: Record<string, string[]> } } | null = null;
    if (target && database) {
      say('applying the PostgreSQL migrations…');
      const core = await applyPgMigrations(target.pool, now).catch((err: unknown) => Promise.reject(pgFailure(err, 'Applying the migrations')));
      const applied = await migratePlugins(database.url, plugins, now);
      const plan = planCopy(tables, await target.catalog(), pluginIds);
      prepared = { plan, migrated: { core, plugins: applied } };
    }
    const copied = blobs && blobPlan ? await copyBlobs(blobPlan, fsBlobs, blobs, (done, total, ref, action) => say(`blob ${done}/${total} ${action}: ${ref.pack} (${ref.size} bytes)`)) : null;
    let counts: TableCount[] = [];
    if (target && prepared) {
      say(`copying ${rows} row(s) of ${tables.length} tables in one transaction…`);
      await copyDatabase(source, target, prepared.plan, (table, n) => say(`${table}: ${n} row(s)`));
      say('checking the copy…');
      counts = await verifyDatabase(source, tables, target);
    }
    if (blobs) await verifyBlobs(refs, blobs);
    return {
      registry_id: registryId,
      database: prepared ? { tables: counts, rows, migrated: prepared.migrated } : null,
      blobs: copied && { ...copied, to: blobsTo, to_copy: 0 },
    };
  } finally {
    await target?.close();
    if (blobs instanceof S3BlobStore) blobs.client.destroy();
  }
}
