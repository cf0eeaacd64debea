/**
 * One owner at a time for a registry data directory: `iqp server start` holds its lock for its
 * lifetime, and a second start, `server migrate` and `server restore --force` on it are refused
 * (IQP_E_DATA_DIR_LOCKED, exit 4, the holder's PID in the message) and change nothing. The lock
 * dies with its process: after a SIGKILL the next start works, and that start (only that one)
 * sweeps what the crash left. The real bin/iqp.js and real data directories throughout.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CATALOG } from '../../src/errors.js';
import { call, type ChildServer, newKey, registerKey, spawnServer, tempDir, withDatabase } from '../server/helpers.js';
import { iqpIn, leftoversPresent, plantLeftovers, snapshot } from './datadir-helpers.js';

const LOCKED = CATALOG.IQP_E_DATA_DIR_LOCKED.exit;
const started: ChildServer[] = [];

async function serve(dataDir: string): Promise<ChildServer> {
  const s = await spawnServer(dataDir);
  started.push(s);
  return s;
}

afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      expect((await s.exited).code, 'a server stops cleanly on SIGTERM').toBe(0);
    }
  }
});

function expectLocked(r: { code: number | null; stdout: string; stderr: string; json(): any }, holder: number): void {
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(LOCKED);
  const { error } = r.json();
  expect(error.code).toBe('IQP_E_DATA_DIR_LOCKED');
  expect(error.message).toContain(`PID ${holder}`);
  expect(r.stderr, '--json prints nothing on stderr').toBe('');
}

describe('a running server owns its data directory', () => {
  it('refuses a second `server start` on it, naming the first one’s PID, and the first keeps serving', async () => {
    const data = tempDir('iqp-datadir-');
    const first = await serve(data);
    const before = snapshot(data);
    const second = await iqpIn(data, ['server', 'start', '--data', data, '--port', '0']);
    expectLocked(second, first.pid);
    expect(snapshot(data)).toEqual(before);
    expect((await call(first.url, '/v1/health')).status).toBe(200);
  });

  it('refuses `server migrate` on it likewise', async () => {
    const data = tempDir('iqp-datadir-');
    const first = await serve(data);
    const before = snapshot(data);
    expectLocked(await iqpIn(data, ['server', 'migrate', '--data', data]), first.pid);
    expect(snapshot(data)).toEqual(before);
  });

  it('refuses `server restore --force` into it: nothing in the directory changes and what the server writes afterwards is on disk', async () => {
    const data = tempDir('iqp-datadir-');
    const work = tempDir('iqp-datadir-work-');
    const first = await serve(data);
    const admin = (await iqpIn(data, ['token', 'create', '--role', 'admin', '--data', data])).json().token as string;
    const backup = await iqpIn(data, ['server', 'backup', '--data', data, '--out', join(work, 'live.backup')]);
    expect(backup.code, backup.stderr).toBe(0);

    const before = snapshot(data);
    const inode = statSync(data).ino;
    expectLocked(await iqpIn(data, ['server', 'restore', join(work, 'live.backup'), '--data', data, '--force']), first.pid);
    expect(snapshot(data)).toEqual(before);
    expect(statSync(data).ino, 'the directory was not replaced').toBe(inode);

    // The server still writes to the registry.sqlite that is in the directory.
    const key = newKey();
    await registerKey(first.url, admin, key);
    expect(withDatabase(data, (db) => db.prepare('SELECT key_id FROM publisher_keys').pluck().all())).toEqual([key.keyId]);
  });
});

describe('the lock dies with its holder', () => {
  it('after a SIGKILL the next start works, and only that start sweeps what the crash left', async () => {
    const data = tempDir('iqp-datadir-');
    const killed = await serve(data);
    killed.child.kill('SIGKILL');
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const left = plantLeftovers(data);
    const all = leftoversPresent(data, left);
    expect(all).toHaveLength(2);
    const list = await iqpIn(data, ['token', 'list', '--data', data]);
    expect(list.code, list.stderr).toBe(0);
    expect(leftoversPresent(data, left), 'token list sweeps nothing').toEqual(all);
    const migrate = await iqpIn(data, ['server', 'migrate', '--data', data]);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(leftoversPresent(data, left), 'server migrate sweeps nothing').toEqual(all);

    const next = await serve(data);
    expect(next.info).toMatchObject({ swept_temp_files: 1, swept_orphan_blobs: 1 });
    expect(leftoversPresent(data, left)).toEqual([]);
    expect((await call(next.url, '/v1/health')).status).toBe(200);
    // And it holds the lock in turn.
    expectLocked(await iqpIn(data, ['server', 'migrate', '--data', data]), next.pid);
  });

  it('a graceful stop releases it: migrate works after SIGTERM', async () => {
    const data = tempDir('iqp-datadir-');
    const s = await serve(data);
    s.child.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
    const migrate = await iqpIn(data, ['server', 'migrate', '--data', data]);
    expect([migrate.code, migrate.json().migrated], migrate.stderr).toEqual([0, []]);
    expect(existsSync(join(data, 'registry.sqlite'))).toBe(true);
  });
});
