/**
 * Long-poll wake-ups: a pull with `wait` sleeps until its user's head moves. A push in this process
 * wakes it at once, and so does one in another worker of the same server (which tells its peers);
 * a push on another server over the same database is seen by polling the head every pollMs, so
 * nothing depends on in-process state alone.
 */
export class Notifier {
  private readonly waiting = new Map<string, Set<() => void>>();
  private count = 0;

  constructor(
    private readonly pollMs: number,
    private readonly maxWaiting: () => number,
    private readonly tellPeers: (userId: string) => void = () => {},
  ) {}

  /** The user's data changed here: wakes the user's waiting pulls, in this process and its peers. */
  changed(userId: string): void {
    this.wake(userId);
    this.tellPeers(userId);
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
