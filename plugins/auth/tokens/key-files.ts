/**
 * Private signing keys as earlier versions kept them: JWK files in `<plugin data dir>/keys/`. At
 * server start each is sealed into its database row (when the row has no private half yet) and
 * the file is removed once the database holds the key: the database (with its backups) is then
 * the one place it lives, and a copy left on disk would only be one more thing to guard. A file
 * whose kid the database does not know is left alone (and logged).
 */
import { readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PluginLogger } from '../../../server/plugins/api.js';
import type { KeySealer } from '../crypto/seal.js';
import type { SigningKeyStore } from '../store/keys.js';
import { KID } from './key-pair.js';

/** Imports the key files in `<pluginDataDir>/keys/`; returns the kids now held by the database. */
export async function importKeyFiles(pluginDataDir: string, store: SigningKeyStore, sealer: KeySealer, log: PluginLogger): Promise<string[]> {
  const dir = join(pluginDataDir, 'keys');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const imported: string[] = [];
  for (const name of names.sort()) {
    const kid = name.endsWith('.jwk') ? name.slice(0, -4) : null;
    if (!kid || !KID.test(kid)) continue;
    const path = join(dir, name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
      const jwk = JSON.parse(text) as { kid?: unknown; d?: unknown };
      if (jwk.kid !== kid || typeof jwk.d !== 'string') throw new Error('not a private key with this kid');
    } catch (err) {
      // Another worker of this server imported and removed it meanwhile.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      log.warn('a signing key file could not be read; left in place', { kid, error: err instanceof Error ? err.message : String(err) });
      continue;
    }
    if (await store.importPrivate(kid, sealer.seal(text, kid))) {
      rmSync(path, { force: true });
      imported.push(kid);
    } else {
      log.info('a signing key file names a key the database does not have; left in place', { kid });
    }
  }
  if (imported.length > 0) log.info('signing keys moved from key files into the database', { kids: imported });
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (a file left in place): keep the folder.
  }
  return imported;
}
