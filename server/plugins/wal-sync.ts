/**
 * Durable commits without an fsync on the event loop.
 *
 * The plugins' connection runs WAL with `synchronous = NORMAL`: COMMIT writes the transaction's
 * frames to the -wal file but does not wait for the disk, so it costs the event loop a write, not
 * an fsync. Durability comes back here: nothing read or written on the connection is handed to
 * its caller (and so to a client) before an fdatasync of the -wal file that started after it, run
 * on libuv's threadpool. Commits that land while one fdatasync runs share the next one: group
 * commit, without holding the connection while the disk works.
 *
 * SQLite keeps the database consistent across a power loss in this mode on its own (checkpoints
 * sync the WAL before copying it); what NORMAL alone gives up is the last commits before the
 * power failed. Those are exactly the ones nobody has been answered about yet, since every answer
 * waits for durable().
 */
import { closeSync, fdatasync, fstatSync, openSync, statSync } from 'node:fs';

export class WalSync {
  /** Commits made on the connection so far. */
  private commits = 0;
  /** Commits known to be on disk. */
  private synced = 0;
  private flushing: Promise<void> | undefined;
  /** The -wal file, kept open between syncs, and which file it is (device and inode). */
  private fd: number | null = null;
  private identity = '';
  private closed = false;

  constructor(private readonly walPath: string) {}

  /** Call after every statement or transaction that may have committed. */
  committed(): void {
    this.commits++;
  }

  /** Resolves once every commit made before this call is on disk; rejects if the disk refused. */
  durable(): Promise<void> {
    const upTo = this.commits;
    return this.synced >= upTo ? Promise.resolve() : this.flushTo(upTo);
  }

  private async flushTo(upTo: number): Promise<void> {
    // A flush already under way may have started before our commit: then wait for the next.
    while (this.synced < upTo) {
      this.flushing ??= this.flush().finally(() => {
        this.flushing = undefined;
      });
      await this.flushing;
    }
  }

  private async flush(): Promise<void> {
    const target = this.commits;
    const fd = this.file();
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    if (this.closed) this.release();
    if (target > this.synced) this.synced = target;
  }

  /**
   * The descriptor of the file that has the -wal name now: the one kept open when it is still that
   * file, else that file, opened. While this connection is open SQLite keeps its -wal file (only the
   * last connection to close removes it), so the name is looked up (a stat, on the event loop)
   * rather than the file opened and closed for every sync; a name that is gone fails the sync.
   */
  private file(): number {
    const { dev, ino } = statSync(this.walPath);
    if (this.fd !== null && this.identity === `${dev}:${ino}`) return this.fd;
    this.release();
    const fd = openSync(this.walPath, 'r+');
    const opened = fstatSync(fd);
    this.fd = fd;
    this.identity = `${opened.dev}:${opened.ino}`;
    return fd;
  }

  private release(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
  }

  /** With the connection: the kept descriptor is closed (after the sync under way, if any). */
  close(): void {
    this.closed = true;
    if (!this.flushing) this.release();
  }
}
