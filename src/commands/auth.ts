/**
 * `iqp auth rotate-key | outbox`: the auth plugin's signing key and its mail outbox, on the
 * registry host's data directory, also while the server runs.
 */
import { Command } from 'commander';
import type { Context } from '../cli/context.js';
import { intFlag, withSettings } from '../cli/setting-options.js';
import { printable, printableLines } from '../cli/output.js';
import type { CommandGroup } from './types.js';
import { withAuthAdmin } from './users.js';


const rotateKey = {
  define: () => withSettings(new Command('rotate-key').description('sign new access tokens with a new key; the previous one verifies until its last token expires'), 'auth rotate-key'),
  async run(ctx: Context, _opts: unknown): Promise<void> {
    const r = await withAuthAdmin(ctx, 'auth rotate-key', (a) => a.rotateKey('cli:auth rotate-key'));
    ctx.out.result({ kid: r.kid, previous_kid: r.previousKid }, () =>
      `New signing key ${r.kid}${r.previousKid ? `; ${r.previousKid} keeps verifying until its last access token expires` : ''}. Running servers sign with it from their next token.`,
    );
  },
};

const outbox = {
  define: () =>
    withSettings(new Command('outbox')
      .description('print the mails the auth plugin wrote to its outbox (when no SMTP server is configured), oldest first')
      .option('-n, --limit <n>', 'only the last N mails', intFlag('--limit', 0, 1_000_000))
      , 'auth outbox'),
  async run(ctx: Context, opts: { limit?: number }): Promise<void> {
    const all = await withAuthAdmin(ctx, 'auth outbox', (a) => a.readOutbox());
    const messages = all.slice(all.length - Math.min(opts.limit ?? all.length, all.length));
    ctx.out.result({ messages }, () =>
      messages.length === 0
        ? 'The outbox is empty.'
        : messages.map((m) => `--- ${m.createdAt}  to ${printable(m.to)}\nSubject: ${printable(m.subject)}\n\n${printableLines(m.text.trimEnd())}`).join('\n\n'),
    );
  },
};

export const authGroup: CommandGroup = {
  group: () => new Command('auth').description('the auth plugin’s signing keys and mail outbox (on the registry host)'),
  commands: [rotateKey, outbox],
};
