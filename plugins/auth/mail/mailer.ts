/**
 * Mail the plugin sends (verification codes, reset codes, "someone tried to register with your
 * address"). Requests never wait for delivery: an answer that took longer when a mail went out
 * would tell who has an account. Deliveries run in the background; flush() waits for them.
 */
import type { AuthOutboxMessage, PluginLogger } from '../../../server/plugins/api.js';

export interface Mail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

export interface Transport {
  send(mail: Mail): Promise<void>;
}

export interface OutboxReader {
  read(): Promise<AuthOutboxMessage[]>;
}

export class Mailer {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly transport: Transport,
    private readonly log: PluginLogger,
  ) {}

  /** Queues a mail; a failed delivery is logged (without the mail's text: it holds codes). */
  send(mail: Mail): void {
    const p = this.transport.send(mail).catch((err: unknown) => {
      this.log.error('mail delivery failed', { subject: mail.subject, error: err instanceof Error ? err.message : String(err) });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
