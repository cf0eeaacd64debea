/**
 * Access tokens: short-lived JWTs (RFC 9068 profile: `typ: at+jwt`) signed with the current
 * Ed25519 key. Verification pins the algorithm, the issuer and the audience, refuses key-locating
 * headers (jku, x5u, jwk, x5c) and odd kids before any key is looked up, and never throws: a
 * token is a user, or it is refused as 'expired' or 'invalid' ('expired' also when its key has
 * gone since, a rotation having outlived it, so the app refreshes instead of signing out).
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import type { PluginClock, Principal, UserRole } from '../../../server/plugins/api.js';
import { KID } from './key-pair.js';
import type { Keyring } from './keyring.js';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

export const CLOCK_TOLERANCE_S = 30;
/** Far above any token we issue; a longer one is refused before it is parsed. */
const MAX_TOKEN_CHARS = 4096;
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit'];
const ROLES: readonly UserRole[] = ['user', 'publisher', 'admin'];

/** A role and the weaker ones it includes, as tokens carry them: an admin may do what a publisher may. */
export function rolesOf(role: UserRole): UserRole[] {
  return ROLES.slice(0, ROLES.indexOf(role) + 1);
}

export interface AccessClaims {
  readonly userId: string;
  readonly sessionId: string;
  readonly deviceId: string | null;
  readonly role: UserRole;
  readonly emailVerified: boolean;
}

export type Checked = { ok: true; principal: UserPrincipal } | { ok: false; reason: 'expired' | 'invalid' };

/** Tokens checked recently, so a client's every request does not pay for a signature check. */
const REMEMBERED = 10_000;

interface Remembered {
  readonly principal: UserPrincipal;
  readonly kid: string;
  /** exp plus the clock tolerance, in ms. */
  readonly untilMs: number;
}

export class AccessTokens {
  private readonly remembered = new Map<string, Remembered>();

  constructor(
    private readonly keyring: Keyring,
    private readonly clock: PluginClock,
    private readonly issuer: string,
    private readonly audience: string,
    readonly ttlS: number,
  ) {}

  async issue(c: AccessClaims): Promise<string> {
    const { kid, key } = await this.keyring.signing();
    const iat = Math.floor(this.clock.nowMs() / 1000);
    return new SignJWT({ sid: c.sessionId, roles: rolesOf(c.role), ev: c.emailVerified, ...(c.deviceId ? { did: c.deviceId } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(c.userId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlS)
      .sign(key);
  }

  /**
   * The principal of a genuine, live token. A token that passed recently is answered from memory
   * while its exp (with tolerance) and its key both hold: the memory is keyed by the whole token,
   * so nothing but that exact, signed string can hit it.
   */
  async check(token: string): Promise<Checked> {
    const known = this.remembered.get(token);
    if (known) {
      if (this.clock.nowMs() <= known.untilMs && (await this.keyring.live(known.kid))) return { ok: true, principal: known.principal };
      this.remembered.delete(token);
    }
    const checked = await this.verify(token);
    if (checked.ok) {
      if (this.remembered.size >= REMEMBERED) this.remembered.delete(this.remembered.keys().next().value!);
      this.remembered.set(token, { principal: checked.principal, kid: checked.kid, untilMs: checked.untilMs });
    }
    return checked.ok ? { ok: true, principal: checked.principal } : checked;
  }

  private async verify(token: string): Promise<(Checked & { ok: false }) | { ok: true; principal: UserPrincipal; kid: string; untilMs: number }> {
    const invalid = { ok: false, reason: 'invalid' } as const;
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return invalid;
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return invalid;
    }
    if (header.alg !== 'EdDSA' || header.typ !== 'at+jwt' || typeof header.kid !== 'string' || !KID.test(header.kid)) return invalid;
    if (FORBIDDEN_HEADERS.some((h) => h in header)) return invalid;
    const key = await this.keyring.verifying(header.kid);
    if (!key) return this.pastExp(token) ? { ok: false, reason: 'expired' } : invalid;
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        issuer: this.issuer,
        audience: this.audience,
        typ: 'at+jwt',
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(this.clock.nowMs()),
        requiredClaims: ['sub', 'sid', 'exp', 'iat'],
      });
      const { sub, sid, roles, ev, did } = payload as Record<string, unknown>;
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof ev !== 'boolean') return invalid;
      if (!Array.isArray(roles) || !roles.every((r) => ROLES.includes(r as UserRole))) return invalid;
      if (did !== undefined && typeof did !== 'string') return invalid;
      const principal: UserPrincipal = { kind: 'user', userId: sub, sessionId: sid, deviceId: did ?? null, roles: roles as UserRole[], emailVerified: ev };
      return { ok: true, principal, kid: header.kid, untilMs: (payload.exp! + CLOCK_TOLERANCE_S) * 1000 };
    } catch (err) {
      return { ok: false, reason: err instanceof errors.JWTExpired ? 'expired' : 'invalid' };
    }
  }

  /**
   * Whether a token whose key no longer verifies (retired longer ago than a token lives) says, in
   * its unverified claims, that it was ours and has expired anyway. Such a token is one a rotation
   * outlived, and 'expired' sends the app to refresh rather than sign the user out. Believing the
   * claims unverified is safe: 'expired' grants nothing, and the refresh it leads to needs a valid
   * refresh token.
   */
  private pastExp(token: string): boolean {
    let claims: ReturnType<typeof decodeJwt>;
    try {
      claims = decodeJwt(token);
    } catch {
      return false;
    }
    const { iss, aud, exp } = claims;
    const ours = iss === this.issuer && (aud === this.audience || (Array.isArray(aud) && aud.includes(this.audience)));
    // As jwtVerify counts exp: whole seconds, with the same tolerance.
    return ours && typeof exp === 'number' && Number.isFinite(exp) && exp <= Math.floor(this.clock.nowMs() / 1000) - CLOCK_TOLERANCE_S;
  }
}
