/**
 * Work a request starts and does not wait for: a mail, and the code it carries. An answer that
 * took longer when there was such work would tell who has an account, so each task starts on a
 * later turn of the event loop, once the request's own work is done. A failure is logged, never
 * lost; flush() waits for every task, those queued while it waits included (at stop, and before
 * the outbox is read).
 */
import type { PluginLogger } from '../../server/plugins/api.js';

export class Background {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly log: PluginLogger) {}

  /** Runs `task` soon; should it fail, logs `failure` with `fields` and the error's message (so put no secret in either). */
  run(failure: string, fields: Record<string, unknown>, task: () => Promise<void>): void {
    const p = new Promise<void>((resolve) => setImmediate(resolve)).then(task).catch((err: unknown) => {
      this.log.error(failure, { ...fields, error: err instanceof Error ? err.message : String(err) });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
