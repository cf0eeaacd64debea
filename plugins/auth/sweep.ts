/**
 * Removes sessions and codes that can no longer be used, at start and then hourly, in the server
 * only. Each sweep is one idempotent DELETE per table, so servers sharing a database may all run it.
 */
import type { PluginContext } from '../../server/plugins/api.js';
import type { AuthConfig } from './config.js';
import { DAY_MS } from './config.js';
import type { CodeStore } from './store/codes.js';
import type { SessionStore } from './store/sessions.js';

const EVERY_MS = 3_600_000;

export class Sweeper {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ctx: PluginContext<AuthConfig>,
    private readonly sessions: SessionStore,
    private readonly codes: CodeStore,
  ) {}

  async sweep(): Promise<void> {
    const now = this.ctx.clock.nowMs();
    await this.sessions.prune(now, this.ctx.config.refresh_idle_days * DAY_MS);
    await this.codes.prune(now);
  }

  start(): void {
    const run = () => {
      this.sweep().catch((err: unknown) => this.ctx.log.warn('auth sweep failed', { error: err instanceof Error ? err.message : String(err) }));
    };
    run();
    this.timer = setInterval(run, EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
