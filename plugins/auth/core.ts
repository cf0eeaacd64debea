/**
 * What every part of the plugin shares, built once at start: the stores, the password hasher,
 * keys and tokens, mail, rate limits; and the steps several routes take (sign a user in on a
 * device, answer with tokens, refuse when a limit is reached).
 */
import { addressKey } from './client-address.js';
import type { PluginContext, PluginDatabase, RateLimit, UserRole } from '../../server/plugins/api.js';
import { Background } from './background.js';
import { Codes } from './codes.js';
import type { AuthConfig } from './config.js';
import { Passwords } from './crypto/passwords.js';
import { KeySealer } from './crypto/seal.js';
import { authSecret } from './crypto/secrets.js';
import { Mailer, type OutboxReader, type Transport } from './mail/mailer.js';
import { OutboxTransport } from './mail/outbox.js';
import { SmtpTransport } from './mail/smtp.js';
import { RefreshTokens } from './refresh.js';
import { CodeStore } from './store/codes.js';
import { DeviceStore } from './store/devices.js';
import { IdentityStore } from './store/identities.js';
import { SigningKeyStore } from './store/keys.js';
import { SessionStore } from './store/sessions.js';
import { Sweeper } from './sweep.js';
import { type UserRow, UserStore } from './store/users.js';
import { AccessTokens, CLOCK_TOLERANCE_S } from './tokens/access.js';
import { importKeyFiles } from './tokens/key-files.js';
import { Keyring } from './tokens/keyring.js';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

export interface UserView {
  id: string;
  email: string;
  email_verified: boolean;
  role: UserRole;
  created_at: string;
}

export interface DeviceInput {
  readonly device_id?: string | undefined;
  readonly device_name?: string | undefined;
}

export function userView(u: UserRow): UserView {
  return { id: u.id, email: u.email, email_verified: u.email_verified === 1, role: u.role, created_at: u.created_at };
}

export class Core {
  readonly users: UserStore;
  readonly devices: DeviceStore;
  readonly sessions: SessionStore;
  readonly identities: IdentityStore;
  readonly passwords: Passwords;
  readonly keyring: Keyring;
  readonly access: AccessTokens;
  readonly refresh: RefreshTokens;
  readonly codes: Codes;
  /** The codes' rows, for reading a link's account without using the link (Codes uses them up). */
  readonly codeStore: CodeStore;
  readonly sweeper: Sweeper;
  /** What requests leave to run after their answer (mails, and the codes they carry). */
  readonly background: Background;
  readonly mailer: Mailer;
  readonly outbox: OutboxReader;
  private readonly transport: Transport;
  readonly limits: { perIp: RateLimit; perEmailIp: RateLimit; mailPerEmail: RateLimit };
  private readonly keyStore: SigningKeyStore;
  private readonly sealer: KeySealer;

  constructor(readonly ctx: PluginContext<AuthConfig>) {
    const c = ctx.config;
    const secret = authSecret(c.secret, () => ctx.dataDir);
    this.users = new UserStore(ctx.db);
    this.devices = new DeviceStore(ctx.db);
    this.sessions = new SessionStore(ctx.db);
    this.identities = new IdentityStore(ctx.db);
    this.passwords = new Passwords(c.max_concurrent_hashes, c.hash_queue);
    this.keyStore = new SigningKeyStore(ctx.db);
    this.sealer = new KeySealer(secret);
    this.keyring = new Keyring(this.keyStore, this.sealer, ctx.clock, (c.access_ttl_s + CLOCK_TOLERANCE_S) * 1000, ctx.log);
    this.access = new AccessTokens(this.keyring, ctx.clock, c.issuer, c.audience, c.access_ttl_s);
    this.refresh = new RefreshTokens(ctx, this.sessions, secret);
    this.codeStore = new CodeStore(ctx.db);
    this.codes = new Codes(ctx, this.codeStore, secret);
    this.sweeper = new Sweeper(ctx, this.sessions, this.codeStore);
    const outbox = new OutboxTransport(ctx.dataDir, ctx.clock);
    this.outbox = outbox;
    this.transport = c.smtp ? new SmtpTransport(c.smtp) : outbox;
    this.background = new Background(ctx.log);
    this.mailer = new Mailer(this.transport, this.background);
    const limit = (name: string, l: { points: number; duration_s: number }) => ctx.rateLimit({ name, points: l.points, durationS: l.duration_s });
    this.limits = {
      perIp: limit('ip', c.rate_limits.per_ip),
      perEmailIp: limit('email-ip', c.rate_limits.per_email_ip),
      mailPerEmail: limit('mail', c.rate_limits.mail_per_email),
    };
  }

