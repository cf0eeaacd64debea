/**
 * Helpers for the data-directory tests: what a crash leaves behind (a staged upload in tmp/, a
 * blob no row refers to), planted by hand, and a snapshot of a directory's files and their bytes to
 * prove a refused command changed nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_FILE } from '../../server/lock.js';
import { ORPHAN_GRACE_MS } from '../../server/stores/types.js';
import { iqp, listTree, type RunResult } from '../e2e/helpers.js';

export interface Leftovers {
  /** Name of the staged upload in tmp/. */
  readonly staged: string;
  /** sha256 of the blob no row refers to. */
  readonly orphan: string;
}

/**
 * A half-written upload in tmp/ and a committed blob without its row, as a SIGKILL leaves them; the
 * blob is dated past the grace period, as a crash some time ago leaves it (a younger one is kept).
 */
export function plantLeftovers(dataDir: string): Leftovers {
  const staged = `upload-${Date.now()}-${randomBytes(8).toString('hex')}`;
  mkdirSync(join(dataDir, 'tmp'), { recursive: true });
  writeFileSync(join(dataDir, 'tmp', staged), randomBytes(4096));
  const bytes = randomBytes(4096);
  const orphan = createHash('sha256').update(bytes).digest('hex');
  mkdirSync(join(dataDir, 'blobs', 'sha256', orphan.slice(0, 2)), { recursive: true });
  const orphanPath = join(dataDir, 'blobs', 'sha256', orphan.slice(0, 2), orphan);
  writeFileSync(orphanPath, bytes);
  const longAgo = new Date(Date.now() - 2 * ORPHAN_GRACE_MS);
  utimesSync(orphanPath, longAgo, longAgo);
  return { staged, orphan };
}

/** Which of the planted leftovers are still there, as relative paths. */
export function leftoversPresent(dataDir: string, l: Leftovers): string[] {
  const tree = listTree(dataDir);
  return [`tmp/${l.staged}`, `blobs/sha256/${l.orphan.slice(0, 2)}/${l.orphan}`].filter((p) => tree.includes(p));
}

/**
 * Every file under dir with its inode and sha256: a replaced, rewritten or removed file shows.
 * SQLite's shared-memory index (-shm) is compared by inode only: readers update it. So is the lock
 * file: opening and closing it outside SQLite would drop this process's own lock on it (fcntl).
 */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of listTree(dir)) {
    const path = join(dir, rel);
    const content = rel.endsWith('-shm') || rel === LOCK_FILE ? `${statSync(path).size}` : createHash('sha256').update(readFileSync(path)).digest('hex');
    out[rel] = `${statSync(path).ino}:${content}`;
  }
  return out;
}

/** `iqp ARGS --json` with the data directory as home (no config file from the machine). */
export function iqpIn(dataDir: string, args: readonly string[], cwd = dataDir): Promise<RunResult> {
  return iqp([...args, '--json'], { cwd, env: { HOME: cwd, XDG_CONFIG_HOME: undefined }, timeoutMs: 30_000 });
}
