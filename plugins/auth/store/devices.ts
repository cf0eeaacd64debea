/** Devices: ids chosen by the app (stable per install), each owned by one user for good. */
import type { PluginDatabase } from '../../../server/plugins/api.js';

export interface DeviceRow {
  readonly id: string;
  readonly user_id: string;
  readonly name: string | null;
  readonly platform: string | null;
  readonly created_at: string;
  readonly last_seen_at: string;
}

export class DeviceStore {
  constructor(private readonly db: PluginDatabase) {}

  /**
   * Registers the device for the user, or refreshes its name and last-seen time when it is
   * already theirs. Returns false when the id belongs to another user (nothing changed).
   */
  async claim(device: { id: string; userId: string; name?: string | null; platform?: string | null }, now: string, db = this.db): Promise<boolean> {
    // One statement: an INSERT that, on an existing id, only updates a row of the same user.
    const r = await db.run(
      `INSERT INTO auth_devices (id, user_id, name, platform, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at,
         name = COALESCE(excluded.name, auth_devices.name), platform = COALESCE(excluded.platform, auth_devices.platform)
       WHERE auth_devices.user_id = excluded.user_id`,
      [device.id, device.userId, device.name ?? null, device.platform ?? null, now, now],
    );
    return r.changes === 1;
  }

  forUser(userId: string): Promise<DeviceRow[]> {
    return this.db.all<DeviceRow>('SELECT * FROM auth_devices WHERE user_id = ? ORDER BY created_at, id', [userId]);
  }

  async remove(userId: string, id: string, db = this.db): Promise<boolean> {
    return (await db.run('DELETE FROM auth_devices WHERE id = ? AND user_id = ?', [id, userId])).changes === 1;
  }
}
