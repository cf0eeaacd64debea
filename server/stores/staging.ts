/**
 * What every blob store does on the local disk: an upload is staged in a local file (written and
 * verified there before it is committed, wherever the store keeps its blobs), and blobs are named
 * only by a well-formed sha256.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IqpError } from '../../src/errors.js';

export const SHA256 = /^[0-9a-f]{64}$/;

/** Refuses anything but 64 lowercase hex digits before it can become part of a path or key. */
export function assertSha256(sha256: string): void {
  if (!SHA256.test(sha256)) throw new IqpError('IQP_E_INTERNAL', `Not a sha256: ${sha256}`);
}

/** A new, empty staged file in `dir`, never one that exists. */
export async function createStagedFile(dir: string): Promise<string> {
  const path = join(dir, `upload-${Date.now()}-${randomBytes(8).toString('hex')}`);
  await writeFile(path, '', { flag: 'wx', mode: 0o644 });
  return path;
}

/** Fails unless `dir` takes a write; leaves nothing behind. */
export async function probeWritable(dir: string): Promise<void> {
  const probe = join(dir, `.health-${randomBytes(4).toString('hex')}`);
  await writeFile(probe, 'ok');
  await unlink(probe);
}

/**
 * Removes everything staged in `dir`, uploads in flight included: only for the one process that
 * stages there, before it serves (server/datadir.ts recoverDataDir). Returns how many.
 */
export async function removeStaged(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    await rm(join(dir, name), { recursive: true, force: true });
    removed += 1;
  }
  return removed;
}
