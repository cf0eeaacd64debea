/**
 * SyncStore in one file, as a checksummed append-only log: each write() appends one line
 * `<crc32 hex> <json batch>\n` and fdatasyncs before it resolves, so a batch is either wholly in the
 * file or, torn by a crash mid-append, a bad last line that opening drops (and truncates). When the
 * log has grown well past its live data it is rewritten as one batch: temp file in the same
 * directory, fsync, rename, fsync the directory; a compaction that fails is tried again later and
 * never fails the write it follows. One opener per file: `<path>.lock` names the process that has
 * it open, and another open is refused (FileStoreLocked) until that one closes it or dies.
 */
import { closeSync, existsSync, fdatasyncSync, fsyncSync, ftruncateSync, linkSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { type SyncStore, type WriteBatch, batchEntries, compareKeys } from './store.js';
import { randomHex } from './timing.js';

const MAGIC = 'iqp-sync-store/1\n';

export interface FileStoreOptions {
  /** Compact once the file is at least this big and more than twice its live data (default 1 MiB). */
  compactAtBytes?: number;
}

export class FileStoreCorrupt extends Error {
  override readonly name = 'FileStoreCorrupt';
}

/** The file is another opener's: a FileStore of this process, or another process that has it open. */
export class FileStoreLocked extends Error {
  override readonly name = 'FileStoreLocked';
}

/** The lock files this process holds: a second open here is refused without looking at the file. */
const held = new Set<string>();

/** Who wrote a lock file. */
interface Holder {
  pid: number;
  host: string;
  nonce?: string;
}

function readHolder(text: string): Holder | undefined {
  try {
    const h = JSON.parse(text) as Partial<Holder>;
    return Number.isInteger(h.pid) && typeof h.host === 'string' ? (h as Holder) : undefined;
  } catch {
    return undefined;
  }
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Whether the process that wrote the lock may still have the file open. */
function alive(h: Holder): boolean {
  // Another machine's process (a shared filesystem): nothing here can tell, so it counts as alive.
  if (h.host !== hostname()) return true;
  // Not in `held` (checked first): a process before this one that had the same pid (a container restarted).
  if (h.pid === process.pid) return false;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<path>.lock` for this process: created exclusively, holding the pid and host. A lock whose
 * process has died (killed before close()) is taken over; a live one refuses the open. Two
 * processes appending to one log would each write at their own idea of its end, over each other.
 */
function takeLock(path: string): { lock: string; nonce: string } {
  const lock = `${resolve(path)}.lock`;
  if (held.has(lock)) throw new FileStoreLocked(`${path} is open already in this process: use that FileStore, or close() it before opening the file again`);
  const nonce = randomHex(8);
  const mine = Buffer.from(`${JSON.stringify({ pid: process.pid, host: hostname(), nonce })}\n`);
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number | undefined;
    try {
      fd = openSync(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (fd !== undefined) {
      try {
        writeAll(fd, mine, 0);
      } finally {
        closeSync(fd);
      }
      held.add(lock);
      return { lock, nonce };
    }
    const text = readIfThere(lock);
    if (text === undefined) continue;
    const holder = readHolder(text);
    const refuse = (who: string) =>
      new FileStoreLocked(`${path} is open in ${who} (lock file ${lock}): one process at a time may use a FileStore. Close it there; if no such process runs any more, delete the lock file.`);
    if (holder === undefined) {
      // Being written by an opener this very moment, or left empty by a machine that lost power.
      if (Date.now() - statSync(lock).mtimeMs < 10_000) throw refuse('another process');
    } else if (alive(holder)) {
      throw refuse(holder.host === hostname() ? `process ${holder.pid}` : `process ${holder.pid} on ${holder.host}`);
    }
    // A dead process's lock: moved aside, atomically, so of several openers one takes it over.
    const aside = `${lock}.stale-${nonce}`;
    try {
      renameSync(lock, aside);
    } catch {
      continue;
    }
    const moved = readIfThere(aside);
    if (moved !== text) {
      // Another opener took the lock over between the read and the rename: it is theirs.
      try {
        linkSync(aside, lock);
      } finally {
        rmSync(aside, { force: true });
      }
      throw refuse('another process');
    }
    rmSync(aside, { force: true });
  }
  throw new FileStoreLocked(`${path}: could not take ${lock}; other processes keep opening the file`);
}

function dropLock(lock: string, nonce: string): void {
  held.delete(lock);
  try {
    if (readHolder(readIfThere(lock) ?? '')?.nonce === nonce) rmSync(lock, { force: true });
  } catch {
    // left behind: the next opener finds this process gone and takes it over
  }
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
  /** Gives the lock file up (close()). */
  #unlock: (() => void) | undefined;
  /** After a failed compaction, the size the log must reach before the next try. */
  #retryCompactAt = 0;

  private constructor(path: string, options: FileStoreOptions) {
    this.#path = path;
    this.#compactAt = options.compactAtBytes ?? 1024 * 1024;
  }

  /**
   * Opens (or creates) the store at path, dropping a torn last batch. Throws FileStoreLocked while
   * another FileStore (of this process or another) has the file open.
   */
  static async open(path: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const store = new FileStore(path, options);
    const { lock, nonce } = takeLock(path);
    store.#unlock = () => dropLock(lock, nonce);
    try {
      store.#load();
    } catch (err) {
      await store.close();
      throw err;
    }
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
    this.#unlock?.();
    this.#unlock = undefined;
  }
}
