/** External identities (Google's `sub`) linked to accounts. */
import type { PluginDatabase } from '../../../server/plugins/api.js';

export interface IdentityRow {
  readonly provider: string;
  readonly subject: string;
  readonly user_id: string;
  readonly email: string | null;
  readonly created_at: string;
}

export class IdentityStore {
  constructor(private readonly db: PluginDatabase) {}

  find(provider: string, subject: string, db = this.db): Promise<IdentityRow | undefined> {
    return db.get<IdentityRow>('SELECT * FROM auth_identities WHERE provider = ? AND subject = ?', [provider, subject]);
  }

  async link(row: IdentityRow, db = this.db): Promise<void> {
    await db.run('INSERT INTO auth_identities (provider, subject, user_id, email, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider, subject) DO NOTHING', [
      row.provider,
      row.subject,
      row.user_id,
      row.email,
      row.created_at,
    ]);
  }
}
