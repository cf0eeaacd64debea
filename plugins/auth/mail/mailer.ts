/**
 * Mail the plugin sends (verification codes, reset codes, "someone tried to register with your
 * address"). Requests never wait for delivery: an answer that took longer when a mail went out
 * would tell who has an account. Deliveries run in the background; flush() waits for them.
 */
import type { AuthOutboxMessage, PluginLogger } from '../../../server/plugins/api.js';

/** What a mail is for: the only thing about it a log line names (its subject and text hold codes). */
export type MailPurpose = 'verification' | 'password_reset' | 'register_attempt';

export interface Mail {
  readonly to: string;
  readonly purpose: MailPurpose;
  readonly subject: string;
  readonly text: string;
}

/** The mail that carries a one-time code and its link (to verify an address, or to reset a password). */
export function codeMail(to: string, purpose: 'verify' | 'reset', code: string, link: string): Mail {
  const what = purpose === 'verify' ? 'verification' : 'password reset';
  return {
    to,
    purpose: purpose === 'verify' ? 'verification' : 'password_reset',
    subject: `Your ${what} code: ${code}`,
    text: `Your ${what} code is ${code} (valid for 10 minutes).\nOr open this link within 24 hours: ${link}\nIf you did not ask for it, you can ignore this mail.\n`,
  };
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

  /** Queues a mail; a failed delivery is logged by the mail's purpose (never its subject or text: they hold codes). */
  send(mail: Mail): void {
    const p = this.transport.send(mail).catch((err: unknown) => {
      this.log.error('mail delivery failed', { purpose: mail.purpose, error: err instanceof Error ? err.message : String(err) });
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}
