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
import { open } from 'node:fs/promises';

export class WalSync {
  /** Commits made on the connection so far. */
  private commits = 0;
  /** Commits known to be on disk. */
  private synced = 0;
  private flushing: Promise<void> | undefined;

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
    // Opened each time: the file SQLite writes is whatever has that name now.
    const file = await open(this.walPath, 'r+');
    try {
      await file.datasync();
    } finally {
      await file.close();
    }
    if (target > this.synced) this.synced = target;
  }
}
