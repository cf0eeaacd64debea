/**
 * Sessions (refresh-token families, RFC 9700 §4.14.2) and their refresh tokens. Every token row
 * keeps its parent and successor so a replay can be told apart from a race, and revoking a
 * session revokes every token in it at once.
 */
import type { PluginDatabase } from '../../../server/plugins/api.js';

export interface SessionRow {
  readonly id: string;
  readonly user_id: string;
  readonly device_id: string | null;
  readonly created_at_ms: number;
  readonly absolute_expires_at_ms: number;
  readonly revoked_at_ms: number | null;
  readonly revoked_reason: string | null;
}

export interface RefreshRow {
  readonly id: string;
  readonly session_id: string;
  readonly parent_id: string | null;
  readonly secret_hash: string;
  readonly created_at_ms: number;
  readonly idle_expires_at_ms: number;
  readonly used_at_ms: number | null;
  readonly successor_id: string | null;
}

export type RevokeReason = 'logout' | 'reuse' | 'device_removed' | 'password_changed' | 'password_reset' | 'disabled' | 'expired';

export class SessionStore {
  constructor(private readonly db: PluginDatabase) {}

  async createSession(s: Omit<SessionRow, 'revoked_at_ms' | 'revoked_reason'>, db = this.db): Promise<void> {
    await db.run('INSERT INTO auth_sessions (id, user_id, device_id, created_at_ms, absolute_expires_at_ms) VALUES (?, ?, ?, ?, ?)', [
      s.id,
      s.user_id,
      s.device_id,
      s.created_at_ms,
      s.absolute_expires_at_ms,
    ]);
  }

  session(id: string, db = this.db): Promise<SessionRow | undefined> {
    return db.get<SessionRow>('SELECT * FROM auth_sessions WHERE id = ?', [id]);
  }

  async insertToken(t: Omit<RefreshRow, 'used_at_ms' | 'successor_id'>, db = this.db): Promise<void> {
    await db.run('INSERT INTO auth_refresh_tokens (id, session_id, parent_id, secret_hash, created_at_ms, idle_expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)', [
      t.id,
      t.session_id,
      t.parent_id,
      t.secret_hash,
      t.created_at_ms,
      t.idle_expires_at_ms,
    ]);
  }

  token(id: string, db = this.db): Promise<RefreshRow | undefined> {
    return db.get<RefreshRow>('SELECT * FROM auth_refresh_tokens WHERE id = ?', [id]);
  }

  /**
   * The rotation itself: marks the token used and names its successor in one conditional UPDATE.
   * Of any number of concurrent refreshes with one token, exactly one gets true; none does once
   * the session has ended (a logout or a reuse revocation that landed after the token was read).
   */
  async markUsed(id: string, successorId: string, nowMs: number, db = this.db): Promise<boolean> {
    const r = await db.run(
      'UPDATE auth_refresh_tokens SET used_at_ms = ?, successor_id = ? WHERE id = ? AND used_at_ms IS NULL AND EXISTS (SELECT 1 FROM auth_sessions s WHERE s.id = auth_refresh_tokens.session_id AND s.revoked_at_ms IS NULL)',
      [nowMs, successorId, id],
    );
    return r.changes === 1;
  }

  /** Binds a session signed in without a device to `deviceId`; false when it is bound to another one. */
  async bindDevice(id: string, deviceId: string, db = this.db): Promise<boolean> {
    return (await db.run('UPDATE auth_sessions SET device_id = ? WHERE id = ? AND (device_id IS NULL OR device_id = ?)', [deviceId, id, deviceId])).changes === 1;
  }

  /** Revokes one session; false if it was revoked already. */
  async revoke(id: string, reason: RevokeReason, nowMs: number, db = this.db): Promise<boolean> {
    const r = await db.run('UPDATE auth_sessions SET revoked_at_ms = ?, revoked_reason = ? WHERE id = ? AND revoked_at_ms IS NULL', [nowMs, reason, id]);
    return r.changes === 1;
  }

  async revokeUser(userId: string, reason: RevokeReason, nowMs: number, db = this.db): Promise<number> {
    const r = await db.run('UPDATE auth_sessions SET revoked_at_ms = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at_ms IS NULL', [nowMs, reason, userId]);
    return r.changes;
  }

  async revokeDevice(userId: string, deviceId: string, reason: RevokeReason, nowMs: number, db = this.db): Promise<number> {
    const r = await db.run('UPDATE auth_sessions SET revoked_at_ms = ?, revoked_reason = ? WHERE user_id = ? AND device_id = ? AND revoked_at_ms IS NULL', [
      nowMs,
      reason,
      userId,
      deviceId,
    ]);
    return r.changes;
  }

  /**
   * Deletes sessions (and, by cascade, their tokens) nobody can use any more: past their absolute
   * lifetime, or revoked more than `keepRevokedMs` ago (kept a while for the audit trail).
   */
  async prune(nowMs: number, keepRevokedMs: number): Promise<number> {
    const r = await this.db.run('DELETE FROM auth_sessions WHERE absolute_expires_at_ms <= ? OR (revoked_at_ms IS NOT NULL AND revoked_at_ms < ?)', [nowMs, nowMs - keepRevokedMs]);
    return r.changes;
  }
}
