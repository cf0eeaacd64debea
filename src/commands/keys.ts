/** `iqp keys add | list | remove`: the publisher keys a registry accepts signatures from. */
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import type { Context } from '../cli/context.js';
import { readKeyFile } from '../cli/keys.js';
import { withRegistry } from '../cli/registry.js';
import { withSettings } from '../cli/setting-options.js';
import type { KeyAdded, KeyList, KeyPurpose } from '../client/types.js';
import { IqpError } from '../errors.js';
import { type Hints, hinted } from '../cli/hints.js';
import { parsePublicKey } from '../pack/minisign.js';
import type { CommandGroup } from './types.js';

const add = {
  define: () =>
    withSettings(
      new Command('add')
        .description('register a public key (minisign .pub) whose signatures the registry accepts (admin token)')
        .argument('<file.pub>', 'public key file from iqp keygen or minisign -G')
        .option('-n, --name <name>', 'who the key belongs to (default: its key ID)')
        .addOption(new Option('--purpose <purpose>', 'pack: signs packs; release: signs release manifests').choices(['pack', 'release']).default('pack')), 'keys add'),
  async run(ctx: Context, opts: { name?: string; purpose: KeyPurpose }, file: string): Promise<void> {
    const path = resolve(ctx.cwd, file);
    const text = await readKeyFile(path, 'Public key');
    // Checked here too, so a secret key or a typo fails before anything is sent.
    parsePublicKey(text);
    const added = await withRegistry(ctx, { token: true }, (client) =>
      client.json<KeyAdded>({ method: 'POST', path: '/v1/admin/keys', auth: true, json: { public_key: text, purpose: opts.purpose, ...(opts.name ? { name: opts.name } : {}) }, expect: [200, 201] }),
    );
    ctx.out.result(added, () =>
      added.status === 'created'
        ? `Added ${added.key.purpose ?? 'pack'} key ${added.key.key_id} (${added.key.name}).`
        : `Key ${added.key.key_id} (${added.key.name}) was already registered.`,
    );
  },
};

const list = {
  define: () => withSettings(new Command('list').description('list the registry’s publisher keys (the admin view when a token is set)'), 'keys list'),
  async run(ctx: Context, _opts: unknown): Promise<void> {
    const listed = await withRegistry(ctx, { token: false }, (client) =>
      client.json<KeyList>(client.hasToken ? { method: 'GET', path: '/v1/admin/keys', auth: true } : { method: 'GET', path: '/v1/keys' }),
    );
    ctx.out.result(listed, () =>
      listed.keys.length === 0
        ? 'No publisher keys. Add one with: iqp keys add <file.pub>'
        : listed.keys.map((k) => `${k.key_id}  ${(k.purpose ?? 'pack').padEnd(8)} ${k.name.padEnd(24)} added ${k.added_at}`).join('\n'),
    );
  },
};

const REMOVE_HINTS: Hints = {
  IQP_E_NOT_FOUND: 'See the key IDs the registry has with `iqp keys list`.',
  IQP_E_KEY_IN_USE: (err) =>
    Array.isArray(err.details?.['releases'])
      ? 'Publish a release whose packs are signed with another key and deprecate the releases named (`iqp release deprecate`); pass --force only if the key is compromised.'
      : 'Publish newer versions of those packs signed with another key (for the same apps: min_app_version no higher), or withdraw them with `iqp deprecate`; pass --force only if the key is compromised.',
};

const remove = {
  define: () =>
    withSettings(
      new Command('remove')
        .description('stop trusting a key: uploads signed by it are refused (admin token)')
        .argument('<keyId>', 'key ID, as iqp keys list shows it')
        .option('--force', 'remove it even though packs apps are offered are signed by it (a compromised key)'), 'keys remove'),
  async run(ctx: Context, opts: { force?: boolean }, keyId: string): Promise<void> {
    if (!/^[0-9A-Fa-f]{16}$/.test(keyId)) throw new IqpError('IQP_E_USAGE', `"${keyId}" is not a key ID (16 hexadecimal digits).`);
    await hinted(REMOVE_HINTS, () =>
      withRegistry(ctx, { token: true }, (client) =>
        client.json<undefined>({ method: 'DELETE', path: `/v1/admin/keys/${keyId.toUpperCase()}${opts.force ? '?force=true' : ''}`, auth: true, expect: [204] }),
      ),
    );
    ctx.out.result({ removed: keyId.toUpperCase() }, () =>
      `Removed key ${keyId.toUpperCase()}: uploads signed by it are refused now, and clients that trust GET /v1/keys stop accepting its packs.`,
    );
  },
};

export const keysGroup: CommandGroup = {
  group: () => new Command('keys').description('manage the registry’s publisher keys'),
  commands: [add, list, remove],
};
