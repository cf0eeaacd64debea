/** Reading key files for commands: passphrases come from IQP_PASSPHRASE or a prompt, never a flag. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { IqpError } from '../errors.js';
import { requireFile } from '../files.js';
import { parsePublicKey, parseSecretKey, type PublicKey, type SecretKey, secretKeyIsEncrypted } from '../pack/minisign.js';
import type { Context } from './context.js';

/** A key file's text; `what` ("Public key") names it when the path is missing or a folder. */
export async function readKeyFile(path: string, what: string): Promise<string> {
  await requireFile(path, what);
  return readFile(path, 'utf8');
}

export async function loadSecretKey(ctx: Context, file: string): Promise<SecretKey> {
  const path = resolve(ctx.cwd, file);
  const text = await readKeyFile(path, 'Secret key');
  if (!secretKeyIsEncrypted(text)) return parseSecretKey(text, null);
  let passphrase = ctx.env['IQP_PASSPHRASE'];
  if (passphrase === undefined) {
    if (!ctx.interactive) {
      throw new IqpError('IQP_E_PASSPHRASE_REQUIRED', `${path} is encrypted: set IQP_PASSPHRASE, or run at an interactive terminal.`);
    }
    passphrase = await ctx.prompt.password('IQP_PASSPHRASE', `Passphrase for ${file}`);
  }
  return parseSecretKey(text, passphrase);
}

export async function loadPublicKeys(ctx: Context, files: readonly string[]): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const file of files) {
    const path = resolve(ctx.cwd, file);
    const key = parsePublicKey(await readKeyFile(path, 'Public key'));
    // Two different keys may share a key ID (it is random, not a hash): keep both.
    if (!keys.some((k) => k.publicKey.equals(key.publicKey))) keys.push(key);
  }
  return keys;
}
