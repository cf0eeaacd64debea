/** The auth plugin's config as the host hands it over (validated against iqp-plugin.json's configSchema, defaults applied). */

export type Capability = 'sign_in' | 'sync';

export interface Limit {
  readonly points: number;
  readonly duration_s: number;
}

export interface AuthConfig {
  /** The server secret, shared by every server on one database (32 bytes, base64 or base64url); unset: `<plugin data dir>/server.key`. */
  readonly secret?: string;
  readonly issuer: string;
  readonly audience: string;
  readonly access_ttl_s: number;
  readonly refresh_idle_days: number;
  readonly refresh_absolute_days: number;
  readonly refresh_grace_s: number;
  readonly max_concurrent_hashes: number;
  readonly hash_queue: number;
  /** What an account whose email is not verified may do; 'sign_in' lets it get tokens (emailVerified false in them). */
  readonly unverified_may: readonly Capability[];
  /** Where email links point, `{token}` replaced; empty: mails carry the token alone. */
  readonly link_url: string;
  readonly google: { readonly jwks_url: string; readonly client_ids: readonly string[]; readonly hd?: string; readonly jwks_cooldown_s: number };
  readonly smtp?: { readonly host: string; readonly port: number; readonly secure: boolean; readonly user?: string; readonly password?: string; readonly from: string };
  readonly rate_limits: { readonly per_ip: Limit; readonly per_email_ip: Limit; readonly mail_per_email: Limit };
}

export const DAY_MS = 86_400_000;
