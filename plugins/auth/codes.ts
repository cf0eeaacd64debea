/**
 * One-time codes for email verification and password reset. Each mail carries a 6-digit code
 * (10 minutes, typed into the app) and a link token (24 hours); both are stored as HMACs, work
 * once, and stop working after 5 wrong tries. Using one uses the other.
 */
import { randomInt } from 'node:crypto';
import type { PluginContext } from '../../server/plugins/api.js';
import type { AuthConfig } from './config.js';
import { hmac, randomId, sameDigest } from './crypto/secrets.js';
import type { CodePurpose, CodeRow, CodeStore } from './store/codes.js';

export const CODE_TTL_MS = 10 * 60_000;
export const LINK_TTL_MS = 24 * 3_600_000;
export const MAX_TRIES = 5;
const LINK = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const CODE = /^[0-9]{6}$/;

export interface Issued {
  readonly code: string;
  readonly link: string;
}

export class Codes {
  constructor(
    private readonly ctx: PluginContext<AuthConfig>,
    private readonly store: CodeStore,
    private readonly secret: Buffer,
  ) {}

  private digest(purpose: CodePurpose, owner: string, secret: string): string {
    return hmac(this.secret, `code:${purpose}:${owner}:${secret}`);
  }

  /** New code and link for a user, replacing earlier ones of the same purpose. */
  async issue(userId: string, purpose: CodePurpose): Promise<Issued> {
    const now = this.ctx.clock.nowMs();
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const linkId = randomId();
    const linkSecret = randomId(32);
    await this.ctx.db.transaction((tx) =>
      this.store.replace(
        [
          { id: randomId(), user_id: userId, purpose, kind: 'code', secret_hash: this.digest(purpose, userId, code), expires_at_ms: now + CODE_TTL_MS, created_at_ms: now },
          { id: linkId, user_id: userId, purpose, kind: 'link', secret_hash: this.digest(purpose, linkId, linkSecret), expires_at_ms: now + LINK_TTL_MS, created_at_ms: now },
        ],
        tx,
      ),
    );
    return { code, link: `${linkId}.${linkSecret}` };
  }

  /**
   * The user a typed code belongs to, used up; null when wrong, used, expired or tried too often.
   * Every try is counted before it is judged (a right one is used up anyway), so guesses sent
   * together get five chances between them, not five each.
   */
  async useCode(userId: string | null, purpose: CodePurpose, code: string): Promise<string | null> {
    if (!userId) return null;
    const now = this.ctx.clock.nowMs();
    const row = await this.store.live(userId, purpose, 'code', now, MAX_TRIES);
    if (!row || !(await this.store.countTry(row.id, now, MAX_TRIES))) return null;
    if (!CODE.test(code) || !sameDigest(row.secret_hash, this.digest(purpose, userId, code))) return null;
    return this.consume(row);
  }

  /** The user a link token belongs to, used up; null otherwise. Tries are counted as useCode counts them. */
  async useLink(purpose: CodePurpose, token: string): Promise<string | null> {
    const m = LINK.exec(token);
    if (!m) return null;
    const row = await this.store.byId(m[1]!);
    const now = this.ctx.clock.nowMs();
    if (!row || row.purpose !== purpose || row.kind !== 'link' || row.used_at_ms !== null || row.expires_at_ms <= now || row.attempts >= MAX_TRIES) return null;
    if (!(await this.store.countTry(row.id, now, MAX_TRIES))) return null;
    if (!sameDigest(row.secret_hash, this.digest(purpose, row.id, m[2]!))) return null;
    return this.consume(row);
  }

  private async consume(row: CodeRow): Promise<string | null> {
    return this.ctx.db.transaction(async (tx) => {
      if (!(await this.store.use(row.id, this.ctx.clock.nowMs(), tx))) return null;
      await this.store.consumeAll(row.user_id, row.purpose, tx);
      return row.user_id;
    });
  }

  /** The link as a mail shows it: the configured URL with the token, or the token alone. */
  linkText(token: string): string {
    return this.ctx.config.link_url ? this.ctx.config.link_url.replace('{token}', encodeURIComponent(token)) : token;
  }
}
