/**
 * The signing keys a process knows: the current one (signs) and those retired less than an access
 * token's lifetime (plus clock tolerance) ago (still verify). The list lives in the database so
 * every process sees a rotation made by another (`iqp auth rotate-key` beside a running server):
 * it is re-read every few seconds, and at once (at most once a second) for an unknown kid.
 */
import { type CryptoKey, importJWK, type JWK } from 'jose';
import type { PluginClock } from '../../../server/plugins/api.js';
import { SigningKeyStore } from '../store/keys.js';
import { KeyFiles } from './key-files.js';

const RELOAD_EVERY_MS = 5_000;
const UNKNOWN_KID_COOLDOWN_MS = 1_000;

interface Loaded {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly publicKey: CryptoKey;
  /** Past this it no longer verifies, even before the next reload drops it. */
  readonly verifiesUntilMs: number;
}

export class Keyring {
  private keys = new Map<string, Loaded>();
  private currentKid: string | null = null;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private unknownAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | null = null;
  private readonly privateKeys = new Map<string, Promise<CryptoKey>>();

  constructor(
    private readonly store: SigningKeyStore,
    private readonly files: KeyFiles,
    private readonly clock: PluginClock,
    /** How long a retired key keeps verifying. */
    private readonly keepMs: number,
  ) {}

  /** Makes the first key when there is none (server start). */
  async ensureKey(): Promise<void> {
    await this.reload();
    if (this.currentKid) return;
    const key = await this.files.create();
    if (!(await this.store.addFirst(key.kid, JSON.stringify(key.publicJwk), this.clock.nowMs()))) this.files.remove(key.kid);
    await this.reload();
  }

  async rotate(): Promise<{ kid: string; previousKid: string | null }> {
    const key = await this.files.create();
    const previousKid = await this.store.rotateTo(key.kid, JSON.stringify(key.publicJwk), this.clock.nowMs());
    await this.reload();
    this.files.removeAllBut(new Set(this.keys.keys()));
    return { kid: key.kid, previousKid };
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const now = this.clock.nowMs();
        const rows = await this.store.live(now, this.keepMs);
        const next = new Map<string, Loaded>();
        for (const row of rows) {
          const known = this.keys.get(row.kid);
          const publicJwk = JSON.parse(row.public_jwk) as JWK;
          const publicKey = known?.publicKey ?? ((await importJWK(publicJwk, 'EdDSA')) as CryptoKey);
          const verifiesUntilMs = row.retired_at_ms === null ? Number.POSITIVE_INFINITY : row.retired_at_ms + this.keepMs;
          next.set(row.kid, { kid: row.kid, publicJwk, publicKey, verifiesUntilMs });
        }
        this.keys = next;
        this.currentKid = rows.find((r) => r.retired_at_ms === null)?.kid ?? null;
        this.loadedAt = now;
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  private async fresh(): Promise<void> {
    if (this.clock.nowMs() - this.loadedAt >= RELOAD_EVERY_MS) await this.reload();
  }

  /** The key to sign with, and its kid. */
  async signing(): Promise<{ kid: string; key: CryptoKey }> {
    await this.fresh();
    const kid = this.currentKid;
    if (!kid) throw new Error('the auth plugin has no signing key (it is made when the server starts)');
    let key = this.privateKeys.get(kid);
    if (!key) {
      key = this.files.privateKey(kid);
      this.privateKeys.set(kid, key);
      key.catch(() => this.privateKeys.delete(kid));
    }
    return { kid, key: await key };
  }

  /** The public key for a kid, or null when no live key has it. */
  async verifying(kid: string): Promise<CryptoKey | null> {
    await this.fresh();
    let k = this.keys.get(kid);
    if (!k && this.clock.nowMs() - this.unknownAt >= UNKNOWN_KID_COOLDOWN_MS) {
      this.unknownAt = this.clock.nowMs();
      await this.reload();
      k = this.keys.get(kid);
    }
    return k && this.clock.nowMs() <= k.verifiesUntilMs ? k.publicKey : null;
  }

  /** Whether a kid still verifies (for tokens checked before and remembered). */
  async live(kid: string): Promise<boolean> {
    await this.fresh();
    const k = this.keys.get(kid);
    return !!k && this.clock.nowMs() <= k.verifiesUntilMs;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.fresh();
    return { keys: [...this.keys.values()].map((k) => k.publicJwk) };
  }
}
