/**
 * `iqp auth rotate-key | outbox`: the auth plugin's signing key and its mail outbox, on the
 * registry host's data directory, also while the server runs.
 */
import { Command, Option } from 'commander';
import type { Context } from '../cli/context.js';
import { printable, printableLines } from '../cli/output.js';
import { IqpError } from '../errors.js';
import type { CommandGroup } from './types.js';
import { withAuthAdmin } from './users.js';

const dataOption = () => new Option('-d, --data <dir>', 'registry data directory (default: IQP_DATA, the config file’s "data_dir", or ./iqp-data)');

const rotateKey = {
  define: () => new Command('rotate-key').description('sign new access tokens with a new key; the previous one verifies until its last token expires').addOption(dataOption()),
  async run(ctx: Context, opts: { data?: string }): Promise<void> {
    const r = await withAuthAdmin(ctx, opts.data, 'auth rotate-key', (a) => a.rotateKey('cli:auth rotate-key'));
    ctx.out.result({ kid: r.kid, previous_kid: r.previousKid }, () =>
      `New signing key ${r.kid}${r.previousKid ? `; ${r.previousKid} keeps verifying until its last access token expires` : ''}. A running server signs with it within 5 seconds.`,
    );
  },
};

const outbox = {
  define: () =>
    new Command('outbox')
      .description('print the mails the auth plugin wrote to its outbox (when no SMTP server is configured), oldest first')
      .option('-n, --limit <n>', 'only the last N mails')
      .addOption(dataOption()),
  async run(ctx: Context, opts: { limit?: string; data?: string }): Promise<void> {
    const all = await withAuthAdmin(ctx, opts.data, 'auth outbox', (a) => a.readOutbox());
    const limit = opts.limit === undefined ? all.length : Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 0) throw new IqpError('IQP_E_USAGE', '--limit must be a whole number.', { limit: opts.limit });
    const messages = all.slice(all.length - limit);
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
