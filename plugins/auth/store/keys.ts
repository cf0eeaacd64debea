/** Signing keys' public halves and lifetimes (the private halves are files in the plugin's data directory). */
import type { PluginDatabase } from '../../../server/plugins/api.js';

export interface SigningKeyRow {
  readonly kid: string;
  readonly public_jwk: string;
  readonly created_at_ms: number;
  readonly retired_at_ms: number | null;
}

export class SigningKeyStore {
  constructor(private readonly db: PluginDatabase) {}

  /** Keys still verifying: the current one and those retired less than `keepMs` ago; newest first. */
  live(nowMs: number, keepMs: number): Promise<SigningKeyRow[]> {
    return this.db.all<SigningKeyRow>('SELECT * FROM auth_signing_keys WHERE retired_at_ms IS NULL OR retired_at_ms > ? ORDER BY created_at_ms DESC, kid', [nowMs - keepMs]);
  }

  /** Adds `kid` as the current key and retires the others, in one transaction. */
  async rotateTo(kid: string, publicJwk: string, nowMs: number): Promise<string | null> {
    return this.db.transaction(async (tx) => {
      const previous = await tx.get<{ kid: string }>('SELECT kid FROM auth_signing_keys WHERE retired_at_ms IS NULL ORDER BY created_at_ms DESC LIMIT 1');
      await tx.run('UPDATE auth_signing_keys SET retired_at_ms = ? WHERE retired_at_ms IS NULL', [nowMs]);
      await tx.run('INSERT INTO auth_signing_keys (kid, public_jwk, created_at_ms) VALUES (?, ?, ?)', [kid, publicJwk, nowMs]);
      return previous?.kid ?? null;
    });
  }

  /** The first key, added only if there is none (two processes starting at once make one). */
  async addFirst(kid: string, publicJwk: string, nowMs: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const any = await tx.get('SELECT kid FROM auth_signing_keys WHERE retired_at_ms IS NULL LIMIT 1');
      if (any) return false;
      await tx.run('INSERT INTO auth_signing_keys (kid, public_jwk, created_at_ms) VALUES (?, ?, ?)', [kid, publicJwk, nowMs]);
      return true;
    });
  }
}
