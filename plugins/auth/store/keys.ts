/**
 * Signing keys: public halves, lifetimes, and the private halves sealed under the server secret
 * (crypto/seal.ts), so every server sharing the database and the secret signs with the current key.
 */
import type { PluginDatabase } from '../../../server/plugins/api.js';

export interface SigningKeyRow {
  readonly kid: string;
  readonly public_jwk: string;
  /** Null for a key whose private half was a file that was never imported (retired before the upgrade). */
  readonly private_jwk_sealed: string | null;
  readonly created_at_ms: number;
  readonly retired_at_ms: number | null;
}

export interface NewKeyRow {
  readonly kid: string;
  readonly publicJwk: string;
  readonly privateSealed: string;
}

const INSERT = 'INSERT INTO auth_signing_keys (kid, public_jwk, private_jwk_sealed, created_at_ms) VALUES (?, ?, ?, ?)';

export class SigningKeyStore {
  constructor(private readonly db: PluginDatabase) {}

  /** Keys still verifying: the current one and those retired less than `keepMs` ago; newest first. */
  live(nowMs: number, keepMs: number): Promise<SigningKeyRow[]> {
    return this.db.all<SigningKeyRow>('SELECT * FROM auth_signing_keys WHERE retired_at_ms IS NULL OR retired_at_ms > ? ORDER BY created_at_ms DESC, kid', [nowMs - keepMs]);
  }

  /** The kid that signs now (one small read, done before each signature so a rotation anywhere counts at once). */
  async currentKid(db = this.db): Promise<string | null> {
    const row = await db.get<{ kid: string }>('SELECT kid FROM auth_signing_keys WHERE retired_at_ms IS NULL ORDER BY created_at_ms DESC LIMIT 1');
    return row?.kid ?? null;
  }

  /**
   * Adds `key` as the current key and retires the others, in one transaction, and forgets the
   * private halves of keys retired `keepMs` ago or more (they verify nothing any more, so nothing
   * should be able to sign as them). With `replacing`, only while that kid is still the current one
   * (servers that find the same key unusable make one replacement between them): null when another
   * process got there first.
   */
  async rotateTo(key: NewKeyRow, nowMs: number, keepMs: number, replacing?: string): Promise<{ previousKid: string | null } | null> {
    return this.db.transaction(async (tx) => {
      const previous = await this.currentKid(tx);
      if (replacing !== undefined && previous !== replacing) return null;
      await tx.run('UPDATE auth_signing_keys SET private_jwk_sealed = NULL WHERE retired_at_ms <= ? AND private_jwk_sealed IS NOT NULL', [nowMs - keepMs]);
      await tx.run('UPDATE auth_signing_keys SET retired_at_ms = ? WHERE retired_at_ms IS NULL', [nowMs]);
      await tx.run(INSERT, [key.kid, key.publicJwk, key.privateSealed, nowMs]);
      return { previousKid: previous };
    });
  }

  /** The first key, added only if there is none (two processes starting at once make one). */
  async addFirst(key: NewKeyRow, nowMs: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      if ((await this.currentKid(tx)) !== null) return false;
      await tx.run(INSERT, [key.kid, key.publicJwk, key.privateSealed, nowMs]);
      return true;
    });
  }

  /**
   * Gives a key its sealed private half when it has none (a key file being imported): whether
   * the row now holds one (false: no such key).
   */
  async importPrivate(kid: string, sealed: string): Promise<boolean> {
    await this.db.run('UPDATE auth_signing_keys SET private_jwk_sealed = ? WHERE kid = ? AND private_jwk_sealed IS NULL', [sealed, kid]);
    const row = await this.db.get<{ held: number }>('SELECT CASE WHEN private_jwk_sealed IS NULL THEN 0 ELSE 1 END AS held FROM auth_signing_keys WHERE kid = ?', [kid]);
    return row?.held === 1;
  }
}
