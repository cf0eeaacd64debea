import type { PluginContext, Principal } from '../../../server/plugins/api.js';
import type { UserPrincipal } from '../tokens/access.js';

/** The signed-in user of an `auth: 'user'` route; an API token (no user) is refused rather than trusted. */
export function asUser(ctx: PluginContext<unknown>, principal: Principal | null): UserPrincipal {
  if (principal?.kind !== 'user') throw ctx.error('IQP_E_TOKEN_INVALID', 'This route needs a user’s access token from /v1/auth/login.');
  return principal;
}
