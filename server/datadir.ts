/**
 * A registry data directory (registry.sqlite, blobs/, tmp/): opening its stores, migrating it, and
 * recovering it after a crash. Opening has no side effects on what a running server relies on, so
 * token commands and workers may open a directory that a server is using. Migrating needs the
 * directory to itself; recovering (removing staged uploads and unreferenced blobs) needs the lock
 * (server/lock.ts), which only `server start` holds.
 *
 * With `blob_store = s3` the pack bytes live in an S3-compatible bucket (staged uploads stay in tmp/).
 * With `database_url` the metadata lives in PostgreSQL instead of registry.sqlite (DatabaseChoice):
 * its migrations run under PostgreSQL's own advisory lock, so any number of servers and commands
 * may open and migrate it at once; the data directory keeps the blobs and staged uploads.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type BlobChoice, type DatabaseChoice, databasePath, type StorageChoice } from './config.js';
import { type DataDirLock, lockDataDir } from './lock.js';
import { FsBlobStore } from './stores/fs-blobs.js';
import { SqliteMetadataStore } from './stores/sqlite/metadata.js';
import { SqliteReleaseStore } from './stores/sqlite/releases.js';
import type { ReleaseStore } from './stores/release-types.js';
import type { BlobStore, MetadataStore } from './stores/types.js';
import { appliedVersions, LATEST_SCHEMA } from './stores/sqlite/schema.js';
import { ORPHAN_GRACE_MS } from './stores/types.js';

export interface OpenedStores {
  readonly meta: MetadataStore;
  readonly releases: ReleaseStore;
  readonly blobs: BlobStore;
  /** Migrations applied while opening (a new or older directory), usually none. */
  readonly migrated: number[];
}

export interface Recovery {
  readonly migrated: number[];
  /** Staged uploads removed from tmp/. */
  readonly sweptTemp: number;
  /** Blobs removed because no row refers to them (and they are older than ORPHAN_GRACE_MS). */
  readonly sweptOrphans: number;
}

/** The newest migration recorded in the directory's database; 0 if it has none or does not exist. */
function schemaVersionOf(dataDir: string): number {
  const path = databasePath(dataDir);
  if (!existsSync(path)) return 0;
  const db = new Database(path, { fileMustExist: true, timeout: 5000 });
  try {
    return appliedVersions(db).at(-1) ?? 0;
  } finally {
    db.close();
  }
}

const EMBEDDED: StorageChoice = { database: { kind: 'sqlite' }, blobs: { kind: 'fs' } };

/**
 * The blob store `blobs` names, for the data directory `dataDir` (which stages uploads for a bucket
 * too). The S3 store's module (the AWS SDK, a quarter of a second to load) is loaded only for a
 * bucket, as the PostgreSQL stores' are only for a database: the embedded registry and the
 * commands on it start without them.
 */
export async function openBlobs(dataDir: string, blobs: BlobChoice): Promise<BlobStore> {
  if (blobs.kind === 'fs') return new FsBlobStore(dataDir);
  const { S3BlobStore } = await import('./stores/s3-blobs.js');
  const { endpoint, publicUrl, ...rest } = blobs;
  return new S3BlobStore({ ...rest, ...(endpoint === null ? {} : { endpoint }), ...(publicUrl === null ? {} : { publicUrl }), stagingDir: join(dataDir, 'tmp') });
}

/** The metadata and release stores over the chosen database, not yet migrated. */
async function openDatabase(dataDir: string, database: DatabaseChoice): Promise<{ meta: MetadataStore; releases: ReleaseStore }> {
  if (database.kind === 'postgres') {
    const [{ PostgresMetadataStore }, { PostgresReleaseStore }] = await Promise.all([import('./stores/postgres/metadata.js'), import('./stores/postgres/releases.js')]);
    const meta = new PostgresMetadataStore({ connectionString: database.url, poolSize: database.poolSize });
    return { meta, releases: new PostgresReleaseStore(meta.db) };
  }
  const meta = new SqliteMetadataStore(databasePath(dataDir));
  return { meta, releases: new SqliteReleaseStore(meta) };
}

