/**
 * `iqp token create | list | revoke`: bearer tokens, managed on the registry host against its data
 * directory (the first admin token cannot come from the API). A token is printed once, at creation.
 */
import { Command, Option } from 'commander';
import type { Context } from '../cli/context.js';
import { withSettings } from '../cli/setting-options.js';
import { openStores } from '../../server/datadir.js';
import { databaseChoice, registryDataDir } from '../../server/config.js';
import { systemClock } from '../../server/services/clock.js';
import { ROLES, TokenService, isRole } from '../../server/services/tokens.js';
import { IqpError } from '../errors.js';
import type { CommandGroup } from './types.js';

const ACTOR = 'cli:token';

/** Runs `fn` on the registry's tokens; works beside a running server (it only reads and adds rows). */
async function withTokens<T>(ctx: Context, command: string, fn: (tokens: TokenService) => Promise<T>): Promise<T> {
  const stores = await openStores(registryDataDir(ctx.config), `iqp token ${command}`, { database: databaseChoice(ctx.config), blobs: { kind: 'fs' } });
  try {
    return await fn(new TokenService(stores.meta, systemClock));
  } finally {
    await stores.meta.close();
  }
}

const create = {
  define: () =>
    withSettings(
      new Command('create')
        .description('create a token and print it once (only its hash is stored)')
        .addOption(new Option('-r, --role <role>', 'admin (everything) or publisher (publish and deprecate packs, manage releases; not keys or the audit log)').choices([...ROLES]).makeOptionMandatory())
        .option('-n, --name <name>', 'who or what the token is for, shown in the audit log'),
      'token create',
    ),
  async run(ctx: Context, opts: { role: string; name?: string }): Promise<void> {
    if (!isRole(opts.role)) throw new IqpError('IQP_E_USAGE', `--role must be ${ROLES.join(' or ')}.`);
    const role = opts.role;
    const { token, record } = await withTokens(ctx, 'create', (t) => t.create(role, opts.name ?? '', ACTOR));
    ctx.out.result({ token, id: record.id, name: record.name, role: record.role, created_at: record.created_at }, () =>
      [`${token}`, '', `Token ${record.id} (${record.name}, role ${record.role}). It is shown only now: store it in a secret store (IQP_TOKEN).`].join('\n'),
    );
  },
};

const list = {
  define: () => withSettings(new Command('list').description('list tokens (never their secrets)'), 'token list'),
  async run(ctx: Context): Promise<void> {
    const tokens = await withTokens(ctx, 'list', (t) => t.list());
    ctx.out.result({ tokens }, () =>
      tokens.length === 0
        ? 'No tokens. Create one with: iqp token create --role admin'
        : tokens.map((t) => `${t.id}  ${t.role.padEnd(9)} ${t.name.padEnd(24)} created ${t.created_at}  ${t.revoked_at ? `REVOKED ${t.revoked_at}` : `last used ${t.last_used_at ?? 'never'}`}`).join('\n'),
    );
  },
};

const revoke = {
  define: () => withSettings(new Command('revoke').description('revoke a token by its id').argument('<id>', 'token id (from iqp token list)'), 'token revoke'),
  async run(ctx: Context, _opts: unknown, id: string): Promise<void> {
    await withTokens(ctx, 'revoke', (t) => t.revoke(id, ACTOR));
    ctx.out.result({ revoked: id }, () => `Revoked token ${id}.`);
  },
};

export const tokenGroup: CommandGroup = {
  group: () => new Command('token').description('manage registry bearer tokens (on the registry host)'),
  commands: [create, list, revoke],
};
