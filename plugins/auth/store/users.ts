/** Accounts: one row per user, email lowercased and unique. */
import type { PluginDatabase, UserRole } from '../../../server/plugins/api.js';

export interface UserRow {
  readonly id: string;
  readonly email: string;
  readonly password_hash: string | null;
  readonly email_verified: number;
  readonly role: UserRole;
  readonly disabled: number;
  readonly created_at: string;
  readonly updated_at: string;
}

/** Emails compare case-insensitively everywhere (sign-in, uniqueness, rate-limit keys). */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class UserStore {
  constructor(private readonly db: PluginDatabase) {}

  byId(id: string, db = this.db): Promise<UserRow | undefined> {
    return db.get<UserRow>('SELECT * FROM auth_users WHERE id = ?', [id]);
  }

  byEmail(email: string, db = this.db): Promise<UserRow | undefined> {
    return db.get<UserRow>('SELECT * FROM auth_users WHERE email = ?', [normalizeEmail(email)]);
  }

  /** By id or email, as the CLI takes it. */
  async find(user: string): Promise<UserRow | undefined> {
    return (await this.byId(user)) ?? (await this.byEmail(user));
  }

  list(): Promise<UserRow[]> {
    return this.db.all<UserRow>('SELECT * FROM auth_users ORDER BY created_at, email');
  }

  /** false when the email is taken (ON CONFLICT keeps the existing row). */
  async insert(row: Omit<UserRow, 'updated_at'>, db = this.db): Promise<boolean> {
    const r = await db.run(
      `INSERT INTO auth_users (id, email, password_hash, email_verified, role, disabled, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING`,
      [row.id, normalizeEmail(row.email), row.password_hash, row.email_verified, row.role, row.disabled, row.created_at, row.created_at],
    );
    return r.changes === 1;
  }

  async setPasswordHash(id: string, hash: string, now: string, db = this.db): Promise<void> {
    await db.run('UPDATE auth_users SET password_hash = ?, updated_at = ? WHERE id = ?', [hash, now, id]);
  }

  /** Only replaces the hash it read: a password changed meanwhile is never overwritten by a rehash. */
  async rehash(id: string, oldHash: string, newHash: string, now: string): Promise<void> {
    await this.db.run('UPDATE auth_users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?', [newHash, now, id, oldHash]);
  }

  async markVerified(id: string, now: string, db = this.db): Promise<void> {
    await db.run('UPDATE auth_users SET email_verified = 1, updated_at = ? WHERE id = ?', [now, id]);
  }

  async setRole(id: string, role: UserRole, now: string): Promise<void> {
    await this.db.run('UPDATE auth_users SET role = ?, updated_at = ? WHERE id = ?', [role, now, id]);
  }

  async setDisabled(id: string, disabled: boolean, now: string, db = this.db): Promise<void> {
    await db.run('UPDATE auth_users SET disabled = ?, updated_at = ? WHERE id = ?', [disabled ? 1 : 0, now, id]);
  }

  async remove(id: string, db = this.db): Promise<void> {
    await db.run('DELETE FROM auth_users WHERE id = ?', [id]);
  }
}
