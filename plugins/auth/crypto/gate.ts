/**
 * At most `concurrency` password hashes at once, `queue` more waiting; past that the caller is
 * refused at once (503 with Retry-After) rather than left to pile up memory: each argon2id hash
 * holds 19 MiB while it runs.
 */
export class HashGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly queue: number,
  ) {}

  /** Runs fn when a slot is free; null when the queue is full (fn not run). */
  async run<T>(fn: () => Promise<T>): Promise<{ value: T } | null> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.queue) return null;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return { value: await fn() };
    } finally {
      // Hand the slot straight to the next waiter, so `running` never drops while work is queued.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
