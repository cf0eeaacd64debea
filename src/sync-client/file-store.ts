/**
 * SyncStore in one file, as a checksummed append-only log: each write() appends one line
 * `<crc32 hex> <json batch>\n` and fdatasyncs before it resolves, so a batch is either wholly in the
 * file or, torn by a crash mid-append, a bad last line that opening drops (and truncates). When the
 * log has grown well past its live data it is rewritten as one batch: temp file in the same
 * directory, fsync, rename, fsync the directory; a compaction that fails is tried again later and
 * never fails the write it follows. One process per file.
 */
import { closeSync, existsSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { type SyncStore, type WriteBatch, batchEntries, compareKeys } from './store.js';

const MAGIC = 'iqp-sync-store/1\n';

export interface FileStoreOptions {
  /** Compact once the file is at least this big and more than twice its live data (default 1 MiB). */
  compactAtBytes?: number;
}

export class FileStoreCorrupt extends Error {
  override readonly name = 'FileStoreCorrupt';
}

interface Record {
  s?: { [key: string]: string };
  d?: string[];
}

function line(record: Record): Buffer {
  const json = Buffer.from(JSON.stringify(record), 'utf8');
  return Buffer.concat([Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} `, 'ascii'), json, Buffer.from('\n')]);
}

/** The record on one line (without its \n), or undefined if the line is torn or damaged. */
function parseLine(bytes: Buffer): Record | undefined {
  if (bytes.length < 10 || bytes[8] !== 0x20) return undefined;
  const json = bytes.subarray(9);
  if (bytes.subarray(0, 8).toString('ascii') !== crc32(json).toString(16).padStart(8, '0')) return undefined;
  try {
    return JSON.parse(json.toString('utf8')) as Record;
  } catch {
    return undefined;
  }
}

function writeAll(fd: number, buf: Buffer, position: number): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, position + off);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

export class FileStore implements SyncStore {
  readonly #path: string;
  readonly #compactAt: number;
  readonly #data = new Map<string, string>();
  #fd: number | undefined;
  #size = 0;
  /** After a failed compaction, the size the log must reach before the next try. */
  #retryCompactAt = 0;

  private constructor(path: string, options: FileStoreOptions) {
    this.#path = path;
    this.#compactAt = options.compactAtBytes ?? 1024 * 1024;
  }

  /** Opens (or creates) the store at path, dropping a torn last batch. */
  static async open(path: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(path, options);
    store.#load();
    return store;
  }

  #tempPrefix(): string {
    return `.${basename(this.#path)}.tmp-`;
  }

  #load(): void {
    // A compaction killed before its rename leaves a temp file; the log itself is still whole, so
    // one that cannot be removed (a directory someone put there) is only left behind.
    for (const name of readdirSync(dirname(this.#path))) {
      if (!name.startsWith(this.#tempPrefix())) continue;
      try {
        rmSync(join(dirname(this.#path), name), { force: true });
      } catch {
        // compaction tries again, and fails as harmlessly, at a later write
      }
    }
    if (!existsSync(this.#path)) this.#rewrite();
    const buf = readFileSync(this.#path);
    if (buf.subarray(0, MAGIC.length).toString('utf8') !== MAGIC) throw new FileStoreCorrupt(`${this.#path} is not an iqp sync store`);
    let pos = MAGIC.length;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      const record = nl < 0 ? undefined : parseLine(buf.subarray(pos, nl));
      if (record === undefined) {
        // Only the last append can be torn (each one was synced before the next began): anything
        // readable after a bad line means the file was damaged some other way.
        if (nl >= 0 && this.#anyValidAfter(buf, nl + 1)) throw new FileStoreCorrupt(`${this.#path} is damaged at byte ${pos}`);
        break;
      }
      this.#apply(record);
      pos = nl + 1;
    }
    // A store just created has its descriptor from #rewrite already.
    this.#fd ??= openSync(this.#path, 'r+');
    if (pos < buf.length) {
      ftruncateSync(this.#fd, pos);
      fdatasyncSync(this.#fd);
    }
    this.#size = pos;
  }

  #anyValidAfter(buf: Buffer, from: number): boolean {
    let pos = from;
    while (pos < buf.length) {
      const nl = buf.indexOf(0x0a, pos);
      if (nl < 0) return false;
      if (parseLine(buf.subarray(pos, nl)) !== undefined) return true;
      pos = nl + 1;
    }
    return false;
  }

  #apply(record: Record): void {
    for (const k of record.d ?? []) this.#data.delete(k);
    for (const [k, v] of Object.entries(record.s ?? {})) this.#data.set(k, v);
  }

  #open(): number {
    if (this.#fd === undefined) throw new Error('FileStore is closed');
    return this.#fd;
  }

  async get(key: string): Promise<string | undefined> {
    this.#open();
    return this.#data.get(key);
  }

  async scan(prefix: string): Promise<Array<[string, string]>> {
    this.#open();
    const out: Array<[string, string]> = [];
    for (const [k, v] of this.#data) if (k.startsWith(prefix)) out.push([k, v]);
    return out.sort((a, b) => compareKeys(a[0], b[0]));
  }

  async write(batch: WriteBatch): Promise<void> {
    const fd = this.#open();
    const { set, del } = batchEntries(batch);
    if (set.length === 0 && del.length === 0) return;
    const record: Record = {};
    if (del.length > 0) record.d = del;
    if (set.length > 0) record.s = Object.fromEntries(set);
    const bytes = line(record);
    try {
      writeAll(fd, bytes, this.#size);
      fdatasyncSync(fd);
    } catch (err) {
      // Leave no partial line behind for the next append to follow (ENOSPC, say).
      try {
        ftruncateSync(fd, this.#size);
      } catch {
        // the next open drops it as a torn tail
      }
      throw err;
    }
    this.#size += bytes.length;
    this.#apply(record);
    // The batch is saved: from here on nothing may fail this write, or the caller would redo
    // (and the client queue twice) what is already in the log.
    if (this.#size >= Math.max(this.#compactAt, this.#retryCompactAt) && this.#size > 2 * this.#liveBytes()) {
      try {
        this.#rewrite();
      } catch {
        // ENOSPC, EMFILE, ...: the log stays as it is, whole, and a write after it has grown by
        // another compactAtBytes tries again (not every write: each try copies all the live data).
        this.#retryCompactAt = this.#size + this.#compactAt;
      }
    }
  }

  #liveBytes(): number {
    let n = MAGIC.length + 32;
    for (const [k, v] of this.#data) n += k.length + v.length + 8;
    return n;
  }

  /**
   * Writes the live data as a fresh log and swaps it in atomically. It throws only before the
   * rename, with the old log untouched and still the one appended to; the temp file's descriptor
   * becomes the log's, so nothing after the rename can fail (no open that EMFILE could refuse).
   */
  #rewrite(): void {
    const temp = join(dirname(this.#path), `${this.#tempPrefix()}${process.pid}`);
    const body = Buffer.concat([Buffer.from(MAGIC), this.#data.size > 0 ? line({ s: Object.fromEntries(this.#data) }) : Buffer.alloc(0)]);
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeAll(fd, body, 0);
      fsyncSync(fd);
      renameSync(temp, this.#path);
    } catch (err) {
      closeSync(fd);
      rmSync(temp, { force: true });
      throw err;
    }
    fsyncDir(dirname(this.#path));
    const old = this.#fd;
    this.#fd = fd;
    this.#size = body.length;
    this.#retryCompactAt = 0;
    if (old !== undefined) {
      try {
        closeSync(old);
      } catch {
        // the old log is gone from the directory already; its descriptor is no use to anyone
      }
    }
  }

  async close(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
