/**
 * ctx.rateLimit's behaviour, as one suite both databases' limiters pass: fixed windows, blocks,
 * peek and reset, and one limit however many connections (server processes) count against it.
 * `open` gives two handles (connections, pools) on one fresh registry database with the core's
 * schema. Time is the test's: the limiters read Date.now(), which the suite moves by hand.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RateLimitOptions } from '../../server/plugins/api.js';
import type { PluginStorage } from '../../server/plugins/storage.js';

export interface RateLimitTarget {
  open(): Promise<{ first: PluginStorage; second: PluginStorage; close(): Promise<void> }>;
  /** The stored counters, as the database holds them (SQLite: the counters' own file; PostgreSQL: the core's table). */
  counters(db: PluginStorage): Promise<Array<{ key: string; points: number }>>;
}

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

export function rateLimitConformance(name: string, target: RateLimitTarget): void {
  describe(`ctx.rateLimit: ${name}`, () => {
    let first: PluginStorage;
    let second: PluginStorage;
    let close: () => Promise<void>;
    const limit = (db: PluginStorage, options: Partial<RateLimitOptions> = {}, plugin = 'p') =>
      db.rateLimiter(plugin, { name: 'login', points: 3, durationS: 60, ...options }, 'command');
    const at = (ms: number) => vi.setSystemTime(T0 + ms);

    beforeEach(async () => {
      ({ first, second, close } = await target.open());
      vi.useFakeTimers({ toFake: ['Date'] });
      at(0);
    });
    afterEach(async () => {
      vi.useRealTimers();
      await close();
    });

    it('holds as one limit across two connections to the database', async () => {
      const [a, b] = [limit(first), limit(second)];
      expect(await a.consume('k')).toEqual({ allowed: true });
      expect(await b.consume('k')).toEqual({ allowed: true });
      expect(await a.consume('k')).toEqual({ allowed: true });
      expect(await b.consume('k')).toEqual({ allowed: false, retryAfterS: 60 });
      at(30_000);
      expect(await a.peek('k')).toEqual({ consumed: 4, retryAfterS: 30 });
      expect(await b.consume('other')).toEqual({ allowed: true });
    });

    it('opens a new window once the old one ends', async () => {
      const a = limit(first);
      for (let i = 0; i < 3; i++) await a.consume('k');
      expect(await a.consume('k', 2)).toMatchObject({ allowed: false });
      at(59_999);
      expect(await limit(second, {}, 'q').consume('k')).toEqual({ allowed: true });
      expect(await a.consume('k')).toEqual({ allowed: false, retryAfterS: 1 });
      at(60_001);
      expect(await a.peek('k')).toEqual({ consumed: 0, retryAfterS: 0 });
      expect(await a.consume('k')).toEqual({ allowed: true });
      expect(await a.peek('k')).toEqual({ consumed: 1, retryAfterS: 0 });
    });

    it('blocks for blockDurationS once exhausted, past the window’s end', async () => {
      const a = limit(first, { points: 1, durationS: 10, blockDurationS: 100 });
      expect(await a.consume('k')).toEqual({ allowed: true });
      expect(await a.consume('k')).toEqual({ allowed: false, retryAfterS: 100 });
      at(50_000);
      expect(await limit(second, { points: 1, durationS: 10, blockDurationS: 100 }, 'p').consume('k')).toEqual({ allowed: false, retryAfterS: 50 });
      at(100_001);
      expect(await a.consume('k')).toEqual({ allowed: true });
    });

    it('reset forgets a key everywhere; peek of an unknown key is zero', async () => {
      const [a, b] = [limit(first), limit(second)];
      expect(await a.peek('never')).toEqual({ consumed: 0, retryAfterS: 0 });
      for (let i = 0; i < 4; i++) await a.consume('k');
      await b.reset('k');
      expect(await a.peek('k')).toEqual({ consumed: 0, retryAfterS: 0 });
      expect(await a.consume('k')).toEqual({ allowed: true });
      await b.reset('never');
    });

    it('keeps each plugin’s and each name’s counts apart, in one store', async () => {
      await limit(first).consume('k');
      await limit(first, { name: 'mail' }).consume('k', 2);
      await limit(second, {}, 'other').consume('k', 3);
      expect(await target.counters(first)).toEqual([
        { key: 'other:login:k', points: 3 },
        { key: 'p:login:k', points: 1 },
        { key: 'p:mail:k', points: 2 },
      ]);
    });

    it('with { tx }, counts as part of that transaction: kept when it commits, refusals included, and not when it rolls back', async () => {
      const a = limit(first, { points: 2 });
      // Committed: both consumes count, the refused one too.
      const seen = await first.transaction(async (tx) => [await a.consume('k', 2, { tx }), await a.consume('k', 1, { tx })]);
      expect(seen).toEqual([{ allowed: true }, { allowed: false, retryAfterS: 60 }]);
      expect(await limit(second, { points: 2 }).peek('k')).toEqual({ consumed: 3, retryAfterS: 60 });
      // Rolled back: nothing counted.
      await expect(
        first.transaction(async (tx) => {
          await a.consume('other', 1, { tx });
          throw new Error('the work failed');
        }),
      ).rejects.toThrow('the work failed');
      expect(await a.peek('other')).toEqual({ consumed: 0, retryAfterS: 0 });
    });
  });
}
