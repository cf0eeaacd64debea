/**
 * The data directory's owner lock. One process at a time may change what others rely on in a data
 * directory: run recovery (sweeping tmp/, removing unreferenced blobs), migrate it, or replace it
 * with a restore. `iqp server start` holds the lock for its lifetime; token commands and backups
 * work beside it without it.
 *
 * The lock is an OS file lock, so it dies with its process (SIGKILL, OOM, power loss) and needs no
 * stale-lock heuristics: lock.sqlite is opened with SQLite in EXCLUSIVE locking mode and written
 * once, and SQLite then keeps its fcntl lock on the file until the connection closes or the process
 * ends. SQLite also tracks its locks per file across connections of one process, so a second
 * attempt inside the same process is refused too (fcntl alone would grant it). The holder's PID,
 * command, host and start time go in a sidecar, lock.json, written atomically, so that a refused
 * command can name who to stop: the locked file itself cannot be read while it is held.
 *
 * fcntl locks belong to the process, and closing any descriptor of the file drops them all: in a
 * process that may hold the lock, never open lock.sqlite except through SQLite (which knows this).
 *
 * withFileLock takes the same kind of lock, briefly and with a bounded wait, on a file of its own
 * (server.json.lock), to serialize a read-modify-write of a small file across processes.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/atomic.js';
import { IqpError } from '../src/errors.js';

export const LOCK_FILE = 'lock.sqlite';
export const HOLDER_FILE = 'lock.json';

export interface LockHolder {
  readonly pid: number;
  /** What holds it, e.g. "iqp server start". */
  readonly command: string;
  readonly host: string;
  readonly since: string;
}

export interface DataDirLock {
  readonly dataDir: string;
  readonly holder: LockHolder;
  /** Gives the lock up; safe to call more than once. */
  release(): void;
}

function readHolder(dataDir: string): LockHolder | null {
  try {
    const doc = JSON.parse(readFileSync(join(dataDir, HOLDER_FILE), 'utf8')) as Partial<LockHolder>;
    return Number.isSafeInteger(doc.pid) ? (doc as LockHolder) : null;
  } catch {
    return null;
  }
}

function lockedError(dataDir: string, command: string): IqpError {
  const holder = readHolder(dataDir);
  const who = holder
    ? `\`${holder.command}\` (PID ${holder.pid} on ${holder.host}, since ${holder.since})`
    : `another process (it has not written ${HOLDER_FILE} yet)`;
  return new IqpError('IQP_E_DATA_DIR_LOCKED', `${dataDir} is in use by ${who}; \`${command}\` needs it to itself.`, { data_dir: dataDir, ...(holder ? { holder } : {}) });
}

/**
 * Takes an OS lock on `path` through SQLite (creating the file), waiting up to `waitMs` for another
 * process to give it up: SQLite's busy handler retries with short sleeps. Returns the connection
 * holding the lock (closing it, or the process ending, releases it), or null when the lock stayed
 * taken. In EXCLUSIVE locking mode, COMMIT keeps the write lock BEGIN EXCLUSIVE took.
 */
function takeSqliteLock(path: string, waitMs: number): Database.Database | null {
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: waitMs });
  } catch (err) {
    throw new IqpError('IQP_E_IO', `Cannot open ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS lock (note TEXT)');
    db.exec('COMMIT');
    return db;
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') return null;
    throw new IqpError('IQP_E_IO', `Cannot lock ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
}

/**
 * Runs `fn` holding an OS lock on `path` (a file used for nothing else), so that processes doing the
 * same wait for each other instead of overwriting each other's work: a read-modify-write of a
 * small file. Waits up to `waitMs`, then throws what `busy()` returns. A lock whose process died
 * was released by the OS with it, so there is nothing stale to clean up.
 */
export function withFileLock<T>(path: string, waitMs: number, busy: () => IqpError, fn: () => T): T {
  const db = takeSqliteLock(path, waitMs);
  if (!db) throw busy();
  try {
    return fn();
  } finally {
    db.close();
  }
}

/**
 * Takes the data directory's lock (creating the directory if needed) without waiting, or throws
 * IQP_E_DATA_DIR_LOCKED naming the holder.
 */
export function lockDataDir(dataDir: string, command: string, now: Date = new Date()): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const db = takeSqliteLock(join(dataDir, LOCK_FILE), 0);
  if (!db) throw lockedError(dataDir, command);
  const holder: LockHolder = { pid: process.pid, command, host: hostname(), since: now.toISOString() };
  try {
    writeFileAtomic(join(dataDir, HOLDER_FILE), `${JSON.stringify(holder)}\n`);
  } catch (err) {
    db.close();
    throw err;
  }
  let held = true;
  return {
    dataDir,
    holder,
    release() {
      if (!held) return;
      held = false;
      // The sidecar goes first, while the lock is still held, so it never removes a next holder's.
      rmSync(join(dataDir, HOLDER_FILE), { force: true });
      db.close();
    },
  };
}
