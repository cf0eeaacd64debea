/**
 * `iqp users list | create | set-role | disable | delete`: the auth plugin's accounts, managed on
 * the registry host against its data directory, also while the server runs (the plugin runs in
 * command mode: server/plugins/offline.ts). Passwords never come from a flag.
 */
import { Command, Option } from 'commander';
import type { Context } from '../cli/context.js';
import { withSettings } from '../cli/setting-options.js';
import { printable } from '../cli/output.js';
import { AUTH_ADMIN_V1, type AuthAdminServiceV1, type AuthUserSummary, type UserRole } from '../../server/plugins/api.js';
import { type OfflinePlugins, withPlugins } from '../../server/plugins/offline.js';
import { databaseChoice, registryDataDir } from '../../server/config.js';
import { IqpError } from '../errors.js';
import type { CommandGroup } from './types.js';

const ROLES: readonly UserRole[] = ['user', 'publisher', 'admin'];
const roleOption = (description: string) => new Option('-r, --role <role>', description).choices([...ROLES]);

/** Runs `fn` with the plugins of the registry in the data directory (refused if there is none), on its database. */
export async function withRegistryPlugins<T>(ctx: Context, command: string, fn: (host: OfflinePlugins) => Promise<T>): Promise<T> {
  return withPlugins(registryDataDir(ctx.config), command, fn, { database: databaseChoice(ctx.config) });
}

/** Runs `fn` with the auth plugin's admin service on the data directory. */
export function withAuthAdmin<T>(ctx: Context, command: string, fn: (admin: AuthAdminServiceV1) => Promise<T>): Promise<T> {
  return withRegistryPlugins(ctx, command, (host) => fn(host.service(AUTH_ADMIN_V1)));
}

/** As the other commands print records: snake_case, like the HTTP API. */
function record(u: AuthUserSummary) {
  return { id: u.id, email: u.email, role: u.role, email_verified: u.emailVerified, disabled: u.disabled, created_at: u.createdAt };
}

function line(u: AuthUserSummary): string {
  const flags = [u.emailVerified ? 'verified' : 'unverified', ...(u.disabled ? ['DISABLED'] : [])].join(', ');
  return printable(`${u.id}  ${u.role.padEnd(9)} ${u.email}  (${flags}, created ${u.createdAt})`);
}

const list = {
  define: () => withSettings(new Command('list').description('list accounts (never their passwords)'), 'users list'),
  async run(ctx: Context, _opts: unknown): Promise<void> {
    const users = await withAuthAdmin(ctx, 'users list', (a) => a.listUsers());
    ctx.out.result({ users: users.map(record) }, () => (users.length === 0 ? 'No accounts. Create one with: iqp users create <email>' : users.map(line).join('\n')));
  },
};

const create = {
  define: () =>
    withSettings(new Command('create')
      .description('create an account with a verified email (the password comes from IQP_USER_PASSWORD or a prompt)')
      .argument('<email>', 'the account’s email address')
      .addOption(roleOption('user (default), publisher or admin').default('user'))
      .option('--unverified', 'leave the email unverified (the user verifies it with a mailed code)')
      , 'users create'),
  async run(ctx: Context, opts: { role: UserRole; unverified?: boolean }, email: string): Promise<void> {
    const password = ctx.env['IQP_USER_PASSWORD'] || (await ctx.prompt.password('IQP_USER_PASSWORD', `Password for ${email}`, { confirm: true }));
    const user = await withAuthAdmin(ctx, 'users create', (a) => a.createUser({ email, password, role: opts.role, emailVerified: !opts.unverified }, 'cli:users create'));
    ctx.out.result({ user: record(user) }, () => `Created ${line(user)}`);
  },
};

const setRole = {
  define: () =>
    withSettings(new Command('set-role')
      .description('change an account’s role; it takes effect at the user’s next token refresh')
      .argument('<user>', 'the account’s id or email')
      .argument('<role>', ROLES.join(', '))
      , 'users set-role'),
  async run(ctx: Context, _opts: unknown, who: string, role: string): Promise<void> {
    if (!ROLES.includes(role as UserRole)) throw new IqpError('IQP_E_USAGE', `The role must be one of ${ROLES.join(', ')}.`, { role });
    const user = await withAuthAdmin(ctx, 'users set-role', (a) => a.setRole(who, role as UserRole, 'cli:users set-role'));
    ctx.out.result({ user: record(user) }, () => `${line(user)}\nThe new role shows in the user's tokens from their next refresh.`);
  },
};

const disable = {
  define: () =>
    withSettings(new Command('disable')
      .description('disable an account: every session ends and it cannot sign in; --undo enables it again')
      .argument('<user>', 'the account’s id or email')
      .option('--undo', 'enable the account again')
      , 'users disable'),
  async run(ctx: Context, opts: { undo?: boolean }, who: string): Promise<void> {
    const user = await withAuthAdmin(ctx, 'users disable', (a) => a.setDisabled(who, !opts.undo, 'cli:users disable'));
    ctx.out.result({ user: record(user) }, () => line(user));
  },
};

const remove = {
  define: () =>
    withSettings(new Command('delete')
      .description('delete an account and, through the user.deleted hook, every plugin’s data for it')
      .argument('<user>', 'the account’s id or email')
      , 'users delete'),
  async run(ctx: Context, _opts: unknown, who: string): Promise<void> {
    await withAuthAdmin(ctx, 'users delete', (a) => a.deleteUser(who, 'cli:users delete'));
    ctx.out.result({ deleted: who }, () => printable(`Deleted ${who}.`));
  },
};

export const usersGroup: CommandGroup = {
  group: () => new Command('users').description('manage app accounts of the auth plugin (on the registry host)'),
  commands: [list, create, setRole, disable, remove],
};
