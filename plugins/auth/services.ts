/** The services the plugin offers: auth.v1 (the guard and other plugins) and auth-admin.v1 (the CLI). */
import type { AuthAdminServiceV1, AuthServiceV1, AuthUserSummary } from '../../server/plugins/api.js';
import type { Core } from './core.js';
import { passwordProblem } from './crypto/passwords.js';
import { randomId } from './crypto/secrets.js';
import type { Profile } from './profile.js';
import type { UserRow } from './store/users.js';

export function authService(core: () => Core): AuthServiceV1 {
  return {
    async verifyAccessToken(token) {
      const r = await core().access.check(token);
      return r.ok ? r.principal : null;
    },
    async explainRejection(token) {
      const r = await core().access.check(token);
      return r.ok ? 'invalid' : r.reason;
    },
    async userActive(userId, tx) {
      const u = await core().users.byId(userId, tx);
      return !!u && !u.disabled;
    },
    may(principal, capability) {
      return principal.emailVerified || core().ctx.config.unverified_may.includes(capability);
    },
  };
}

function summary(u: UserRow): AuthUserSummary {
  return { id: u.id, email: u.email, role: u.role, emailVerified: u.email_verified === 1, disabled: u.disabled === 1, createdAt: u.created_at };
}

export function adminService(core: () => Core, profile: () => Profile): AuthAdminServiceV1 {
  const find = async (user: string): Promise<UserRow> => {
    const u = await core().users.find(user);
    if (!u) throw core().ctx.error('IQP_E_USER_NOT_FOUND', `No user ${user}.`);
    return u;
  };
  return {
    async listUsers() {
      return (await core().users.list()).map(summary);
    },
    async createUser(input, actor) {
      const c = core();
      const weak = passwordProblem(input.password, input.email);
      if (weak) throw c.ctx.error('IQP_E_PASSWORD_WEAK', weak);
      const hash = await c.passwords.hash(input.password);
      if (!hash) throw c.busy();
      const id = randomId();
      const ok = await c.users.insert({ id, email: input.email, password_hash: hash, email_verified: input.emailVerified === false ? 0 : 1, role: input.role ?? 'user', disabled: 0, created_at: c.ctx.clock.now() });
      if (!ok) throw c.ctx.error('IQP_E_INVALID_REQUEST', `${input.email} already has an account.`, { details: { field: 'email' } });
      await c.ctx.audit({ action: 'user_created', actor, target: `user:${id}`, details: { role: input.role ?? 'user' } });
      return summary((await c.users.byId(id))!);
    },
    async setRole(user, role, actor) {
      const c = core();
      const u = await find(user);
      await c.users.setRole(u.id, role, c.ctx.clock.now());
      await c.ctx.audit({ action: 'role_changed', actor, target: `user:${u.id}`, details: { from: u.role, to: role } });
      return summary((await c.users.byId(u.id))!);
    },
    async setDisabled(user, disabled, actor) {
      const c = core();
      const u = await find(user);
      await c.ctx.db.transaction(async (tx) => {
        await c.users.setDisabled(u.id, disabled, c.ctx.clock.now(), tx);
        if (disabled) await c.sessions.revokeUser(u.id, 'disabled', c.ctx.clock.nowMs(), tx);
      });
      await c.ctx.audit({ action: disabled ? 'user_disabled' : 'user_enabled', actor, target: `user:${u.id}` });
      return summary((await c.users.byId(u.id))!);
    },
    async deleteUser(user, actor) {
      await profile().deleteAccount((await find(user)).id, actor);
    },
    async rotateKey(actor) {
      const c = core();
      const r = await c.keyring.rotate();
      await c.ctx.audit({ action: 'signing_key_rotated', actor, target: `key:${r.kid}`, details: { previous: r.previousKid } });
      return r;
    },
    async readOutbox() {
      await core().background.flush();
      return core().outbox.read();
    },
  };
}
