/**
 * The signing keys a process knows: the current one (signs) and those retired less than an access
 * token's lifetime (plus clock tolerance) ago (still verify). The keys live in the database, the
 * private halves sealed under the server secret, so every process and every server sharing the
 * database and the secret signs with the same current key and sees a rotation made by another
 * (`iqp auth rotate-key`, or another server): the current kid is read before each signature, the
 * list is re-read every few seconds, and at once (at most once a second) for an unknown kid.
 */
import { type CryptoKey, importJWK, type JWK } from 'jose';
import type { PluginClock, PluginLogger } from '../../../server/plugins/api.js';
import type { KeySealer } from '../crypto/seal.js';
import type { SigningKeyStore } from '../store/keys.js';
import { newKeyPair } from './key-pair.js';

const RELOAD_EVERY_MS = 5_000;
const UNKNOWN_KID_COOLDOWN_MS = 1_000;

interface Loaded {
  readonly kid: string;
  readonly publicJwk: JWK;
  readonly publicKey: CryptoKey;
  readonly privateSealed: string | null;
  /** Past this it no longer verifies, even before the next reload drops it. */
  readonly verifiesUntilMs: number;
}

export class Keyring {
  private keys = new Map<string, Loaded>();
  private currentKid: string | null = null;
  private loadedAt = Number.NEGATIVE_INFINITY;
  private unknownAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | null = null;
  /** Private keys opened so far (only successes: a key imported later by another process is tried again). */
  private readonly privateKeys = new Map<string, CryptoKey>();
  private replacing: Promise<void> | null = null;

  constructor(
    private readonly store: SigningKeyStore,
    private readonly sealer: KeySealer,
    private readonly clock: PluginClock,
    /** How long a retired key keeps verifying. */
    private readonly keepMs: number,
    private readonly log: PluginLogger,
  ) {}

  /**
   * Server start: makes the first key when there is none, and replaces a current key this server
   * cannot open (the secret changed) now rather than at the first sign-in.
   */
  async ensureKey(): Promise<void> {
    await this.reload();
    if (!this.currentKid) {
      await this.store.addFirst(await newKeyPair(this.sealer), this.clock.nowMs());
      await this.reload();
    }
    const kid = this.currentKid;
    if (kid && !(await this.privateKey(kid))) await this.replaceUnusable(kid);
  }

  async rotate(): Promise<{ kid: string; previousKid: string | null }> {
    const key = await newKeyPair(this.sealer);
    const rotated = await this.store.rotateTo(key, this.clock.nowMs(), this.keepMs);
    await this.reload();
    return { kid: key.kid, previousKid: rotated?.previousKid ?? null };
  }

  /** The private half of a live key, or null when this server cannot open it (no private half, or sealed under another secret). */
  private async privateKey(kid: string): Promise<CryptoKey | null> {
    const known = this.privateKeys.get(kid);
    if (known) return known;
    const sealed = this.keys.get(kid)?.privateSealed;
    const jwk = sealed ? this.sealer.open(sealed, kid) : null;
    if (!jwk) return null;
    const key = (await importJWK(JSON.parse(jwk) as JWK, 'EdDSA')) as CryptoKey;
    this.privateKeys.set(kid, key);
    return key;
  }

  /**
   * Never signs with a key it cannot open: makes a new current key instead (only while `kid` is
   * still the current one, so servers finding the same key unusable make one between them).
   * Tokens signed by the old key keep verifying until they expire: its public half stays.
   */
  private replaceUnusable(kid: string): Promise<void> {
    this.replacing ??= (async () => {
      try {
        const key = await newKeyPair(this.sealer);
        if (await this.store.rotateTo(key, this.clock.nowMs(), this.keepMs, kid)) {
          this.log.warn(
            'the current signing key cannot be used by this server (its private half is missing, or was sealed under another secret); made a new current key. Tokens signed by the old one keep verifying until they expire. Servers sharing one database need the same auth secret.',
            { kid, new_kid: key.kid },
          );
        }
        await this.reload();
      } finally {
        this.replacing = null;
      }
    })();
    return this.replacing;
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
          next.set(row.kid, { kid: row.kid, publicJwk, publicKey, privateSealed: row.private_jwk_sealed, verifiesUntilMs });
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
    if ((await this.store.currentKid()) !== this.currentKid) await this.reload();
    // A few tries: a replacement another server made meanwhile may be one this server cannot open either.
    for (let attempt = 0; attempt < 3; attempt++) {
      const kid = this.currentKid;
      if (!kid) throw new Error('the auth plugin has no signing key (it is made when the server starts)');
      const key = await this.privateKey(kid);
      if (key) return { kid, key };
      await this.replaceUnusable(kid);
    }
    throw new Error('the auth plugin has no signing key it can open (another server with a different secret keeps replacing it)');
  }

  /** The public key for a kid, or null when no live key has it. */
  async verifying(kid: string): Promise<CryptoKey | null> {
    await this.fresh();
    let k = this.keys.get(kid);
    if (!k && this.loading !== null) {
      // A reload is under way (another request met this kid first): it may bring the key.
      await this.loading;
      k = this.keys.get(kid);
    }
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
