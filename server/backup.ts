/**
 * Backups of a registry data directory, safe while the server runs: SQLite's online backup API
 * takes a consistent snapshot, then the blobs that snapshot refers to are added (blobs are
 * immutable and content-addressed, so they cannot change under us), and then server.json and the
 * plugins' folders (copied as they are; plugins write their files atomically). The archive is a zstd tar
 * with backup.json listing every file's sha256, and a sidecar `<file>.sha256` for sha256sum -c
 * (it names the backup by its file name: run `sha256sum -c` in the backup's folder). Restore
 * checks everything (backup-check.ts) before anything is moved into place, and never replaces a
 * directory a server holds.
 */
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { openAtomic, trackTemp, writeFileAtomic } from '../src/atomic.js';
import { requireFolderFor } from '../src/files.js';
import { IqpError, toIqpError } from '../src/errors.js';
import { encodeFileHeader, END_OF_ARCHIVE, paddingFor, TarReader, type TarEntry } from '../src/pack/tar.js';
import { decompressTo, ZstdCompressor } from '../src/pack/zstd.js';
import { blobPath, checkBackupDatabase, invalidBackup } from './backup-check.js';
import { databasePath, requireRegistry } from './config.js';
import { migrateDataDir } from './datadir.js';
import { type DataDirLock, lockDataDir } from './lock.js';
import { blobRefs } from './stores/sqlite/metadata.js';
import { LATEST_SCHEMA } from './stores/sqlite/schema.js';

export const BACKUP_FORMAT = 1;
const MANIFEST = 'backup.json';
const DATABASE = 'registry.sqlite';

interface BackupFile {
  path: string;
  size_bytes: number;
  sha256: string;
}

