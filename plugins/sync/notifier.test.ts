import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Notifier, PEER_WINDOW_MS } from './notifier.js';

describe('Notifier', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('tells the peers of a user’s first change at once and of a burst after it once, at the window’s end', () => {
    const told: string[] = [];
    const n = new Notifier(1000, () => 10, (userId) => told.push(userId));
    n.changed('ann');
    expect(told).toEqual(['ann']);
    n.changed('ann');
    n.changed('ann');
    n.changed('bob');
    expect(told).toEqual(['ann', 'bob']);
    vi.advanceTimersByTime(PEER_WINDOW_MS);
    // ann's two later changes, told once; bob changed once: nothing more to tell.
    expect(told).toEqual(['ann', 'bob', 'ann']);
    vi.advanceTimersByTime(PEER_WINDOW_MS * 3);
    expect(told).toEqual(['ann', 'bob', 'ann']);
    // After a quiet window, the next change is told at once again.
    n.changed('bob');
    expect(told).toEqual(['ann', 'bob', 'ann', 'bob']);
  });

  it('wakes a pull waiting in this process at every change, whatever it told the peers', async () => {
    const n = new Notifier(60_000, () => 10, () => {});
    n.changed('ann'); // opens a window: the peers are not told of the next change yet
    const controller = new AbortController();
    let woken = false;
    const waiting = n.wait('ann', 30_000, controller.signal, async () => false).then((r) => (woken = r));
    await Promise.resolve();
    n.changed('ann');
    await waiting;
    expect(woken).toBe(true);
  });
});
