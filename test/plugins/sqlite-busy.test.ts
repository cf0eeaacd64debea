/**
 * whileBusy waits out another connection's lock on the event loop. SQLite says "busy" with extended
 * codes too: SQLITE_BUSY_RECOVERY while another connection rebuilds a WAL file's index, as the
 * first of several workers to open a new file does on a data directory's first start. Here a
 * helper process (python3, POSIX record locks as SQLite's own) holds the -shm file's write and
 * recovery locks over an index that needs rebuilding, exactly as a connection running that
 * recovery does, and lets go once the statement has been turned away.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { whileBusy } from '../../server/plugins/sqlite-busy.js';
import { tempDir } from '../e2e/helpers.js';

/** Unix VFS lock bytes of a -shm file: the WAL write lock (120), the recovery lock (122), and the "in use" byte (128). */
const HOLD_RECOVERY = `
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 32768)  # a zeroed index: a reader must rebuild it, under the locks held below
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 128)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 122)
print('held', flush=True)
sys.stdin.readline()
`;

const holders: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const h of holders.splice(0)) h.kill('SIGKILL');
});

/** A WAL database with one row, no connection open, and another process in the middle of "recovering" its index. */
async function fileUnderRecovery(): Promise<{ path: string; release(): Promise<void> }> {
  const path = join(tempDir('iqp-busy-'), 'registry-rate-limits.sqlite');
  const setup = new Database(path);
  setup.pragma('journal_mode = WAL');
  setup.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')");
  setup.close();
  const holder = spawn('python3', ['-c', HOLD_RECOVERY, `${path}-shm`]);
  holders.push(holder);
  let err = '';
  holder.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const [line] = (await Promise.race([once(holder.stdout, 'data'), once(holder, 'exit').then(() => [`exited: ${err}`])])) as [Buffer | string];
  expect(String(line).trim(), 'the lock holder started').toBe('held');
  return {
    path,
    release: async () => {
      const gone = once(holder, 'exit');
      holder.stdin.end('\n');
      await gone;
    },
  };
}

describe('whileBusy', () => {
  it('waits out SQLITE_BUSY_RECOVERY, and the statement then runs', async () => {
    const { path, release } = await fileUnderRecovery();
    const db = new Database(path, { timeout: 0 });
    try {
      const turnedAway: string[] = [];
      let released: Promise<void> | null = null;
      const row = await whileBusy(() => {
        try {
          return db.prepare('SELECT v FROM t').pluck().get();
        } catch (err) {
          turnedAway.push(String((err as { code?: string }).code));
          released ??= release();
          throw err;
        }
      });
      await released;
      expect(turnedAway[0]).toBe('SQLITE_BUSY_RECOVERY');
      expect(row).toBe('kept');
    } finally {
      db.close();
    }
  });

  it('throws any other error at once, without trying again', async () => {
    const db = new Database(join(tempDir('iqp-busy-'), 'x.sqlite'), { timeout: 0 });
    try {
      let attempts = 0;
      await expect(
        whileBusy(() => {
          attempts++;
          return db.prepare('SELECT v FROM missing').get();
        }),
      ).rejects.toMatchObject({ code: 'SQLITE_ERROR' });
      expect(attempts).toBe(1);
    } finally {
      db.close();
    }
  });
});