/**
 * Creates the directory's layout and applies pending migrations. The caller has the directory to
 * itself: it holds the lock, or the directory is its own (a restore's staging copy).
 */
export async function migrateDataDir(dataDir: string, database: DatabaseChoice = EMBEDDED.database): Promise<number[]> {
  mkdirSync(dataDir, { recursive: true });
  await new FsBlobStore(dataDir).init();
  const { meta } = await openDatabase(dataDir, database);
  try {
    return await meta.migrate();
  } finally {
    await meta.close();
  }
}

/** The stores, migrated when on PostgreSQL (which also starts following its change counter); an S3 bucket is checked. */
async function open(dataDir: string, storage: StorageChoice, migrated: number[]): Promise<OpenedStores> {
  mkdirSync(dataDir, { recursive: true });
  const { meta, releases } = await openDatabase(dataDir, storage.database);
  try {
    const blobs = await openBlobs(dataDir, storage.blobs);
    await blobs.init();
    if (storage.database.kind === 'postgres') migrated = await meta.migrate();
    return { meta, releases, blobs, migrated };
  } catch (err) {
    await meta.close();
    throw err;
  }
}

/**
 * Opens the stores to read and add rows; never touches tmp/ or blobs. A directory that does not
 * exist yet or is behind this iqp's schema is created and migrated first, under the lock for that
 * moment only: refused (IQP_E_DATA_DIR_LOCKED) while a server holds it, as an older server may be
 * running on it. `command` names the caller in the lock's holder file. (The CLI's commands refuse a
 * directory that holds no registry before they get here: requireRegistry in config.ts.)
 */
export async function openStores(dataDir: string, command: string, storage: StorageChoice = EMBEDDED): Promise<OpenedStores> {
  if (storage.database.kind === 'postgres' || schemaVersionOf(dataDir) >= LATEST_SCHEMA) return open(dataDir, storage, []);
  const lock = lockDataDir(dataDir, command);
  try {
    return await open(dataDir, storage, await migrateDataDir(dataDir));
  } finally {
    lock.release();
  }
}

/**
 * For the process that holds the lock, before it serves: migrates, opens the stores, and removes
 * what a crash left (staged uploads in tmp/; blobs committed before a crash kept their row from
 * being written). Safe only because no other process may be uploading: that is what the lock is for.
 * Unreferenced blobs younger than ORPHAN_GRACE_MS are kept for a later start: where blobs live in a
 * bucket that several servers share, one may be a blob another server has just committed and is
 * about to write the row for, which the lock on this directory knows nothing about.
 */
export async function recoverDataDir(lock: DataDirLock, storage: StorageChoice = EMBEDDED, now: () => number = Date.now): Promise<{ stores: OpenedStores; recovery: Recovery }> {
  const migrated = storage.database.kind === 'sqlite' ? await migrateDataDir(lock.dataDir) : [];
  const stores = await open(lock.dataDir, storage, migrated);
  try {
    const sweptTemp = await stores.blobs.sweep();
    // Blobs first, rows second: a blob whose row is written before the rows are read counts as referenced.
    const blobs = await stores.blobs.list();
    const referenced = new Set(await stores.meta.listBlobRefs());
    const cutoff = now() - ORPHAN_GRACE_MS;
    let sweptOrphans = 0;
    for (const { sha256, modifiedAt } of blobs) {
      if (!referenced.has(sha256) && modifiedAt.getTime() < cutoff) {
        await stores.blobs.delete(sha256);
        sweptOrphans += 1;
      }
    }
    return { stores, recovery: { migrated: stores.migrated, sweptTemp, sweptOrphans } };
  } catch (err) {
    await stores.meta.close();
    throw err;
  }
}
