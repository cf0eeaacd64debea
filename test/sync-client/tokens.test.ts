/** authTokens: sign-in, rotation stored before use, one refresh for many callers, signed out on 401. */
import { describe, expect, it, vi } from 'vitest';
import type { WriteBatch } from '../../src/sync-client/store.js';
import { type AuthTokensOptions, authTokens } from '../../src/sync-client/tokens.js';
import { error, hang, json, offline, RecordingStore, ScriptedFetch, VirtualClock } from './fakes.js';

function setup(over: Partial<AuthTokensOptions> = {}) {
  const net = new ScriptedFetch();
  const store = new RecordingStore();
  const clock = new VirtualClock();
  const tokens = authTokens({ baseUrl: 'http://auth.test', store, deviceId: 'dev-test-0001', deviceName: 'Ann’s phone', now: clock.now, fetch: (url, init) => net.fetch(url, { ...init, signal: init.signal ?? new AbortController().signal }), ...over });
  return { net, store, clock, tokens };
}

const pair = (n: number) => ({ access_token: `at-${n}`, token_type: 'Bearer', expires_in: 900, refresh_token: `rt-${n}` });
const user = { id: 'u1', email: 'ann@example.org', email_verified: true, role: 'user', created_at: 't' };

describe('authTokens', () => {
  it('signs in with the device, keeps the refresh token in the store, and serves the access token', async () => {
    const s = setup();
    s.net.on('/v1/auth/login', () => json(200, { ...pair(1), user }));
    expect(await s.tokens.signedIn()).toBe(false);
    expect(await s.tokens.signIn('ann@example.org', 'pw')).toEqual(user);
    expect(s.net.sent[0]!.body).toEqual({ email: 'ann@example.org', password: 'pw', device_id: 'dev-test-0001', device_name: 'Ann’s phone' });
    expect(await s.store.get('auth/refresh_token')).toBe('rt-1');
    expect(await s.tokens.accessToken()).toBe('at-1');
    expect(s.net.sent).toHaveLength(1);
  });

  it('refuses another account into a store that holds one account’s sync state, ending the session it was given', async () => {
    const s = setup();
    const bob = { ...user, id: 'u2', email: 'bob@example.org' };
    s.net.on('/v1/auth/login', () => json(200, { ...pair(1), user }), () => json(200, { ...pair(2), user: bob }), () => json(200, { ...pair(3), user }));
    s.net.on('/v1/auth/logout', () => json(204, undefined), () => json(204, undefined));
    await s.tokens.signIn('ann@example.org', 'pw');
    expect(await s.store.get('auth/account')).toBe('u1');
    await s.tokens.signOut();
    await expect(s.tokens.signIn('bob@example.org', 'pw')).rejects.toMatchObject({ code: 'IQP_CLIENT_OTHER_ACCOUNT', kind: 'blocked' });
    // Bob's new session is ended, and nothing of it is kept.
    expect(s.net.requests('/v1/auth/logout').map((r) => r.body)).toEqual([{ refresh_token: 'rt-1' }, { refresh_token: 'rt-2' }]);
    expect(await s.tokens.signedIn()).toBe(false);
    expect(await s.store.get('auth/account')).toBe('u1');
    // The account the store belongs to signs in again as usual.
    expect(await s.tokens.signIn('ann@example.org', 'pw')).toEqual(user);
    expect(await s.tokens.accessToken()).toBe('at-3');
  });

  it('a failed sign-in throws the server’s code and stores nothing', async () => {
    const s = setup();
    s.net.on('/v1/auth/login', () => error(401, 'IQP_E_INVALID_CREDENTIALS'), () => error(403, 'IQP_E_EMAIL_UNVERIFIED'));
    await expect(s.tokens.signIn('ann@example.org', 'bad')).rejects.toMatchObject({ code: 'IQP_E_INVALID_CREDENTIALS' });
    await expect(s.tokens.signIn('ann@example.org', 'pw')).rejects.toMatchObject({ code: 'IQP_E_EMAIL_UNVERIFIED', kind: 'blocked' });
    expect(s.store.writes).toEqual([]);
  });

  it('refresh rotates: the new refresh token is stored before the new access token is handed out', async () => {
    const s = setup();
    await s.store.write({ set: { 'auth/refresh_token': 'rt-1' } });
    s.net.on('/v1/auth/refresh', (req) => {
      expect(req.body).toEqual({ refresh_token: 'rt-1' });
      return json(200, pair(2));
    });
    const token = await s.tokens.refresh();
    expect(token).toBe('at-2');
    expect(s.store.writes.at(-1)).toEqual({ set: { 'auth/refresh_token': 'rt-2' } });
  });

  it('concurrent refreshes share one request', async () => {
    const s = setup();
    await s.store.write({ set: { 'auth/refresh_token': 'rt-1' } });
    s.net.on('/v1/auth/refresh', async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return json(200, pair(2));
    });
    const got = await Promise.all([s.tokens.refresh(), s.tokens.refresh(), s.tokens.accessToken(), s.tokens.refresh()]);
    expect(got).toEqual(['at-2', 'at-2', 'at-2', 'at-2']);
    expect(s.net.requests('/v1/auth/refresh')).toHaveLength(1);
  });

  it('401 from /refresh signs out: null, the token forgotten, the sync queue kept', async () => {
    const s = setup();
    await s.store.write({ set: { 'auth/refresh_token': 'rt-1', 'q/0000000000000001': '{"mutation_id":"1-aa"}' } });
    s.net.on('/v1/auth/refresh', () => error(401, 'IQP_E_REFRESH_REUSED'));
    expect(await s.tokens.refresh()).toBeNull();
    expect(await s.store.get('auth/refresh_token')).toBeUndefined();
    expect(await s.store.get('q/0000000000000001')).toBeDefined();
    expect(await s.tokens.accessToken()).toBeNull();
    expect(s.net.sent).toHaveLength(1);
  });

  it('a network failure during refresh throws (retry later) and keeps the refresh token', async () => {
    const s = setup();
    await s.store.write({ set: { 'auth/refresh_token': 'rt-1' } });
    s.net.on('/v1/auth/refresh', offline, () => error(503, 'IQP_E_BUSY'), () => json(200, pair(2)));
    await expect(s.tokens.refresh()).rejects.toThrow();
    await expect(s.tokens.refresh()).rejects.toMatchObject({ code: 'IQP_E_BUSY', kind: 'failed' });
    expect(await s.store.get('auth/refresh_token')).toBe('rt-1');
    expect(await s.tokens.refresh()).toBe('at-2');
  });

  it('refreshes by itself shortly before the access token expires, and after a restart', async () => {
    const s = setup();
    s.net.on('/v1/auth/login', () => json(200, { ...pair(1), user }));
    s.net.on('/v1/auth/refresh', () => json(200, pair(2)), () => json(200, pair(3)));
    await s.tokens.signIn('ann@example.org', 'pw');
    s.clock.ms += 860_000;
    expect(await s.tokens.accessToken()).toBe('at-1');
    s.clock.ms += 20_000;
    expect(await s.tokens.accessToken()).toBe('at-2');
    const restarted = authTokens({ baseUrl: 'http://auth.test', store: s.store, fetch: (url, init) => s.net.fetch(url, { ...init, signal: new AbortController().signal }) });
    expect(await restarted.accessToken()).toBe('at-3');
  });

  it('signOut forgets the tokens and tells the server, even offline', async () => {
    const s = setup();
    await s.store.write({ set: { 'auth/refresh_token': 'rt-1' } });
    s.net.on('/v1/auth/logout', offline);
    await s.tokens.signOut();
    expect(await s.tokens.signedIn()).toBe(false);
    expect(s.net.requests('/v1/auth/logout')[0]!.body).toEqual({ refresh_token: 'rt-1' });
  });
});

