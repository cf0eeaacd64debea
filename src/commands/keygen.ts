import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import type { Context } from '../cli/context.js';
import { IqpError } from '../errors.js';
import { formatPublicKeyFile, formatSecretKeyFile, generateKeyPair } from '../pack/minisign.js';

interface Options {
  out: string;
  passphrase: boolean;
  force?: boolean;
}

export function define(): Command {
  return new Command('keygen')
    .description('create an Ed25519 signing key pair in minisign’s formats (<out>.pub and <out>.key)')
    .option('-o, --out <base>', 'base path of the key files', 'iqp')
    .option('--no-passphrase', 'store the secret key unencrypted (for CI keys kept in a secret store)')
    .option('-f, --force', 'overwrite existing key files')
    .addHelpText(
      'after',
      '\nThe secret key is encrypted with a passphrase (minisign’s scrypt KDF) taken from IQP_PASSPHRASE or asked for at a terminal.\nKeys interoperate with minisign: `minisign -V -p <out>.pub` verifies pack signatures.',
    );
}

export async function run(ctx: Context, opts: Options): Promise<void> {
  const base = resolve(ctx.cwd, opts.out);
  const pubPath = `${base}.pub`;
  const keyPath = `${base}.key`;
  for (const path of [pubPath, keyPath]) {
    if (existsSync(path) && !opts.force) throw new IqpError('IQP_E_KEY_EXISTS', `${path} already exists.`, { path });
  }
  let passphrase: string | null = null;
  if (opts.passphrase) {
    passphrase = ctx.env['IQP_PASSPHRASE'] ?? null;
    if (passphrase === null) {
      if (!ctx.interactive) {
        throw new IqpError('IQP_E_PASSPHRASE_REQUIRED', 'A passphrase is needed to encrypt the secret key: set IQP_PASSPHRASE, or pass --no-passphrase.');
      }
      passphrase = await ctx.prompt.password('IQP_PASSPHRASE', 'Passphrase for the new secret key', { confirm: true });
    }
    if (passphrase === '') throw new IqpError('IQP_E_USAGE', 'The passphrase is empty; pass --no-passphrase for an unencrypted key.');
  }
  const spinner = await ctx.out.spinner(passphrase ? 'Deriving the key encryption key (scrypt)…' : 'Generating key pair…');
  const key = generateKeyPair();
  const secretText = await formatSecretKeyFile(key, passphrase);
  // The secret key is written first: a public key without its secret would be useless.
  writeFileAtomic(keyPath, secretText, 0o600);
  writeFileAtomic(pubPath, formatPublicKeyFile(key), 0o644);
  spinner.stop();
  ctx.out.result({ key_id: key.keyId, public_key: pubPath, secret_key: keyPath, encrypted: passphrase !== null }, () =>
    [
      `Key ID ${key.keyId}`,
      `  public key: ${pubPath}  (share it; verifiers pass it with --pubkey)`,
      `  secret key: ${keyPath}  (mode 0600, ${passphrase ? 'passphrase-protected' : 'NOT encrypted'}; keep it private)`,
    ].join('\n'),
  );
}
