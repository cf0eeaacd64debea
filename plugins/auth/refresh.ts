/**
 * Refresh tokens (`<id>.<secret>`, only a hash of the secret stored) in families, one family per
 * sign-in. Every use rotates the token with one conditional UPDATE. A successor's secret is an
 * HMAC of the server secret and the presented token, so the immediate parent replayed within the
 * grace period (a lost response, two requests racing from one device) is answered with the very
 * same successor, which is never stored in a form that could be read back. Any other reuse
 * revokes the whole family: RFC 9700 §4.14.2.
 */
import type { PluginContext, PluginDatabase } from '../../server/plugins/api.js';
import { type AuthConfig, DAY_MS } from './config.js';
import { hmac, randomId, sameDigest, sha256 } from './crypto/secrets.js';
import type { RefreshRow, SessionRow, SessionStore } from './store/sessions.js';

const TOKEN = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export interface Rotated {
  readonly refreshToken: string;
  readonly session: SessionRow;
}

export class RefreshTokens {
  constructor(
    private readonly ctx: PluginContext<AuthConfig>,
    private readonly sessions: SessionStore,
    private readonly secret: Buffer,
  ) {}

  private idleMs(): number {
    return this.ctx.config.refresh_idle_days * DAY_MS;
  }

  /** A new family and its first token, for a sign-in; runs inside the caller's transaction when given one. */
  async start(userId: string, deviceId: string | null, db = this.ctx.db): Promise<Rotated> {
    const now = this.ctx.clock.nowMs();
    const session: SessionRow = {
      id: randomId(),
      user_id: userId,
      device_id: deviceId,
      created_at_ms: now,
      absolute_expires_at_ms: now + this.ctx.config.refresh_absolute_days * DAY_MS,
      revoked_at_ms: null,
      revoked_reason: null,
    };
    await this.sessions.createSession(session, db);
    const id = randomId();
    const secret = randomId(32);
    await this.sessions.insertToken({ id, session_id: session.id, parent_id: null, secret_hash: sha256(secret), created_at_ms: now, idle_expires_at_ms: this.idleEnd(now, session) }, db);
    return { refreshToken: `${id}.${secret}`, session };
  }

  private idleEnd(now: number, session: SessionRow): number {
    return Math.min(now + this.idleMs(), session.absolute_expires_at_ms);
  }

  private successorSecret(presented: string): string {
    return hmac(this.secret, `refresh-successor:${presented}`);
  }

  /** The session a token (used or not) belongs to, when its secret is right. */
  async sessionOf(presented: string): Promise<SessionRow | null> {
    const m = TOKEN.exec(presented);
    const row = m ? await this.sessions.token(m[1]!) : undefined;
    if (!row || !sameDigest(row.secret_hash, sha256(m![2]!))) return null;
    return (await this.sessions.session(row.session_id)) ?? null;
  }