describe('authTokens on a network that never answers', () => {
  it('gives a refresh up after requestTimeoutMs, aborting its request, so the next refresh sends a new one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const s = setup({ requestTimeoutMs: 5000 });
      await s.store.write({ set: { 'auth/refresh_token': 'rt-1' } });
      s.net.on('/v1/auth/refresh', hang, () => json(200, pair(2)));
      const first = s.tokens.refresh();
      const settled = first.catch((e: unknown) => e);
      // Everyone asking meanwhile shares the request under way.
      const second = s.tokens.accessToken().catch((e: unknown) => e);
      await vi.advanceTimersByTimeAsync(5000);
      expect(await settled).toMatchObject({ kind: 'failed' });
      expect(await second).toMatchObject({ kind: 'failed' });
      expect(s.net.requests('/v1/auth/refresh')[0]!.signal.aborted).toBe(true);
      expect(await s.store.get('auth/refresh_token')).toBe('rt-1');
      expect(await s.tokens.refresh()).toBe('at-2');
      expect(s.net.requests('/v1/auth/refresh')).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('signOut() returns when the logout request never answers', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const s = setup({ requestTimeoutMs: 5000 });
      await s.store.write({ set: { 'auth/refresh_token': 'rt-1' } });
      s.net.on('/v1/auth/logout', hang);
      const out = s.tokens.signOut();
      await vi.advanceTimersByTimeAsync(5000);
      await out;
      expect(await s.tokens.signedIn()).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('authTokens, signing out or in while a refresh is out', () => {
  /**
   * Ann signed in (rt-1) with a refresh out whose answer the test lets through when it likes; a
   * sign-in answers the session rt-5, and logouts are taken.
   */
  async function refreshOut(s: ReturnType<typeof setup>, answer: () => Response, store = s.store) {
    await store.write({ set: { 'auth/refresh_token': 'rt-1', 'auth/account': 'u1' } });
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    s.net.on('/v1/auth/refresh', async () => {
      await gate;
      return answer();
    });
    s.net.on('/v1/auth/login', () => json(200, { ...pair(5), user }));
    s.net.on('/v1/auth/logout', () => json(204, undefined));
    const refreshing = s.tokens.refresh();
    await new Promise<void>((resolve) => setImmediate(resolve));
    return { refreshing, open };
  }

  it('signOut() wins: the refresh that ends after it stores nothing and hands out no token', async () => {
    const s = setup();
    const late = await refreshOut(s, () => json(200, pair(2)));
    await s.tokens.signOut();
    late.open();
    expect(await late.refreshing).toBeNull();
    expect(await s.tokens.signedIn()).toBe(false);
    expect(await s.tokens.accessToken()).toBeNull();
    // The rotated token the server gave the ended session is ended too.
    expect(s.net.requests('/v1/auth/logout').map((r) => r.body)).toEqual([{ refresh_token: 'rt-1' }, { refresh_token: 'rt-2' }]);
  });

  it('signIn() wins: the old session’s refresh that ends after it does not replace the new session’s tokens', async () => {
    const s = setup();
    const late = await refreshOut(s, () => json(200, pair(2)));
    await s.tokens.signIn('ann@example.org', 'pw');
    late.open();
    expect(await late.refreshing).toBe('at-5');
    expect(await s.store.get('auth/refresh_token')).toBe('rt-5');
    expect(await s.tokens.accessToken()).toBe('at-5');
  });

  it('a refresh of the old session that ends while signIn() is still storing the new one answers the new token', async () => {
    const inner = new RecordingStore();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding = false;
    // signIn()'s write of the new session waits until the test lets it land.
    const store = {
      get: (k: string) => inner.get(k),
      scan: (p: string) => inner.scan(p),
      write: async (b: WriteBatch) => {
        if (b.set?.['auth/account'] !== undefined) {
          holding = true;
          await held;
        }
        await inner.write(b);
      },
    };
    const s = setup({ store });
    const late = await refreshOut(s, () => json(200, pair(2)), inner);
    const signingIn = s.tokens.signIn('ann@example.org', 'pw');
    while (!holding) await new Promise<void>((resolve) => setImmediate(resolve));
    late.open();
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    release();
    await signingIn;
    expect(await late.refreshing).toBe('at-5');
    expect(await inner.get('auth/refresh_token')).toBe('rt-5');
  });

  it('a refresh answered 401 after a new sign-in does not sign the new session out', async () => {
    const s = setup();
    const late = await refreshOut(s, () => error(401, 'IQP_E_REFRESH_REUSED'));
    await s.tokens.signIn('ann@example.org', 'pw');
    late.open();
    expect(await late.refreshing).toBe('at-5');
    expect(await s.store.get('auth/refresh_token')).toBe('rt-5');
    expect(await s.tokens.signedIn()).toBe(true);
  });
});
