/**
 * Long-poll wake-ups: a pull with `wait` sleeps until its user's head moves. A push in this process
 * wakes it at once, and so does one in another worker of the same server (which tells its peers);
 * a push on another server over the same database is seen by polling the head every pollMs, so
 * nothing depends on in-process state alone.
 *
 * Peers are told of a user's first change at once and of the changes that follow within
 * PEER_WINDOW_MS once, at the window's end: a device pushing a backlog page after page (hundreds a
 * second across the workers) costs every other worker one message a window, not one a push,
 * and a pull waiting there learns of the last of them at most PEER_WINDOW_MS late.
 */
export const PEER_WINDOW_MS = 50;

export class Notifier {
  private readonly waiting = new Map<string, Set<() => void>>();
  private count = 0;
  /** Users whose peers were told within the last window: whether a change came since. */
  private readonly told = new Map<string, { again: boolean }>();

  constructor(
    private readonly pollMs: number,
    private readonly maxWaiting: () => number,
    private readonly tellPeers: (userId: string) => void = () => {},
    private readonly windowMs = PEER_WINDOW_MS,
  ) {}

  /** The user's data changed here: wakes the user's waiting pulls, in this process and its peers. */
  changed(userId: string): void {
    this.wake(userId);
    const window = this.told.get(userId);
    if (window) window.again = true;
    else this.tell(userId);
  }

  /** Tells the peers now, and opens a window whose later changes they are told of at its end. */
  private tell(userId: string): void {
    this.tellPeers(userId);
    const window = { again: false };
    this.told.set(userId, window);
    setTimeout(() => {
      this.told.delete(userId);
      if (window.again) this.tell(userId);
    }, this.windowMs).unref();
  }

  /** Wakes the user's waiting pulls in this process. */
  wake(userId: string): void {
    const set = this.waiting.get(userId);
    if (!set) return;
    this.waiting.delete(userId);
    for (const wake of set) wake();
  }

  /**
   * Resolves when `moved()` says the head moved, a push here wakes it, `waitMs` passes or `signal`
   * aborts; false when too many pulls already wait (the pull answers at once instead).
   */
  async wait(userId: string, waitMs: number, signal: AbortSignal, moved: () => Promise<boolean>): Promise<boolean> {
    if (this.count >= this.maxWaiting()) return false;
    this.count++;
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const set = this.waiting.get(userId) ?? new Set();
    set.add(wake);
    this.waiting.set(userId, set);
    const onAbort = () => wake();
    signal.addEventListener('abort', onAbort, { once: true });
    const deadline = Date.now() + waitMs;
    try {
      while (!signal.aborted) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        let timer: NodeJS.Timeout | undefined;
        const tick = new Promise<'tick'>((resolve) => {
          timer = setTimeout(() => resolve('tick'), Math.min(left, this.pollMs));
        });
        const why = await Promise.race([woken.then(() => 'woken' as const), tick]);
        clearTimeout(timer);
        if (why === 'woken' || (await moved())) break;
      }
      return true;
    } finally {
      this.count--;
      signal.removeEventListener('abort', onAbort);
      const s = this.waiting.get(userId);
      s?.delete(wake);
      if (s?.size === 0) this.waiting.delete(userId);
    }
  }
}