interface BackupManifest {
  format: number;
  kind: 'iqp-registry-backup';
  created_at: string;
  schema_version: number;
  packs: number;
  files: BackupFile[];
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

export interface BackupResult {
  readonly path: string;
  readonly sha256: string;
  readonly size_bytes: number;
  readonly packs: number;
  readonly files: number;
}

export async function createBackup(dataDir: string, outPath: string, now: Date = new Date()): Promise<BackupResult> {
  const dbPath = databasePath(dataDir);
  requireRegistry(dataDir, { kind: 'sqlite' });
  requireFolderFor(outPath);
  const work = join(dirname(outPath), `.${basename(outPath)}.iqp-tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(work);
  const untrack = trackTemp(work);
  try {
    const snapshot = join(work, DATABASE);
    const source = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      await source.backup(snapshot);
    } finally {
      source.close();
    }
    const snap = new Database(snapshot);
    let refs: string[];
    let schemaVersion: number;
    try {
      snap.pragma('journal_mode = DELETE');
      refs = blobRefs(snap);
      schemaVersion = (snap.prepare('SELECT max(version) FROM schema_migrations').pluck().get() as number | null) ?? 0;
    } finally {
      snap.close();
    }
    const files: BackupFile[] = [];
    const sources = new Map<string, string>();
    const add = async (archivePath: string, localPath: string) => {
      const { sha256, size } = await sha256File(localPath);
      files.push({ path: archivePath, size_bytes: size, sha256 });
      sources.set(archivePath, localPath);
    };
    await add(DATABASE, snapshot);
    for (const sha of refs) {
      const local = join(dataDir, blobPath(sha));
      if (!existsSync(local)) throw new IqpError('IQP_E_IO', `Blob ${sha} is referenced by the database but missing from ${dataDir}; the data directory is damaged.`);
      await add(blobPath(sha), local);
    }
    for (const path of await privateFiles(dataDir)) await add(path, join(dataDir, path));
    const manifest: BackupManifest = { format: BACKUP_FORMAT, kind: 'iqp-registry-backup', created_at: now.toISOString(), schema_version: schemaVersion, packs: refs.length, files };
    const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const mtime = Math.floor(now.getTime() / 1000);

    const out = openAtomic(outPath, 0o600);
    const archiveHash = createHash('sha256');
    let archiveSize = 0;
    const zstd = new ZstdCompressor(3, (chunk) => {
      archiveHash.update(chunk);
      archiveSize += chunk.length;
      out.write(chunk);
    });
    try {
      zstd.write(encodeFileHeader(MANIFEST, manifestBytes.length, mtime));
      zstd.write(manifestBytes);
      zstd.write(Buffer.alloc(paddingFor(manifestBytes.length)));
      for (const f of files) {
        zstd.write(encodeFileHeader(f.path, f.size_bytes, mtime));
        const fh = await open(sources.get(f.path)!, 'r');
        try {
          const buf = Buffer.allocUnsafe(1024 * 1024);
          let done = 0;
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, null);
            if (bytesRead === 0) break;
            zstd.write(buf.subarray(0, bytesRead));
            done += bytesRead;
          }
          if (done !== f.size_bytes) throw new IqpError('IQP_E_IO', `${f.path} changed size during the backup.`);
        } finally {
          await fh.close();
        }
        zstd.write(Buffer.alloc(paddingFor(f.size_bytes)));
      }
      zstd.write(END_OF_ARCHIVE);
      zstd.end();
      out.commit();
    } finally {
      out.abort();
    }
    const sha256 = archiveHash.digest('hex');
    writeFileAtomic(`${outPath}.sha256`, `${sha256}  ${basename(outPath)}\n`);
    return { path: outPath, sha256, size_bytes: archiveSize, packs: refs.length, files: files.length };
  } finally {
    await rm(work, { recursive: true, force: true });
    untrack();
  }
}

/**
 * What a data directory keeps besides the database and blobs: server.json (which plugins run, and
 * their config) and the plugins' own folders (plugins/<id>/…, e.g. the auth plugin's signing keys).
 */
const PRIVATE_PATH = /^(server\.json|plugins\/[a-z][a-z0-9-]{0,31}(\/(?!\.\.?(\/|$))[^/\x00-\x1f]{1,255})+)$/;

function isPrivatePath(path: string): boolean {
  return PRIVATE_PATH.test(path);
}

/** server.json and the regular files under plugins/ (symbolic links are not followed), as archive paths. */
async function privateFiles(dataDir: string): Promise<string[]> {
  const out = existsSync(join(dataDir, 'server.json')) ? ['server.json'] : [];
  const root = join(dataDir, 'plugins');
  if (!existsSync(root)) return out;
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = relative(dataDir, join(e.parentPath, e.name)).split(sep).join('/');
    if (!isPrivatePath(path)) throw new IqpError('IQP_E_IO', `${join(dataDir, path)} cannot be backed up: plugin files are named without control characters, under plugins/<id>/.`);
    out.push(path);
  }
  return out.sort();
}

/** backup.json's shape: one registry.sqlite, blobs by their content address, server.json and plugins' files, each path once. */
function checkManifest(manifest: BackupManifest): void {
  if (manifest?.kind !== 'iqp-registry-backup' || manifest.format !== BACKUP_FORMAT || !Array.isArray(manifest.files)) {
    throw invalidBackup('backup.json is not an iqp backup manifest.');
  }
  if (!Number.isSafeInteger(manifest.schema_version) || manifest.schema_version < 1) throw invalidBackup(`backup.json gives no valid schema_version.`);
  const paths = new Set<string>();
  for (const f of manifest.files) {
    if (typeof f?.path !== 'string' || (f.path !== DATABASE && !/^blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f.path) && !isPrivatePath(f.path))) {
      throw invalidBackup(`unsafe path ${String(f?.path)}.`);
    }
    if (paths.has(f.path)) throw invalidBackup(`backup.json lists ${f.path} twice.`);
    paths.add(f.path);
  }
  if (!paths.has(DATABASE)) throw invalidBackup(`backup.json does not list ${DATABASE}; a registry backup always holds its database.`);
}

/** Streams a backup into `dir`, checking each file against backup.json. */
async function extractBackup(file: string, dir: string): Promise<BackupManifest> {
  let manifest: BackupManifest | null = null;
  const manifestChunks: Buffer[] = [];
  const seen = new Set<string>();
  let current: { entry: TarEntry; hash: ReturnType<typeof createHash>; fd: number | null } | null = null;
  const { openSync, writeSync, closeSync, mkdirSync, fsyncSync } = await import('node:fs');
  const corrupt = invalidBackup;
  const reader = new TarReader(
    {
      entry(entry) {
        if (entry.type !== 'File') throw corrupt(`${entry.path} is not a regular file.`);
        if (entry.index === 0) {
          if (entry.path !== MANIFEST || entry.size > 64 * 1024 * 1024) throw corrupt('it does not start with backup.json.');
          current = { entry, hash: createHash('sha256'), fd: null };
          return;
        }
        const listed = manifest?.files.find((f) => f.path === entry.path);
        if (!listed || seen.has(entry.path) || listed.size_bytes !== entry.size) throw corrupt(`unexpected entry ${entry.path}.`);
        seen.add(entry.path);
        // server.json and plugins' files may hold secrets: restored readable by the owner only.
        const owner = isPrivatePath(entry.path);
        mkdirSync(join(dir, dirname(entry.path)), { recursive: true, ...(owner ? { mode: 0o700 } : {}) });
        current = { entry, hash: createHash('sha256'), fd: openSync(join(dir, entry.path), 'wx', owner ? 0o600 : 0o644) };
      },
      data(chunk) {
        current!.hash.update(chunk);
        if (current!.fd === null) manifestChunks.push(Buffer.from(chunk));
        else writeSync(current!.fd, chunk);
      },
      entryEnd(entry) {
        const cur = current!;
        current = null;
        const sha = cur.hash.digest('hex');
        if (cur.fd === null) {
          manifest = JSON.parse(Buffer.concat(manifestChunks).toString('utf8')) as BackupManifest;
          checkManifest(manifest);
          return;
        }
        fsyncSync(cur.fd);
        closeSync(cur.fd);
        const listed = manifest!.files.find((f) => f.path === entry.path)!;
        if (listed.sha256 !== sha) throw corrupt(`${entry.path} has sha256 ${sha}, backup.json says ${listed.sha256}.`);
        if (entry.path.startsWith('blobs/') && basename(entry.path) !== sha) throw corrupt(`blob ${entry.path} does not hash to its name.`);
      },
    },
    1024 * 1024,
  );
  try {
    await decompressTo(createReadStream(file, { highWaterMark: 1024 * 1024 }), (chunk) => reader.write(chunk));
    reader.end();
  } catch (err) {
    if (err instanceof IqpError && err.code === 'IQP_E_BACKUP_INVALID') throw err;
    // A failing disk is not the backup's fault; anything else (zstd, tar, JSON) is.
    if (typeof (err as { syscall?: unknown }).syscall === 'string') throw toIqpError(err);
    throw corrupt((err as Error).message);
  } finally {
    const open = current as { fd: number | null } | null;
    if (open?.fd != null) closeSync(open.fd);
  }
  if (!manifest) throw corrupt('backup.json is missing.');
  const missing = (manifest as BackupManifest).files.filter((f) => !seen.has(f.path));
  if (missing.length > 0) throw corrupt(`${missing.length} file(s) listed in backup.json are missing, e.g. ${missing[0]!.path}.`);
  return manifest;
}

export interface RestoreResult {
  readonly data_dir: string;
  readonly packs: number;
  readonly files: number;
  readonly created_at: string;
  /** Migrations applied to bring the backup up to this iqp's schema. */
  readonly migrated: number[];
}

export async function restoreBackup(file: string, dataDir: string, options: { force?: boolean } = {}): Promise<RestoreResult> {
  if (!existsSync(file)) throw new IqpError('IQP_E_FILE_NOT_FOUND', `Backup not found: ${file}`);
  const sidecar = `${file}.sha256`;
  if (existsSync(sidecar)) {
    const expected = (await (await import('node:fs/promises')).readFile(sidecar, 'utf8')).split(/\s+/)[0];
    const { sha256 } = await sha256File(file);
    if (sha256 !== expected) throw invalidBackup(`its sha256 is ${sha256}; ${basename(sidecar)} says ${expected}.`);
  }
  const existing = await readdir(dataDir).catch(() => null);
  if (existing && existing.length > 0 && !options.force) {
    throw new IqpError('IQP_E_TARGET_NOT_EMPTY', `${dataDir} is not empty; restore into a new directory, or pass --force to replace it.`);
  }
  // A server on the directory would go on serving the replaced database: refused while one holds it.
  const lock: DataDirLock | null = existing && existing.length > 0 ? lockDataDir(dataDir, 'iqp server restore') : null;
  const staging = join(dirname(dataDir), `.${basename(dataDir)}.iqp-tmp-${randomBytes(4).toString('hex')}`);
  const untrack = trackTemp(staging);
  try {
    await mkdir(dirname(dataDir), { recursive: true });
    await mkdir(staging);
    const manifest = await extractBackup(file, staging);
    if (manifest.schema_version > LATEST_SCHEMA) {
      throw new IqpError('IQP_E_CONFIG', `The backup has schema version ${manifest.schema_version}; this iqp knows up to ${LATEST_SCHEMA}. Upgrade iqp first.`);
    }
    checkBackupDatabase(staging, DATABASE, manifest.schema_version);
    // Brought up to this iqp's schema before it is moved into place, so no server ever sees it half-migrated.
    const migrated = await migrateDataDir(staging);
    await writeFile(join(staging, 'RESTORED_FROM'), `${basename(file)} (${manifest.created_at})\n`);
    if (existing) {
      // Keep the replaced directory until the new one is in place.
      const old = `${dataDir}.replaced-${Date.now()}`;
      await rename(dataDir, old);
      await rename(staging, dataDir);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(staging, dataDir);
    }
    const info = await stat(dataDir);
    if (!info.isDirectory()) throw new IqpError('IQP_E_IO', `${dataDir} was not created.`);
    return { data_dir: dataDir, packs: manifest.packs, files: manifest.files.length, created_at: manifest.created_at, migrated };
  } finally {
    await rm(staging, { recursive: true, force: true });
    untrack();
    lock?.release();
  }
}
