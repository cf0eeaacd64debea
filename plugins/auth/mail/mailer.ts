/**
 * Mail the plugin sends (verification codes, reset codes, "someone tried to register with your
 * address"). Requests never wait for delivery: an answer that took longer when a mail went out
 * would tell who has an account. Deliveries run in the background (Background.flush waits for them).
 */
import type { AuthOutboxMessage } from '../../../server/plugins/api.js';
import type { Background } from '../background.js';

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
    purpose: codeMailPurpose(purpose),
    subject: `Your ${what} code: ${code}`,
    text: `Your ${what} code is ${code} (valid for 10 minutes).\nOr open this link within 24 hours: ${link}\nIf you did not ask for it, you can ignore this mail.\n`,
  };
}

/** What the mail carrying a code of this purpose is for. */
export function codeMailPurpose(purpose: 'verify' | 'reset'): MailPurpose {
  return purpose === 'verify' ? 'verification' : 'password_reset';
}

export interface Transport {
  send(mail: Mail): Promise<void>;
}

export interface OutboxReader {
  read(): Promise<AuthOutboxMessage[]>;
}

export class Mailer {
  constructor(
    private readonly transport: Transport,
    private readonly background: Background,
  ) {}

  /** Queues a mail; a failed delivery is logged by the mail's purpose (never its subject or text: they hold codes). */
  send(mail: Mail): void {
    this.background.run('mail delivery failed', { purpose: mail.purpose }, () => this.transport.send(mail));
  }
}