  /**
   * Server start: moves key files an earlier version wrote into the database, makes sure there is
   * a current key this server can sign with, and says what will not work across several servers.
   */
  async startServing(): Promise<void> {
    await importKeyFiles(this.ctx.dataDir, this.keyStore, this.sealer, this.ctx.log);
    await this.keyring.ensureKey();
    if (this.ctx.db.dialect !== 'postgres') return;
    if (this.ctx.config.secret === undefined) {
      this.ctx.log.warn(
        'no auth secret is configured, so this server uses its own server.key: sessions, mail codes and signing keys will not work across several servers on this database. Set the same secret on every server (iqp plugins config auth --set \'secret={"$env":"IQP_AUTH_SECRET"}\'; docs/scaling.md).',
      );
    }
    if (!this.ctx.config.smtp) {
      this.ctx.log.warn('no smtp is configured, so mails go to the outbox in this server\'s data directory, which only `iqp auth outbox` on this machine reads. Configure smtp when several servers share this database.');
    }
  }

  async stop(): Promise<void> {
    this.sweeper.stop();
    await this.background.flush();
    if (this.transport instanceof SmtpTransport) this.transport.close();
  }

  /** The per_ip limit's check for a request from `ip` (counted as addressKey names the client: an IPv6 one by its /64). */
  perIp(ip: string): [RateLimit, string] {
    return [this.limits.perIp, addressKey(ip)];
  }

  /** Takes a point from each limit; the first refusal answers 429 with Retry-After, the same whoever the email names. */
  async limit(...checks: [RateLimit, string][]): Promise<void> {
    for (const [limit, key] of checks) {
      const r = await limit.consume(key);
      if (!r.allowed) {
        throw this.ctx.error('IQP_E_RATE_LIMITED', `Too many attempts; try again in ${r.retryAfterS} s.`, { headers: { 'Retry-After': String(r.retryAfterS) } });
      }
    }
  }

  busy(): Error {
    return this.ctx.error('IQP_E_BUSY', 'Too many sign-ins at once; try again in a second.', { headers: { 'Retry-After': '1' } });
  }

  /** Binds the device (a new id registers it for the user), starts a token family and answers with both tokens. */
  /** A new session for the user on the device, with its tokens (IQP_E_DEVICE_FOREIGN if another account has the device). */
  async signIn(user: UserRow, device: DeviceInput): Promise<TokenResponse> {
    return this.tokensFor(user, await this.ctx.db.transaction((tx) => this.startSession(user, device, tx)));
  }

  /** signIn's writes, in the caller's transaction (so they stand or fall with its other writes); tokensFor once it commits. */
  async startSession(user: UserRow, device: DeviceInput, tx: PluginDatabase): Promise<{ deviceId: string | null; sessionId: string; refreshToken: string }> {
    const deviceId = device.device_id ?? null;
    if (deviceId && !(await this.devices.claim({ id: deviceId, userId: user.id, name: device.device_name ?? null }, this.ctx.clock.now(), tx))) throw this.foreignDevice();
    const started = await this.refresh.start(user.id, deviceId, tx);
    return { deviceId, sessionId: started.session.id, refreshToken: started.refreshToken };
  }

  tokensFor(user: UserRow, s: { deviceId: string | null; sessionId: string; refreshToken: string }): Promise<TokenResponse> {
    return this.tokens(user, s.sessionId, s.deviceId, s.refreshToken);
  }

  foreignDevice(): Error {
    return this.ctx.error('IQP_E_DEVICE_FOREIGN', 'This device id is registered to another account; use a new random id for this install.');
  }

  async tokens(user: UserRow, sessionId: string, deviceId: string | null, refreshToken: string): Promise<TokenResponse> {
    const access_token = await this.access.issue({ userId: user.id, sessionId, deviceId, role: user.role, emailVerified: user.email_verified === 1 });
    return { access_token, token_type: 'Bearer', expires_in: this.access.ttlS, refresh_token: refreshToken };
  }

  /** Whether an account may get tokens: verified, or unverified where the config lets it sign in. */
  maySignIn(user: UserRow): boolean {
    return user.email_verified === 1 || this.ctx.config.unverified_may.includes('sign_in');
  }
}
