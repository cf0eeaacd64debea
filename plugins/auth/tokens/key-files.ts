/** Private signing keys as JWK files in the plugin's data directory: written atomically, mode 0600. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeTemp } from '../temp-file.js';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export const KID = /^[A-Za-z0-9_-]{1,64}$/;

export interface NewKey {
  readonly kid: string;
  readonly publicJwk: JWK;
}

export class KeyFiles {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'keys');
  }

  private path(kid: string): string {
    if (!KID.test(kid)) throw new Error(`not a key id: ${kid}`);
    return join(this.dir, `${kid}.jwk`);
  }

  /** A new Ed25519 key pair; the private half is on disk (fsynced) before this returns. */
  async create(): Promise<NewKey> {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const kid = randomBytes(12).toString('base64url');
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA', use: 'sig' };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    renameSync(writeTemp(this.dir, JSON.stringify(priv)), this.path(kid));
    return { kid, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } };
  }

  async privateKey(kid: string): Promise<CryptoKey> {
    const jwk = JSON.parse(readFileSync(this.path(kid), 'utf8')) as JWK;
    return (await importJWK(jwk, 'EdDSA')) as CryptoKey;
  }

  remove(kid: string): void {
    rmSync(this.path(kid), { force: true });
  }

  /** Key files whose kid is not in `keep` (retired long enough ago, or left by a lost race). */
  removeAllBut(keep: ReadonlySet<string>): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const kid = name.endsWith('.jwk') ? name.slice(0, -4) : null;
      if (kid && KID.test(kid) && !keep.has(kid)) this.remove(kid);
    }
  }
}
