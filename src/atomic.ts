/**
 * Atomic file output: write to a temp file in the destination's directory, fsync, rename, fsync
 * the directory. A crash or error at any point leaves either the old file or the new one, never a
 * partial one; the temp file is removed on failure.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { requireFolderFor } from './files.js';

export const TEMP_MARKER = '.iqp-tmp-';

/** Temp paths still being written, removed if the process is interrupted (SIGINT/SIGTERM). */
const pending = new Set<string>();

/** Registers a temp path (file or directory) for removal on interruption; returns the unregister function. */
export function trackTemp(path: string): () => void {
  pending.add(path);
  return () => pending.delete(path);
}

export function removePendingTemps(): void {
  for (const path of pending) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
  pending.clear();
}

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}${TEMP_MARKER}${randomBytes(6).toString('hex')}`);
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface AtomicFile {
  readonly fd: number;
  readonly tempPath: string;
  write(chunk: Uint8Array): void;
  /** fsync, close and rename into place. */
  commit(): void;
  /** Close and remove the temp file; safe to call after commit (does nothing then). */
  abort(): void;
}

export function openAtomic(target: string, mode = 0o644): AtomicFile {
  const tempPath = tempPathFor(target);
  let fd: number;
  try {
    fd = openSync(tempPath, 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') requireFolderFor(target);
    throw err;
  }
  const untrack = trackTemp(tempPath);
  let open = true;
  let done = false;
  return {
    fd,
    tempPath,
    write(chunk) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    },
    commit() {
      fsyncSync(fd);
      closeSync(fd);
      open = false;
      renameSync(tempPath, target);
      untrack();
      done = true;
      fsyncDir(dirname(target));
    },
    abort() {
      if (done) return;
      if (open) closeSync(fd);
      open = false;
      try {
        unlinkSync(tempPath);
      } catch {
        // already gone
      }
      untrack();
      done = true;
    },
  };
}

/** Moves a finished temp file into place durably: fsync it, rename it, fsync the directory. */
export function renameDurable(tempPath: string, target: string): void {
  const fd = openSync(tempPath, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tempPath, target);
  fsyncDir(dirname(target));
}

/** Writes a whole small file atomically. */
export function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): void {
  const file = openAtomic(target, mode);
  try {
    file.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    file.commit();
  } finally {
    file.abort();
  }
}
