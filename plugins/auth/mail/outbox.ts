/**
 * The default transport: each mail is a JSON file in `<plugin data dir>/outbox/`, written
 * atomically, for an operator to read with `iqp auth outbox` (or a script to forward) until SMTP
 * is configured.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { AuthOutboxMessage, PluginClock } from '../../../server/plugins/api.js';
import { writeTemp } from '../temp-file.js';
import type { Mail, OutboxReader, Transport } from './mailer.js';

export class OutboxTransport implements Transport, OutboxReader {
  private readonly dir: string;

  constructor(
    dataDir: string,
    private readonly clock: PluginClock,
  ) {
    this.dir = join(dataDir, 'outbox');
  }

  async send(mail: Mail): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const createdAt = this.clock.now();
    // Names sort by time, then by a random part for mails written in the same millisecond.
    const id = `${createdAt.replace(/[-:.]/g, '')}-${randomBytes(6).toString('hex')}`;
    const message: AuthOutboxMessage = { id, to: mail.to, subject: mail.subject, text: mail.text, createdAt };
    renameSync(writeTemp(this.dir, JSON.stringify(message)), join(this.dir, `${id}.json`));
  }

  async read(): Promise<AuthOutboxMessage[]> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .sort()
      .map((n) => JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as AuthOutboxMessage);
  }
}
