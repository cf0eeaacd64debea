/** Email verification, password reset and password change: the flows that go through a mailbox or end every session. */
import type { PluginDatabase } from '../../server/plugins/api.js';
import { emailKey, PENDING } from './accounts.js';
import { addressKey } from './client-address.js';
import type { Core, DeviceInput, TokenResponse } from './core.js';
import { passwordProblem } from './crypto/passwords.js';
import { sha256 } from './crypto/secrets.js';
import { codeMail, codeMailPurpose } from './mail/mailer.js';
import type { RevokeReason } from './store/sessions.js';
import type { UserRow } from './store/users.js';
import type { UserPrincipal } from './tokens/access.js';

export interface CodeInput {
  readonly email?: string | undefined;
  readonly code?: string | undefined;
  readonly token?: string | undefined;
}

export class Recovery {
  constructor(private readonly core: Core) {}

  private get ctx() {
    return this.core.ctx;
  }

  /** The user a code (with its email) or a link token belongs to, used up; else 400 IQP_E_CODE_INVALID. */
  /** Counts a try with a code or link against the address's limits (and the email's, when sent). */
  private async limitTry(input: CodeInput, ip: string): Promise<void> {
    const c = this.core;
    await c.limit(c.perIp(ip), ...(input.email ? [[c.limits.perEmailIp, emailKey(input.email, ip)] as [typeof c.limits.perIp, string]] : []));
  }

  private async use(purpose: 'verify' | 'reset', input: CodeInput, ip: string): Promise<string> {
    await this.limitTry(input, ip);
    return this.redeem(purpose, input);
  }

  /** The user whose code or link this is, which is used up; IQP_E_CODE_INVALID otherwise. */
  private async redeem(purpose: 'verify' | 'reset', input: CodeInput): Promise<string> {
    const c = this.core;
    let userId: string | null = null;
    if (input.token) userId = await c.codes.useLink(purpose, input.token);
    else if (input.email && input.code) userId = await c.codes.useCode((await c.users.byEmail(input.email))?.id ?? null, purpose, input.code);
    else throw this.ctx.error('IQP_E_INVALID_REQUEST', 'Send either email and code, or token.', { details: { field: 'body.code' } });
    if (!userId) throw this.ctx.error('IQP_E_CODE_INVALID', 'The code is wrong, used or expired; ask for a new one.');
    return userId;
  }

  async verifyEmail(input: CodeInput, ip: string): Promise<{ email_verified: true }> {
    const userId = await this.use('verify', input, ip);
    await this.core.users.markVerified(userId, this.ctx.clock.now());
    await this.ctx.audit({ action: 'email_verified', actor: `user:${userId}`, target: `user:${userId}`, details: { ip } });
    return { email_verified: true };
  }

  /** Mails a new code when the account exists, is unverified and under its mail limit; answers the same in every case. */
  async resendVerification(email: string, ip: string): Promise<typeof PENDING> {
    const c = this.core;
    await c.limit(c.perIp(ip), [c.limits.perEmailIp, emailKey(email, ip)]);
    const user = await c.users.byEmail(email);
    if (user && !user.email_verified) this.mailCode(user, 'verify');
    return PENDING;
  }

  async requestReset(email: string, ip: string): Promise<typeof PENDING> {
    const c = this.core;
    await c.limit(c.perIp(ip), [c.limits.perEmailIp, emailKey(email, ip)]);
    const user = await c.users.byEmail(email);
    if (user && !user.disabled) this.mailCode(user, 'reset');
    return PENDING;
  }

  /**
   * Mails the account a new code, under its mail_per_email limit, after the answer: issuing the
   * code commits, and an answer that waited for the commit would tell that the email has an
   * account. Before the answer, known and unknown emails run the same statements.
   */
  private mailCode(user: UserRow, purpose: 'verify' | 'reset'): void {
    const c = this.core;
    c.background.run('code mail failed', { purpose: codeMailPurpose(purpose) }, async () => {
      if (!(await c.limits.mailPerEmail.consume(sha256(user.email))).allowed) return;
      const { code, link } = await c.codes.issue(user.id, purpose);
      c.mailer.send(codeMail(user.email, purpose, code, c.codes.linkText(link)));
    });
  }