  /**
   * Rotates a presented refresh token; throws IQP_E_TOKEN_INVALID or IQP_E_REFRESH_REUSED.
   * `admit` judges the session (its device, its user) before anything is used up, reading only,
   * and may return it changed (bound to a device); `record` writes what goes with the rotation
   * (the device seen) in the rotation's own transaction, so a refresh commits once. A replay
   * within the grace period writes nothing, so `admit` is asked again, with `replay` true, on the
   * session as stored (as the first use left it): it must then take that session as it is.
   */
  async rotate(
    presented: string,
    ip: string,
    admit: (session: SessionRow, replay: boolean) => Promise<SessionRow>,
    record: (tx: PluginDatabase, session: SessionRow) => Promise<void>,
  ): Promise<Rotated> {
    const invalid = (why: string) => this.ctx.error('IQP_E_TOKEN_INVALID', `The refresh token ${why}; sign in again.`);
    const m = TOKEN.exec(presented);
    if (!m) throw invalid('is malformed');
    const [, id, secret] = m as unknown as [string, string, string];
    let row = await this.sessions.token(id);
    // A wrong secret for a real id is refused without touching the family: guessing ids must not log anyone out.
    if (!row || !sameDigest(row.secret_hash, sha256(secret))) throw invalid('is not known');
    const found = await this.sessions.session(row.session_id);
    const now = this.ctx.clock.nowMs();
    if (!found || found.revoked_at_ms !== null) throw invalid('belongs to a session that was ended');
    if (now >= found.absolute_expires_at_ms) throw invalid('belongs to a session that reached its longest lifetime');
    // A token used before, other than the lost-answer replay the grace period allows, ends its
    // family whoever presents it: asked first, so a thief naming another device is no exception.
    if (row.used_at_ms !== null && !(await this.graceSuccessor(row, now))) return this.reused(row, found, now, ip);
    const session = await admit(found, false);

    if (row.used_at_ms === null) {
      if (now >= row.idle_expires_at_ms) throw invalid('expired unused');
      const successorId = randomId();
      const won = await this.ctx.db.transaction(async (tx) => {
        if (!(await this.sessions.markUsed(id, successorId, now, tx))) return false;
        await record(tx, session);
        await this.sessions.insertToken(
          { id: successorId, session_id: session.id, parent_id: id, secret_hash: sha256(this.successorSecret(presented)), created_at_ms: now, idle_expires_at_ms: this.idleEnd(now, session) },
          tx,
        );
        return true;
      });
      if (won) return { refreshToken: `${successorId}.${this.successorSecret(presented)}`, session };
      row = (await this.sessions.token(id))!;
      // Still unused: the session ended between the checks above and the rotation (a racing logout).
      if (row.used_at_ms === null) throw invalid('belongs to a session that was ended');
      // Otherwise another request rotated it first: a race, judged below.
    }
    return this.replayed(row, presented, session, now, ip, admit);
  }

  /** The token was used before: the same successor within the grace period, else the family goes. */
  private async replayed(
    row: RefreshRow,
    presented: string,
    session: SessionRow,
    now: number,
    ip: string,
    admit: (session: SessionRow, replay: boolean) => Promise<SessionRow>,
  ): Promise<Rotated> {
    const successor = await this.graceSuccessor(row, now);
    if (successor) {
      const secret = this.successorSecret(presented);
      // A successor made under another secret (another server's, or before the secret changed): this
      // server cannot give it back, and a token that would not work is no answer. Nothing was
      // reused, so the session stays; whoever got the successor keeps it.
      if (!sameDigest(successor.secret_hash, sha256(secret))) {
        throw this.ctx.error('IQP_E_TOKEN_INVALID', 'The refresh token was just used on a server with another secret; sign in again.');
      }
      // The session as the first use left it (bound to a device, or not): never as this request
      // would have bound it, for nothing claims or binds that device now.
      const stored = await this.sessions.session(session.id);
      if (!stored || stored.revoked_at_ms !== null) throw this.ctx.error('IQP_E_TOKEN_INVALID', 'The refresh token belongs to a session that was ended; sign in again.');
      return { refreshToken: `${successor.id}.${secret}`, session: await admit(stored, true) };
    }
    return this.reused(row, session, now, ip);
  }

  /** The successor a replay of `row` gets back: `row` was used within the grace period and its successor not yet. */
  private async graceSuccessor(row: RefreshRow, now: number): Promise<RefreshRow | undefined> {
    if (row.used_at_ms === null || now - row.used_at_ms > this.ctx.config.refresh_grace_s * 1000 || !row.successor_id) return undefined;
    const successor = await this.sessions.token(row.successor_id);
    return successor && successor.used_at_ms === null ? successor : undefined;
  }

  /** A used token came back outside the grace period: the family ends (audited once), and the caller is told why. */
  private async reused(row: RefreshRow, session: SessionRow, now: number, ip: string): Promise<never> {
    if (await this.sessions.revoke(session.id, 'reuse', now)) {
      await this.ctx.audit({
        action: 'refresh_reuse_detected',
        actor: `user:${session.user_id}`,
        target: `session:${session.id}`,
        details: { token: row.id, device: session.device_id, ip, used_ms_ago: now - (row.used_at_ms ?? now) },
      });
    }
    throw this.ctx.error('IQP_E_REFRESH_REUSED', 'This refresh token was already used, so its session has been ended; sign in again.');
  }
}
