/**
 * WAL checkpoints off the event loop, for the server's plugin connection.
 *
 * SQLite copies the -wal file back into the database (a checkpoint) inside the COMMIT that takes
 * the WAL past 1000 pages, on the connection that committed: with synchronous = NORMAL that is two
 * fsyncs and the copy, on the event loop, every few dozen sync pushes (measured: a third of a
 * push's COMMIT time on average, and the slowest pushes). Here the plugin connection's automatic
 * checkpoints are off, and a worker thread with its own connection runs a PASSIVE checkpoint after
 * every `every` commits. PASSIVE never blocks a writer or a reader; whatever it cannot copy yet
 * it copies next time.
 *
 * PASSIVE alone never lets the WAL start over under steady writes: SQLite rewinds the -wal file
 * only when a writer begins after every frame was copied back, and with commits landing while the
 * thread copies, one always has not been (measured: 65 MB of WAL after 400 sync pushes, every
 * frame a fresh page of the file). So once the WAL holds `restartFrames` frames, the thread follows
 * its PASSIVE with a RESTART: it takes the write lock, copies the few frames committed meanwhile,
 * and waits for readers to leave the WAL, so the next commit writes from the start of the file
 * again. Writers wait for it (on the event loop: sqlite-busy.ts) for the length of a short copy
 * and two syncs; a reader that stays longer than RESTART_WAIT_MS makes it give up until next time.
  *
 * If the thread cannot start or fails, the connection's automatic checkpoints come back
 * (`fallBack`), so the WAL never grows without bound.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The thread: its own connection, a PASSIVE checkpoint each time it is asked, SQLite's counts (or
 * the error) back. Source text rather than a file beside this one, so it runs the same from the
 * build and from the TypeScript sources under test; better-sqlite3 comes by absolute path.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.path, { timeout: 5000, fileMustExist: true });
db.pragma('synchronous = NORMAL');
parentPort.on('message', () => {
  try {
    let [r] = db.pragma('wal_checkpoint(PASSIVE)');
    let restarted = false;
    if (r.log >= workerData.restartFrames) {
      db.pragma('busy_timeout = ' + workerData.waitMs);
      try {
        [r] = db.pragma('wal_checkpoint(RESTART)');
      } finally {
        db.pragma('busy_timeout = 5000');
      }
      restarted = r.busy === 0;
    }
    parentPort.postMessage({ ok: true, log: r.log, checkpointed: r.checkpointed, restarted });
  } catch (err) {
    parentPort.postMessage({ ok: false, message: String((err && err.message) || err) });
  }
});
`;

export interface CheckpointResult {
  readonly ok: boolean;
  /** Frames in the WAL, and how many of them are now in the database. */
  readonly log?: number;
  readonly checkpointed?: number;
  /** The WAL was long enough to rewind, and the next commit writes from its start. */
  readonly restarted?: boolean;
  readonly message?: string;
}

/** WAL frames (pages) past which a checkpoint also rewinds the WAL: SQLite's own automatic checkpoint size. */
export const RESTART_FRAMES = 1000;

/** How long a rewinding checkpoint waits for the write lock, and then for readers still in the WAL. */
export const RESTART_WAIT_MS = 200;

export class Checkpointer {
  /** Started at the first checkpoint asked for: a server whose plugins never write has no thread. */
  #worker: Worker | null = null;
  #failed = false;
  #since = 0;
  #running = false;
  #closed = false;
  /** Called with each checkpoint's outcome (tests, and the next step of a caller that waits). */
  onCheckpoint: ((r: CheckpointResult) => void) | undefined;

  constructor(
    private readonly path: string,
    private readonly fallBack: (why: string) => void,
    private readonly every = 16,
    private readonly restartFrames = RESTART_FRAMES,
  ) {}

  #start(): Worker {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const w = new Worker(THREAD, { eval: true, workerData: { path: this.path, sqlite, restartFrames: this.restartFrames, waitMs: RESTART_WAIT_MS } });
    // A server that is done exits without waiting for this thread.
    w.unref();
    w.on('message', (r: CheckpointResult) => {
      this.#running = false;
      if (!r.ok) this.#fail(`a checkpoint failed: ${r.message}`);
      this.onCheckpoint?.(r);
    });
    w.on('error', (err) => this.#fail(`the checkpoint thread failed: ${err.message}`));
    w.on('exit', (code) => this.#fail(`the checkpoint thread exited (${code})`));
    return w;
  }

  /** Call after each commit on the connection. */
  committed(): void {
    if (this.#failed || this.#closed || ++this.#since < this.every || this.#running) return;
    this.#since = 0;
    this.#running = true;
    this.#worker ??= this.#start();
    this.#worker.postMessage('checkpoint');
  }

  /** Asks for a checkpoint now (whatever the count), unless one is running. */
  request(): void {
    this.#since = this.every - 1;
    this.committed();
  }

  /** False once the thread failed (the connection checkpoints by itself again) or was closed. */
  get active(): boolean {
    return !this.#failed && !this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = null;
    await w?.terminate();
  }

  #fail(why: string): void {
    if (this.#closed || this.#failed) return;
    this.#failed = true;
    const w = this.#worker;
    this.#worker = null;
    void w?.terminate();
    this.fallBack(why);
  }
}
