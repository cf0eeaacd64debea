/**
 * Sign-in with a Google ID token. The token is checked against the JWKS URL from config (Google's
 * by default): RS256 only, `iss` Google's, `aud` one of the configured client ids, `exp` with the
 * usual tolerance, `nonce` when the app sent one, `hd` when configured. jose's remote key set
 * refetches once for an unknown kid, no more often than its cooldown.
 */
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { DeviceInput, TokenResponse, UserView } from './core.js';
import { type Core, userView } from './core.js';
import { randomId } from './crypto/secrets.js';
import type { UserRow } from './store/users.js';
import { CLOCK_TOLERANCE_S } from './tokens/access.js';

const ISSUERS = ['accounts.google.com', 'https://accounts.google.com'];

export class GoogleSignIn {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly core: Core) {
    const g = core.ctx.config.google;
    this.jwks = createRemoteJWKSet(new URL(g.jwks_url), { cooldownDuration: g.jwks_cooldown_s * 1000, cacheMaxAge: 600_000, timeoutDuration: 5_000 });
  }

  private get ctx() {
    return this.core.ctx;
  }

  private refuse(why: string): Error {
    return this.ctx.error('IQP_E_GOOGLE_TOKEN_INVALID', `The Google ID token ${why}.`);
  }

  private async claims(idToken: string, nonce: string | undefined): Promise<JWTPayload> {
    const g = this.ctx.config.google;
    if (g.client_ids.length === 0) throw this.refuse('cannot be accepted: this registry has no Google client ids configured');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, this.jwks, {
        algorithms: ['RS256'],
        issuer: ISSUERS,
        audience: [...g.client_ids],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(this.ctx.clock.nowMs()),
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      // The key set could not be fetched: not the app's fault, and worth a log line.
      if (code === 'ERR_JWKS_TIMEOUT' || (err instanceof Error && !code)) this.ctx.log.warn('Google key set unavailable', { error: (err as Error).message });
      throw this.refuse(code === 'ERR_JWT_EXPIRED' ? 'has expired' : 'does not verify');
    }
    if (nonce !== undefined && payload['nonce'] !== nonce) throw this.refuse('was issued for another nonce');
    if (g.hd && payload['hd'] !== g.hd) throw this.refuse(`is not from the ${g.hd} domain`);
    return payload;
  }

  async signIn(body: { id_token: string; nonce?: string } & DeviceInput, ip: string): Promise<TokenResponse & { user: UserView }> {
    const c = this.core;
    await c.limit(c.perIp(ip));
    const claims = await this.claims(body.id_token, body.nonce);
    const user = await this.account(claims, ip);
    if (user.disabled) throw this.ctx.error('IQP_E_FORBIDDEN', 'This account is disabled.');
    return { ...(await c.signIn(user, body)), user: userView(user) };
  }

  /** The account for a Google identity: linked before, linked now to a verified local account, or new. */
  private async account(claims: JWTPayload, ip: string): Promise<UserRow> {
    const c = this.core;
    const sub = claims.sub!;
    const linked = await c.identities.find('google', sub);
    if (linked) {
      const user = await c.users.byId(linked.user_id);
      if (user) return user;
    }
    const email = typeof claims['email'] === 'string' ? claims['email'] : null;
    if (!email || claims['email_verified'] !== true) throw this.refuse('has no verified email address');
    const now = this.ctx.clock.now();
    const existing = await c.users.byEmail(email);
    if (existing && !existing.email_verified) {
      // Whoever registered that address never proved it: linking would hand them a Google user's account.
      throw this.ctx.error('IQP_E_ACCOUNT_CONFLICT', 'An account with this email exists but is not verified; verify it or sign in with its password.');
    }
    const user = existing ?? { id: randomId(), email, password_hash: null, email_verified: 1, role: 'user' as const, disabled: 0, created_at: now, updated_at: now };
    await this.ctx.db.transaction(async (tx) => {
      if (!existing && !(await c.users.insert(user, tx))) throw this.ctx.error('IQP_E_ACCOUNT_CONFLICT', 'An account with this email was created meanwhile; try again.');
      await c.identities.link({ provider: 'google', subject: sub, user_id: user.id, email, created_at: now }, tx);
    });
    await this.ctx.audit({ action: existing ? 'google_linked' : 'user_registered', actor: `user:${user.id}`, target: `user:${user.id}`, details: { ip, provider: 'google' } });
    return (await c.users.byId(user.id))!;
  }
}
