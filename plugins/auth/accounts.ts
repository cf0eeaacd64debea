/**
 * Sign-up, sign-in, refresh and sign-out. Every answer that could tell whether an email has an
 * account is the same either way: the same status, body and headers, after the same work.
 */
import { addressKey } from './client-address.js';
import type { DeviceInput, TokenResponse } from './core.js';
import { type Core, userView, type UserView } from './core.js';
import { passwordProblem } from './crypto/passwords.js';
import { randomId, sha256 } from './crypto/secrets.js';
import { codeMail } from './mail/mailer.js';
import type { PluginDatabase } from '../../server/plugins/api.js';
import type { SessionRow } from './store/sessions.js';
import { normalizeEmail, type UserRow } from './store/users.js';

export const PENDING = { status: 'verification_sent' } as const;

/** Rate-limit keys name an email by its hash (the limiter's table holds no mail addresses), and the client as addressKey counts it. */
export function emailKey(email: string, ip: string): string {
  return `${sha256(normalizeEmail(email))}|${addressKey(ip)}`;
}

export class Accounts {
  constructor(private readonly core: Core) {}

  private get ctx() {
    return this.core.ctx;
  }

  async register(body: { email: string; password: string }, ip: string): Promise<typeof PENDING> {
    const c = this.core;
    await c.limit(c.perIp(ip), [c.limits.perEmailIp, emailKey(body.email, ip)]);
    const weak = passwordProblem(body.password, body.email);
    if (weak) throw this.ctx.error('IQP_E_PASSWORD_WEAK', weak);
    // Hash first, whether or not the email is taken: both answers take the same time.
    const hash = await c.passwords.hash(body.password);
    if (!hash) throw c.busy();
    const email = normalizeEmail(body.email);
    const user: Omit<UserRow, 'updated_at'> = { id: randomId(), email, password_hash: hash, email_verified: 0, role: 'user', disabled: 0, created_at: this.ctx.clock.now() };
    if (await c.users.insert(user)) {
      await this.ctx.audit({ action: 'user_registered', actor: `user:${user.id}`, target: `user:${user.id}`, details: { ip } });
      await this.sendVerification(user.id, email);
    } else if ((await c.limits.mailPerEmail.consume(sha256(email))).allowed) {
      c.mailer.send({
        to: email,
        purpose: 'register_attempt',
        subject: 'Someone tried to create an account with your address',
        text: 'Someone tried to create a new account with this email address, which already has one.\nIf it was you, sign in instead, or reset your password.\nIf it was not you, you can ignore this mail.\n',
      });
    }
    return PENDING;
  }

  async sendVerification(userId: string, email: string): Promise<void> {
    const { code, link } = await this.core.codes.issue(userId, 'verify');
    this.core.mailer.send(codeMail(email, 'verify', code, this.core.codes.linkText(link)));
  }

  async login(body: { email: string; password: string } & DeviceInput, ip: string): Promise<TokenResponse & { user: UserView }> {
    const c = this.core;
    await c.limit(c.perIp(ip), [c.limits.perEmailIp, emailKey(body.email, ip)]);
    const user = await c.users.byEmail(body.email);
    // An unknown account is checked against a dummy hash: the same work, the same answer.
    const verified = await c.passwords.verify(user?.password_hash ?? null, body.password);
    if (!verified) throw c.busy();
    if (!user || !verified.ok) {
      await this.ctx.audit({ action: 'login_failed', actor: 'anonymous', target: user ? `user:${user.id}` : 'unknown', details: { ip } });
      throw this.ctx.error('IQP_E_INVALID_CREDENTIALS', 'Wrong email or password.');
    }
    if (verified.rehash) await c.users.rehash(user.id, user.password_hash!, verified.rehash, this.ctx.clock.now());
    if (user.disabled) throw this.ctx.error('IQP_E_FORBIDDEN', 'This account is disabled.');
    if (!c.maySignIn(user)) throw this.ctx.error('IQP_E_EMAIL_UNVERIFIED', 'Verify your email address before signing in.');
    return { ...(await c.signIn(user, body)), user: userView(user) };
  }

  async refresh(body: { refresh_token: string } & DeviceInput, ip: string): Promise<TokenResponse> {
    const c = this.core;
    await c.limit(c.perIp(ip));
    let user: UserRow | undefined;
    const otherDevice = () => this.ctx.error('IQP_E_TOKEN_INVALID', 'This refresh token was issued to another device; sign in again.');
    const admit = async (s: SessionRow, replay: boolean): Promise<SessionRow> => {
      if (body.device_id && s.device_id && body.device_id !== s.device_id) throw otherDevice();
      // A replay binds nothing: naming a device its session is not bound to would put in the access
      // token a device never claimed, perhaps another account's.
      if (replay && body.device_id && !s.device_id) throw this.ctx.error('IQP_E_TOKEN_INVALID', 'This refresh token was just used without a device; sign in again.');
      user = await c.users.byId(s.user_id);
      if (!user || user.disabled || !c.maySignIn(user)) {
        await c.sessions.revoke(s.id, 'disabled', this.ctx.clock.nowMs());
        throw this.ctx.error('IQP_E_TOKEN_INVALID', 'The account is disabled or gone; its session has ended.');
      }
      return replay ? s : { ...s, device_id: s.device_id ?? body.device_id ?? null };
    };
    // The device is seen now; a session signed in without one is bound to the device its first
    // refresh names. A foreign device (or a parallel refresh binding another) rolls the rotation back.
    const record = async (tx: PluginDatabase, s: SessionRow): Promise<void> => {
      if (!s.device_id) return;
      if (!(await c.devices.claim({ id: s.device_id, userId: s.user_id, name: body.device_name ?? null }, this.ctx.clock.now(), tx))) throw c.foreignDevice();
      if (!(await c.sessions.bindDevice(s.id, s.device_id, tx))) throw otherDevice();
    };
    const { session, refreshToken } = await c.refresh.rotate(body.refresh_token, ip, admit, record);
    // Roles and verification come from the account as it is now: a role change takes effect here.
    return c.tokens(user!, session.id, session.device_id, refreshToken);
  }

  /** Ends the refresh token's family. Unknown or used tokens answer the same (RFC 7009 §2.2). */
  async logout(refreshToken: string, ip: string): Promise<void> {
    const c = this.core;
    await c.limit(c.perIp(ip));
    const session = await c.refresh.sessionOf(refreshToken);
    if (session && (await c.sessions.revoke(session.id, 'logout', this.ctx.clock.nowMs()))) {
      await this.ctx.audit({ action: 'logout', actor: `user:${session.user_id}`, target: `session:${session.id}`, details: { ip } });
    }
  }
}