  /** Sets a new password from a reset code or link; every session of the account ends. */
  async confirmReset(input: CodeInput & { password: string }, ip: string): Promise<void> {
    // Counted first: a flood of guesses is refused before it costs a password hash.
    await this.limitTry(input, ip);
    // Judge and hash the password before using the code, so a weak one (or a busy server) does not waste it.
    const weak = passwordProblem(input.password, await this.resetEmail(input));
    if (weak) throw this.ctx.error('IQP_E_PASSWORD_WEAK', weak);
    const hash = await this.core.passwords.hash(input.password);
    if (!hash) throw this.core.busy();
    const userId = await this.redeem('reset', input);
    // Reading the mail proves the address as well as a verification code would.
    await this.setPassword(userId, hash, 'password_reset', ip, true);
  }

  /**
   * The address a reset's new password may not be: the account's whose link it is, or the email
   * sent with a code. The link's row is read, not used (redeem checks its secret and uses it
   * after): its id is 22 random characters that only the mail holds.
   */
  private async resetEmail(input: CodeInput): Promise<string | undefined> {
    if (!input.token) return input.email;
    const row = await this.core.codeStore.byId(input.token.split('.', 1)[0]!);
    if (!row || row.purpose !== 'reset' || row.kind !== 'link') return input.email;
    return (await this.core.users.byId(row.user_id))?.email ?? input.email;
  }

  async changePassword(p: UserPrincipal, body: { current_password: string; new_password: string } & DeviceInput, ip: string): Promise<TokenResponse> {
    const c = this.core;
    await c.limit(c.perIp(ip), [c.limits.perEmailIp, `user:${p.userId}|${addressKey(ip)}`]);
    const user = await c.users.byId(p.userId);
    if (!user || user.disabled) throw this.ctx.error('IQP_E_TOKEN_INVALID', 'The account is disabled or gone.');
    const weak = passwordProblem(body.new_password, user.email);
    if (weak) throw this.ctx.error('IQP_E_PASSWORD_WEAK', weak);
    const ok = await c.passwords.verify(user.password_hash, body.current_password);
    if (!ok) throw c.busy();
    if (!ok.ok) throw this.ctx.error('IQP_E_INVALID_CREDENTIALS', 'The current password is wrong.');
    const hash = await c.passwords.hash(body.new_password);
    if (!hash) throw c.busy();
    // The device that changed it stays signed in, on a new family: in the same transaction, so a
    // device id another account owns refuses the whole change.
    const device = { device_id: body.device_id ?? p.deviceId ?? undefined, device_name: body.device_name };
    const changed = { ...user, password_hash: hash };
    return c.tokensFor(changed, (await this.setPassword(user.id, hash, 'password_changed', ip, false, (tx) => c.startSession(changed, device, tx)))!);
  }

  /** Sets the hash and ends every session, then runs `andThen` in the same transaction. */
  private async setPassword<T>(userId: string, hash: string, reason: RevokeReason, ip: string, verified: boolean, andThen?: (tx: PluginDatabase) => Promise<T>): Promise<T | undefined> {
    const now = this.ctx.clock;
    const out = await this.ctx.db.transaction(async (tx) => {
      await this.core.users.setPasswordHash(userId, hash, now.now(), tx);
      if (verified) await this.core.users.markVerified(userId, now.now(), tx);
      const ended = await this.core.sessions.revokeUser(userId, reason, now.nowMs(), tx);
      return { ended, next: andThen ? await andThen(tx) : undefined };
    });
    await this.ctx.audit({ action: reason, actor: `user:${userId}`, target: `user:${userId}`, details: { ip, sessions_ended: out.ended } });
    return out.next;
  }
}
