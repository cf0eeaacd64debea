/** One-time codes (typed by the user) and link tokens (clicked) for email verification and password reset. */
import type { PluginDatabase } from '../../../server/plugins/api.js';

export type CodePurpose = 'verify' | 'reset';
export type CodeKind = 'code' | 'link';

export interface CodeRow {
  readonly id: string;
  readonly user_id: string;
  readonly purpose: CodePurpose;
  readonly kind: CodeKind;
  readonly secret_hash: string;
  readonly expires_at_ms: number;
  readonly attempts: number;
  readonly used_at_ms: number | null;
  readonly created_at_ms: number;
}

export class CodeStore {
  constructor(private readonly db: PluginDatabase) {}

  /** A new code replaces the user's earlier ones for the same purpose: only the latest mail works. */
  async replace(row: Omit<CodeRow, 'attempts' | 'used_at_ms'>[], db = this.db): Promise<void> {
    const first = row[0];
    if (!first) return;
    await db.run('DELETE FROM auth_codes WHERE user_id = ? AND purpose = ?', [first.user_id, first.purpose]);
    for (const r of row) {
      await db.run('INSERT INTO auth_codes (id, user_id, purpose, kind, secret_hash, expires_at_ms, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        r.id,
        r.user_id,
        r.purpose,
        r.kind,
        r.secret_hash,
        r.expires_at_ms,
        r.created_at_ms,
      ]);
    }
  }

  live(userId: string, purpose: CodePurpose, kind: CodeKind, nowMs: number, maxAttempts: number, db = this.db): Promise<CodeRow | undefined> {
    return db.get<CodeRow>(
      `SELECT * FROM auth_codes WHERE user_id = ? AND purpose = ? AND kind = ? AND used_at_ms IS NULL AND expires_at_ms > ? AND attempts < ?
       ORDER BY created_at_ms DESC LIMIT 1`,
      [userId, purpose, kind, nowMs, maxAttempts],
    );
  }

  byId(id: string, db = this.db): Promise<CodeRow | undefined> {
    return db.get<CodeRow>('SELECT * FROM auth_codes WHERE id = ?', [id]);
  }

  /**
   * Counts a try before it is judged, in one statement: true when it was counted, false when the
   * row is used, expired or out of tries. Of guesses arriving together, only `maxAttempts` are
   * ever counted (and so judged), however they interleave.
   */
  async countTry(id: string, nowMs: number, maxAttempts: number, db = this.db): Promise<boolean> {
    const sql = 'UPDATE auth_codes SET attempts = attempts + 1 WHERE id = ? AND attempts < ? AND used_at_ms IS NULL AND expires_at_ms > ?';
    return (await db.run(sql, [id, maxAttempts, nowMs])).changes === 1;
  }

  /** Single use: true for the one caller that used it. */
  async use(id: string, nowMs: number, db = this.db): Promise<boolean> {
    return (await db.run('UPDATE auth_codes SET used_at_ms = ? WHERE id = ? AND used_at_ms IS NULL', [nowMs, id])).changes === 1;
  }

  /** Once one of a mail's code or link is used, the other goes too. */
  async consumeAll(userId: string, purpose: CodePurpose, db = this.db): Promise<void> {
    await db.run('DELETE FROM auth_codes WHERE user_id = ? AND purpose = ?', [userId, purpose]);
  }

  /** Codes past their lifetime. */
  async prune(nowMs: number): Promise<number> {
    return (await this.db.run('DELETE FROM auth_codes WHERE expires_at_ms <= ?', [nowMs])).changes;
  }
}
