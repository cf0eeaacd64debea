/** The auth plugin's stores on a real SQLite file: ownership of devices and single-winner rotation. */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceStore } from '../../plugins/auth/store/devices.js';
import { SessionStore } from '../../plugins/auth/store/sessions.js';
import { UserStore } from '../../plugins/auth/store/users.js';
import type { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';
import { openDatabase } from './db.js';

let db: SqlitePluginDatabase | null = null;
afterEach(() => db?.close());

async function twoUsers() {
  db = openDatabase(tempDir('iqp-auth-store-'));
  const users = new UserStore(db);
  for (const id of ['u1', 'u2']) {
    expect(await users.insert({ id, email: `${id}@Example.org`, password_hash: null, email_verified: 0, role: 'user', disabled: 0, created_at: 't' })).toBe(true);
  }
  return { db, users };
}

describe('auth stores', () => {
  it('keeps emails unique whatever their case', async () => {
    const { users } = await twoUsers();
    expect(await users.insert({ id: 'u3', email: 'U1@example.ORG', password_hash: null, email_verified: 0, role: 'user', disabled: 0, created_at: 't' })).toBe(false);
    expect((await users.byEmail(' u1@EXAMPLE.org '))?.id).toBe('u1');
    expect(await users.list()).toHaveLength(2);
  });

  it('never hands a device to a second user', async () => {
    const { db } = await twoUsers();
    const devices = new DeviceStore(db);
    expect(await devices.claim({ id: 'd1', userId: 'u1', name: 'phone' }, 't1')).toBe(true);
    expect(await devices.claim({ id: 'd1', userId: 'u1' }, 't2')).toBe(true);
    expect(await devices.claim({ id: 'd1', userId: 'u2', name: 'stolen' }, 't3')).toBe(false);
    const [d] = await devices.forUser('u1');
    expect(d).toMatchObject({ id: 'd1', user_id: 'u1', name: 'phone', last_seen_at: 't2' });
    expect(await devices.forUser('u2')).toEqual([]);
  });

  it('lets exactly one of many concurrent rotations win', async () => {
    const { db } = await twoUsers();
    const sessions = new SessionStore(db);
    await sessions.createSession({ id: 's1', user_id: 'u1', device_id: null, created_at_ms: 0, absolute_expires_at_ms: 10 });
    await sessions.insertToken({ id: 't1', session_id: 's1', parent_id: null, secret_hash: 'h', created_at_ms: 0, idle_expires_at_ms: 10 });
    const wins = await Promise.all([1, 2, 3, 4, 5].map((n) => sessions.markUsed('t1', `succ${n}`, n)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    const row = await sessions.token('t1');
    expect(row?.successor_id).toBe(`succ${wins.indexOf(true) + 1}`);
  });

  it('never rotates a token of a session ended after the token was read (a logout racing a refresh)', async () => {
    const { db } = await twoUsers();
    const sessions = new SessionStore(db);
    await sessions.createSession({ id: 's1', user_id: 'u1', device_id: null, created_at_ms: 0, absolute_expires_at_ms: 10 });
    await sessions.insertToken({ id: 't1', session_id: 's1', parent_id: null, secret_hash: 'h', created_at_ms: 0, idle_expires_at_ms: 10 });
    await sessions.revoke('s1', 'logout', 1);
    expect(await sessions.markUsed('t1', 'succ', 2)).toBe(false);
    expect(await sessions.token('t1')).toMatchObject({ used_at_ms: null, successor_id: null });
  });

  it('prunes sessions past their absolute lifetime or revoked long ago, with their tokens', async () => {
    const { db } = await twoUsers();
    const sessions = new SessionStore(db);
    for (const [id, expires] of [['old', 100], ['live', 10_000], ['revoked', 10_000], ['just-revoked', 10_000]] as const) {
      await sessions.createSession({ id, user_id: 'u1', device_id: null, created_at_ms: 0, absolute_expires_at_ms: expires });
      await sessions.insertToken({ id: `t-${id}`, session_id: id, parent_id: null, secret_hash: 'h', created_at_ms: 0, idle_expires_at_ms: expires });
    }
    await sessions.revoke('revoked', 'logout', 200);
    await sessions.revoke('just-revoked', 'logout', 900);
    expect(await sessions.prune(1000, 500)).toBe(2);
    expect((await db.all<{ id: string }>('SELECT id FROM auth_sessions ORDER BY id')).map((r) => r.id)).toEqual(['just-revoked', 'live']);
    expect((await db.all<{ id: string }>('SELECT id FROM auth_refresh_tokens ORDER BY id')).map((r) => r.id)).toEqual(['t-just-revoked', 't-live']);
  });
});
