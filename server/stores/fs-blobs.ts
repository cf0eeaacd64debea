/**
 * Content-addressed blobs on a local disk: blobs/sha256/<2 hex>/<sha256>. Uploads are staged in
 * tmp/ on the same filesystem, so committing is an fsync and a rename; a crash leaves at most a
 * staged file, which sweep() removes at the next start.
 */
import { closeSync, createReadStream, fstatSync, openSync, read as fsRead } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { assertSha256, createStagedFile, probeWritable, removeStaged, SHA256 } from './staging.js';
import type { BlobInfo, BlobRange, BlobStore, StagedBlob } from './types.js';

/** How long a blob's descriptor stays open unused (see FsBlobStore.openFile). */
const IDLE_MS = 1000;

interface OpenBlob {
  readonly fd: number;
  /** The link count when opened: a change means the blob's path no longer names this file. */
  readonly nlink: number;
  users: number;
  idleSince: number;
  /** No longer shared; closed once unused. */
  forgotten: boolean;
}

/** A blob opened for positional reads (see FsBlobStore.openFile). */
export interface BlobFile {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; resolves with the count read. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Closes the file; call it once no read is pending. */
  close(): void;
}
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
    assertSha256(sha256);
    return join(this.blobDir, sha256.slice(0, 2), sha256);
  }

  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  async health(): Promise<void> {
    await probeWritable(this.tmpDir);
    await access(this.blobDir);
  }

  async stage(): Promise<StagedBlob> {
    const path = await createStagedFile(this.tmpDir);
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

  /**
   * The blob's file, opened for positional reads, for senders that manage their own buffers
   * (http/send-file.ts); the caller closes it once no read is pending. Rejects when the blob is
   * missing.
   *
   * Descriptors are shared and kept open between requests (closed after IDLE_MS unused): a 64 KiB
   * range request would otherwise pay an open and a close, about a fifth of its CPU time. So that a
   * blob removed or replaced behind the server's back is never served from a stale descriptor, each
   * use first checks the file's link count (fstat, no path lookup): any change means the path no
   * longer names that file, and the path is opened again (failing as before if the blob is gone).
   * Opening, checking and closing are synchronous, as nginx does them (they touch only cached
   * metadata); the reads are asynchronous, being what can wait for a disk.
   */
  async openFile(sha256: string): Promise<BlobFile> {
    let entry = this.#open.get(sha256);
    if (entry && fstatSync(entry.fd).nlink !== entry.nlink) {
      this.#forget(sha256, entry);
      entry = undefined;
    }
    if (!entry) {
      const fd = openSync(this.#path(sha256), 'r');
      entry = { fd, nlink: fstatSync(fd).nlink, users: 0, idleSince: 0, forgotten: false };
      this.#open.set(sha256, entry);
      this.#sweepLater();
    }
    const e = entry;
    e.users += 1;
    let open = true;
    return {
      read: (buffer, offset, length, position) =>
        new Promise((resolve, reject) => {
          if (!open) return reject(new Error('read after close'));
          fsRead(e.fd, buffer, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
        }),
      close: () => {
        if (!open) return;
        open = false;
        e.users -= 1;
        if (e.users > 0) return;
        e.idleSince = Date.now();
        if (e.forgotten) closeSync(e.fd);
      },
    };
  }

  readonly #open = new Map<string, OpenBlob>();
  #sweeper: NodeJS.Timeout | null = null;

  /** Stops sharing a descriptor; it is closed now, or when its last user closes it. */
  #forget(sha256: string, entry: OpenBlob): void {
    if (this.#open.get(sha256) === entry) this.#open.delete(sha256);
    if (entry.forgotten) return;
    entry.forgotten = true;
    if (entry.users === 0) closeSync(entry.fd);
  }

  #sweepLater(): void {
    if (this.#sweeper) return;
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const [sha256, e] of this.#open) if (e.users === 0 && now - e.idleSince >= IDLE_MS) this.#forget(sha256, e);
      if (this.#open.size === 0 && this.#sweeper) {
        clearInterval(this.#sweeper);
        this.#sweeper = null;
      }
    }, IDLE_MS);
    this.#sweeper.unref();
  }

  async read(sha256: string, range?: BlobRange): Promise<Readable> {
    const path = this.#path(sha256);
    // Open first so a missing blob is an error here, not an 'error' event mid-response.
    const fh = await open(path, 'r');
    return createReadStream('', { fd: fh, autoClose: true, highWaterMark: READ_SIZE, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async delete(sha256: string): Promise<void> {
    const entry = this.#open.get(sha256);
    if (entry) this.#forget(sha256, entry);
    await rm(this.#path(sha256), { force: true });
  }

  /**
   * Removes everything staged in tmp/, uploads in flight included: only for the holder of the data
   * directory's lock, before it serves (server/datadir.ts recoverDataDir).
   */
  sweep(): Promise<number> {
    return removeStaged(this.tmpDir);
  }

  async list(): Promise<BlobInfo[]> {
    const out: BlobInfo[] = [];
    for (const prefix of await readdir(this.blobDir).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.blobDir, prefix))) {
        if (!SHA256.test(name)) continue;
        // Deleted since the readdir: no longer a blob to report.
        const info = await stat(join(this.blobDir, prefix, name)).catch(() => null);
        if (info) out.push({ sha256: name, modifiedAt: info.mtime });
      }
    }
    return out.sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
  }
}
