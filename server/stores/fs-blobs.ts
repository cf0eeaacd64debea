/**
 * Content-addressed blobs on a local disk: blobs/sha256/<2 hex>/<sha256>. Uploads are staged in
 * tmp/ on the same filesystem, so committing is an fsync and a rename; a crash leaves at most a
 * staged file, which sweep() removes at the next start.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { IqpError } from '../../src/errors.js';
import type { BlobRange, BlobStore, StagedBlob } from './types.js';

const SHA256 = /^[0-9a-f]{64}$/;
/** Large reads are the main lever for download throughput (Node's default is 64 KiB). */
const READ_SIZE = 1024 * 1024;

async function fsyncPath(path: string, flags = 'r'): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } catch {
    // directories cannot be fsynced on every filesystem; the rename is still atomic
  } finally {
    await fh.close();
  }
}

export class FsBlobStore implements BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.blobDir = join(root, 'blobs', 'sha256');
    this.tmpDir = join(root, 'tmp');
  }

  #path(sha256: string): string {
    if (!SHA256.test(sha256)) throw new IqpError('IQP_E_INTERNAL', `Not a sha256: ${sha256}`);
    return join(this.blobDir, sha256.slice(0, 2), sha256);
  }

  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  async health(): Promise<void> {
    const probe = join(this.tmpDir, `.health-${randomBytes(4).toString('hex')}`);
    await writeFile(probe, 'ok');
    await unlink(probe);
    await access(this.blobDir);
  }

  async stage(): Promise<StagedBlob> {
    const path = join(this.tmpDir, `upload-${Date.now()}-${randomBytes(8).toString('hex')}`);
    await writeFile(path, '', { flag: 'wx', mode: 0o644 });
    let settled = false;
    return {
      path,
      commit: async (sha256: string) => {
        const target = this.#path(sha256);
        await fsyncPath(path, 'r+');
        await mkdir(join(this.blobDir, sha256.slice(0, 2)), { recursive: true });
        await rename(path, target);
        await fsyncPath(join(this.blobDir, sha256.slice(0, 2)));
        settled = true;
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        await rm(path, { force: true });
      },
    };
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.size(sha256)) !== null;
  }

  async size(sha256: string): Promise<number | null> {
    const info = await stat(this.#path(sha256)).catch(() => null);
    return info?.isFile() ? info.size : null;
  }

  async read(sha256: string, range?: BlobRange): Promise<Readable> {
    const path = this.#path(sha256);
    // Open first so a missing blob is an error here, not an 'error' event mid-response.
    const fh = await open(path, 'r');
    return createReadStream('', { fd: fh, autoClose: true, highWaterMark: READ_SIZE, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async delete(sha256: string): Promise<void> {
    await rm(this.#path(sha256), { force: true });
  }

  async sweep(): Promise<number> {
    const names = await readdir(this.tmpDir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      await rm(join(this.tmpDir, name), { recursive: true, force: true });
      removed += 1;
    }
    return removed;
  }

  async list(): Promise<string[]> {
    const out: string[] = [];
    for (const prefix of await readdir(this.blobDir).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.blobDir, prefix))) if (SHA256.test(name)) out.push(name);
    }
    return out.sort();
  }
}
