/** The background loop: long polls at head, wakes for local work, pauses, stops, and never overlaps itself. */
import { describe, expect, it, vi } from 'vitest';
import { aborted } from '../../src/sync-client/errors.js';
import { applyAll, change, error, hang, json, offline, page, type SentRequest } from './fakes.js';
import { deliveredIds, rig, until } from './harness.js';
import type { TokenSource } from '../../src/sync-client/tokens.js';

const card = (id: string) => ({ entity: 'card', entity_id: id, op: 'upsert' as const, payload: { front: id } });

/** Answers at once without wait, holds a long poll until it is aborted. */
const headOrHold = (cursor: string) => (req: SentRequest) => (req.body.wait ? hang(req) : page([], cursor));

describe('the loop', () => {
  it('long-polls once at head, and a local mutation cuts the poll short to push', async () => {
    const r = rig({ longPollS: 25 });
    r.net.on('/v1/sync/pull', headOrHold('c1'));
    r.net.on('/v1/sync/push', applyAll());
    r.client.start();
    await until(() => r.net.requests('/v1/sync/pull').length === 2);
    const [first, second] = r.net.requests('/v1/sync/pull');
    expect(first!.body.wait).toBeUndefined();
    expect(second!.body.wait).toBe(25);
    expect(r.client.status).toBe('idle');
    await r.client.mutate(card('1'));
    await until(() => r.net.requests('/v1/sync/push').length === 1 && r.net.requests('/v1/sync/pull').length === 4);
    expect(second!.signal.aborted).toBe(true);
    expect(r.net.sent.map((s) => `${s.path.slice(9)}${s.body.wait ? ':wait' : ''}`)).toEqual(['pull', 'pull:wait', 'push', 'pull', 'pull:wait']);
    await r.client.stop();
  });

  it('delivers what a long poll brings, then polls again', async () => {
    const r = rig({ longPollS: 10 });
    let n = 0;
    r.net.on('/v1/sync/pull', (req) => (++n === 2 ? page([change('1', 1, 1)], 'c2') : headOrHold('c1')(req)));
    r.client.start();
    await until(() => n === 3);
    expect(deliveredIds(r)).toEqual(['upsert:1@1']);
    // The poll that brought news at once is not mistaken for a server that ignores wait.
    expect(r.clock.slept).toEqual([]);
    expect(r.net.requests('/v1/sync/pull').map((q) => [q.body.cursor, q.body.wait])).toEqual([
      [null, undefined],
      ['c1', 10],
      ['c2', 10],
    ]);
    await r.client.stop();
  });

  it('pause() aborts the request in flight and holds the loop; resume() carries on', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', headOrHold('c1'));
    r.client.start();
    await until(() => r.net.requests('/v1/sync/pull').length === 2);
    r.client.pause();
    const poll = r.net.requests('/v1/sync/pull')[1]!;
    await until(() => poll.signal.aborted && r.net.inFlight === 0);
    expect(r.client.status).toBe('paused');
    await r.client.mutate(card('1'));
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.net.sent).toHaveLength(2);
    await expect(r.client.syncOnce()).rejects.toMatchObject({ code: 'IQP_CLIENT_PAUSED' });
    r.net.on('/v1/sync/push', applyAll());
    r.client.resume();
    await until(async () => (await r.client.pendingCount()) === 0);
    await r.client.stop();
    expect(r.client.status).toBe('stopped');
  });

  it('a pause() that lands while a cycle winds down stays paused: the cycle ending does not report idle', async () => {
    // The browser's offline event can fire between any two awaits of a cycle; here it lands in the
    // app's onChanges, after the pull's answer has arrived and before the cycle reports its end.
    let client: { pause(): void } | undefined;
    const r = rig({ onChanges: () => client?.pause() });
    client = r.client;
    r.net.on('/v1/sync/pull', (req) => (req.body.cursor ? hang(req) : page([change('1', 1, 1)], 'c1')));
    r.client.start();
    await until(() => r.client.status === 'paused' && r.net.inFlight === 0);
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.statuses.map(([s]) => s)).toEqual(['syncing', 'paused']);
    expect(r.client.status).toBe('paused');
    await r.client.stop();
  });

  it('stop() aborts a long poll and resolves once the loop has ended', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', headOrHold('c1'));
    r.client.start();
    await until(() => r.net.inFlight === 1 && r.net.requests('/v1/sync/pull').length === 2);
    await r.client.stop();
    expect(r.net.inFlight).toBe(0);
    const count = r.net.sent.length;
    await r.client.mutate(card('1'));
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.net.sent.length).toBe(count);
  });

  it('never has a pull and a push of one client out at the same time', async () => {
    const r = rig({ longPollS: 5, pushBatch: 2 });
    const slow = async <T>(value: T): Promise<T> => {
      for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      return value;
    };
    const push = applyAll();
    r.net.on('/v1/sync/push', async (req) => slow(await push(req)));
    r.net.on('/v1/sync/pull', (req) => (req.body.wait ? hang(req) : slow(page([change(String(r.net.sent.length), 1, 1)], 'c'))));
    r.client.start();
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      work.push(r.client.mutate(card(String(i))));
      if (i % 5 === 0) work.push(r.client.syncOnce());
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(work);
    await until(async () => (await r.client.pendingCount()) === 0);
    await r.client.stop();
    expect(r.net.maxInFlight).toBe(1);
    expect(r.net.requests('/v1/sync/push').length).toBeGreaterThan(1);
  });

  it('stops with status signed_out, keeping the queue; start() again after signing in', async () => {
    const r = rig();
    r.tokens.next = [null];
    r.net.on('/v1/sync/push', (req) => (req.headers['authorization'] === 'Bearer fresh' ? applyAll()(req) : error(401, 'IQP_E_TOKEN_EXPIRED')));
    r.net.on('/v1/sync/pull', headOrHold('c1'));
    await r.client.mutate(card('1'));
    r.client.start();
    await until(() => r.client.status === 'signed_out');
    expect(await r.client.pendingCount()).toBe(1);
    const sent = r.net.sent.length;
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.net.sent.length).toBe(sent);
    r.tokens.token = 'fresh';
    r.client.start();
    await until(async () => (await r.client.pendingCount()) === 0);
    await r.client.stop();
  });

  it('stops with status blocked on IQP_E_SYNC_SCHEMA_VERSION', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', () => error(422, 'IQP_E_SYNC_SCHEMA_VERSION'));
    r.client.start();
    await until(() => r.client.status === 'blocked');
    expect(r.statuses.at(-1)).toEqual(['blocked', 'IQP_E_SYNC_SCHEMA_VERSION']);
    expect(r.net.sent).toHaveLength(1);
    await r.client.stop();
  });

  it('backs off and retries when the app’s onChanges throws', async () => {
    let throws = 2;
    const r = rig({
      random: () => 0.5,
      onChanges: () => {
        if (throws-- > 0) throw new Error('disk full');
      },
    });
    r.net.on('/v1/sync/pull', (req) => (req.body.wait ? hang(req) : page([change('1', 1, 1)], 'c1')));
    r.client.start();
    await until(() => r.net.requests('/v1/sync/pull').some((q) => q.body.wait));
    expect(r.statuses.filter(([s]) => s === 'error')).toHaveLength(2);
    expect(r.clock.slept).toEqual([500, 1000]);
    await r.client.stop();
  });

  it('a local mutation or syncOnce() ends a retry back-off under way, but not a server\'s Retry-After', async () => {
    // Back-offs here never end on their own: only a nudge (or an abort) can end them.
    const waits: number[] = [];
    const sleep = (ms: number, signal?: AbortSignal) =>
      new Promise<void>((_, reject) => {
        waits.push(ms);
        const stop = () => reject(aborted());
        if (signal?.aborted) return stop();
        signal?.addEventListener('abort', stop, { once: true });
      });
    const r = rig({ sleep, longPollS: 0 });
    let online = false;
    r.net.on('/v1/sync/push', (req) => (online ? applyAll()(req) : offline(req)));
    r.net.on('/v1/sync/pull', (req) => (online ? page([], 'c1') : offline(req)));
    await r.client.mutate(card('1'));
    const first = r.client.syncOnce();
    await until(() => r.client.status === 'offline' && waits.length === 1);
    online = true;
    await r.client.mutate(card('2'));
    await first;
    expect(await r.client.pendingCount()).toBe(0);
    // The batch that failed goes out again as it was (a replay), then the new mutation.
    const pushed = r.net.requests('/v1/sync/push').map((q) => q.body.mutations.map((m: { entity_id: string }) => m.entity_id).join());
    expect(pushed).toEqual(['1', '1', '2']);

    // A 429's Retry-After is the server's to set: a nudge does not shorten it.
    r.net.set('/v1/sync/push', () => error(429, 'IQP_E_RATE_LIMITED', { 'retry-after': '7' }));
    await r.client.mutate(card('3'));
    const second = r.client.syncOnce();
    await until(() => waits.includes(7000));
    const sent = r.net.requests('/v1/sync/push').length;
    await r.client.mutate(card('4'));
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.net.requests('/v1/sync/push').length).toBe(sent);
    const settled = second.catch((e: unknown) => e);
    await r.client.stop();
    expect(await settled).toMatchObject({ kind: 'aborted' });
  });

  it('without long polls, syncs every intervalMs; a mutation does not wait for the interval', async () => {
    const r = rig({ longPollS: 0, intervalMs: 30_000 });
    r.net.on('/v1/sync/pull', () => page([], 'c1'));
    r.net.on('/v1/sync/push', applyAll());
    r.client.start();
    await until(() => r.net.requests('/v1/sync/pull').length >= 3);
    expect(r.net.requests('/v1/sync/pull').every((q) => q.body.wait === undefined)).toBe(true);
    expect(r.clock.slept.slice(0, 2)).toEqual([30_000, 30_000]);
    await r.client.stop();
  });

  it('falls back to intervalMs when the server answers long polls at once', async () => {
    const r = rig({ longPollS: 25, intervalMs: 45_000 });
    r.net.on('/v1/sync/pull', () => json(200, { changes: [], conflicts: [], cursor: 'c1', has_more: false, head: 0 }));
    r.client.start();
    await until(() => r.net.requests('/v1/sync/pull').length >= 4);
    await r.client.stop();
    expect(r.clock.slept.filter((ms) => ms === 45_000).length).toBeGreaterThanOrEqual(2);
  });
});

