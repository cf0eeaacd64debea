/** What a signed-in user does with their own account: read it, delete it, manage its devices. */
import type { Core, UserView } from './core.js';
import { userView } from './core.js';
import { randomId } from './crypto/secrets.js';
import type { DeviceRow } from './store/devices.js';
import type { UserPrincipal } from './tokens/access.js';

export interface DeviceView {
  id: string;
  name: string | null;
  platform: string | null;
  created_at: string;
  last_seen_at: string;
  current: boolean;
}

function deviceView(d: DeviceRow, p: UserPrincipal): DeviceView {
  return { id: d.id, name: d.name, platform: d.platform, created_at: d.created_at, last_seen_at: d.last_seen_at, current: d.id === p.deviceId };
}

export class Profile {
  constructor(private readonly core: Core) {}

  private get ctx() {
    return this.core.ctx;
  }

  private async user(p: UserPrincipal) {
    const user = await this.core.users.byId(p.userId);
    if (!user || user.disabled) throw this.ctx.error('IQP_E_TOKEN_INVALID', 'The account is disabled or gone; sign in again.');
    return user;
  }

  async me(p: UserPrincipal): Promise<UserView> {
    return userView(await this.user(p));
  }

  /** Other plugins remove their data for the user (the `user.deleted` hook) before the account row goes; a failing one stops the deletion. */
  async deleteAccount(userId: string, actor: string): Promise<void> {
    // Closed first (userActive answers false, sign-ins and refreshes are refused): a token still in
    // date cannot add data behind the hooks that remove it. A refused deletion opens it again.
    const account = await this.core.users.byId(userId);
    const closing = account !== undefined && !account.disabled;
    if (closing) await this.core.users.setDisabled(userId, true, this.ctx.clock.now());
    try {
      await this.ctx.hooks.emit('user.deleted', { userId });
    } catch (err) {
      if (closing) await this.core.users.setDisabled(userId, false, this.ctx.clock.now());
      throw err;
    }
    await this.core.users.remove(userId);
    await this.ctx.audit({ action: 'user_deleted', actor, target: `user:${userId}` });
  }

  async deleteMe(p: UserPrincipal): Promise<void> {
    await this.user(p);
    await this.deleteAccount(p.userId, `user:${p.userId}`);
  }

  async addDevice(p: UserPrincipal, body: { device_id?: string; name?: string; platform?: string }): Promise<DeviceView> {
    await this.user(p);
    const id = body.device_id ?? randomId();
    if (!(await this.core.devices.claim({ id, userId: p.userId, name: body.name ?? null, platform: body.platform ?? null }, this.ctx.clock.now()))) throw this.core.foreignDevice();
    const device = (await this.core.devices.forUser(p.userId)).find((d) => d.id === id)!;
    return deviceView(device, p);
  }

  async devices(p: UserPrincipal): Promise<DeviceView[]> {
    await this.user(p);
    return (await this.core.devices.forUser(p.userId)).map((d) => deviceView(d, p));
  }

  /** Ends every session issued to the device, then forgets it; false when the user has no such device. */
  async removeDevice(p: UserPrincipal, id: string): Promise<boolean> {
    await this.user(p);
    const nowMs = this.ctx.clock.nowMs();
    const removed = await this.ctx.db.transaction(async (tx) => {
      if (!(await this.core.devices.remove(p.userId, id, tx))) return null;
      return this.core.sessions.revokeDevice(p.userId, id, 'device_removed', nowMs, tx);
    });
    if (removed === null) return false;
    await this.ctx.audit({ action: 'device_removed', actor: `user:${p.userId}`, target: `device:${id}`, details: { sessions_ended: removed } });
    return true;
  }
}