describe('the loop, restarted', () => {
  it('start() right after stop() runs one loop, not two', async () => {
    const r = rig();
    r.net.on('/v1/sync/pull', headOrHold('c1'));
    r.client.start();
    await until(() => r.net.requests('/v1/sync/pull').length === 2);
    const stopping = r.client.stop();
    r.client.start();
    await stopping;
    await until(() => r.net.requests('/v1/sync/pull').filter((q) => !q.signal.aborted).length >= 1 && r.net.inFlight === 1);
    for (let i = 0; i < 100; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(r.net.inFlight).toBe(1);
    expect(r.net.maxInFlight).toBe(1);
    await r.client.stop();
    expect(r.net.inFlight).toBe(0);
  });
});

describe('the loop, when the token source never answers', () => {
  /** A token source whose every call hangs for ever (a refresh request lost on a black-holed network). */
  function hungTokens(calls: string[], expired = true): TokenSource {
    const never = new Promise<string | null>(() => undefined);
    return {
      accessToken: () => {
        calls.push('accessToken');
        return expired ? never : Promise.resolve('tok-1');
      },
      refresh: () => {
        calls.push('refresh');
        return never;
      },
    };
  }

  /** Resolves once `p` has settled, or throws when it does not within the turns `until` allows. */
  async function settles(p: Promise<unknown>): Promise<void> {
    let done = false;
    void p.finally(() => (done = true));
    await until(() => done);
    await p;
  }

  it('stop() returns while the access token is still awaited', async () => {
    const calls: string[] = [];
    const r = rig({ tokens: hungTokens(calls) });
    r.client.start();
    await until(() => calls.length === 1);
    await settles(r.client.stop());
    expect(r.client.status).toBe('stopped');
    expect(r.net.sent).toEqual([]);
  });

  it('stop() returns while a refresh after IQP_E_TOKEN_EXPIRED is awaited', async () => {
    const calls: string[] = [];
    const r = rig({ tokens: hungTokens(calls, false) });
    r.net.on('/v1/sync/pull', () => error(401, 'IQP_E_TOKEN_EXPIRED'));
    r.client.start();
    await until(() => calls.includes('refresh'));
    await settles(r.client.stop());
    expect(r.client.status).toBe('stopped');
  });

  it('a token wait longer than requestTimeoutMs is given up: the client reports offline and tries again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const calls: string[] = [];
      const r = rig({ tokens: hungTokens(calls), requestTimeoutMs: 5000 });
      r.client.start();
      await until(() => calls.length === 1);
      vi.advanceTimersByTime(5000);
      await until(() => r.client.status === 'offline' && calls.length === 2);
      expect(r.net.sent).toEqual([]);
      await settles(r.client.stop());
    } finally {
      vi.useRealTimers();
    }
  });
});
