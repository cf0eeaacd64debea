/** Public keys (for anyone verifying access tokens) and Google sign-in. */
import { type PluginContext, route, Type } from '../../../server/plugins/api.js';
import type { AuthConfig } from '../config.js';
import type { Core } from '../core.js';
import type { GoogleSignIn } from '../google.js';
import { DeviceFields, RETRY_AFTER, SignInResponse } from './schemas.js';

export const jwks = route({
  id: 'auth.jwks',
  method: 'GET',
  path: '/jwks.json',
  summary: 'The public keys access tokens are signed with (JWK Set, RFC 7517)',
  description: 'The current key and any retired key whose tokens may still be valid.',
  auth: 'none',
  responses: {
    200: {
      description: 'The key set.',
      schema: Type.Object({ keys: Type.Array(Type.Object({ kty: Type.String(), kid: Type.String() }, { additionalProperties: true })) }, { additionalProperties: false }),
    },
  },
});

export const google = route({
  id: 'auth.google',
  method: 'POST',
  path: '/google',
  summary: 'Sign in with a Google ID token',
  description: 'Never links to a local account whose email is unverified (409 IQP_E_ACCOUNT_CONFLICT).',
  auth: 'none',
  body: Type.Object({ id_token: Type.String({ maxLength: 8192 }), nonce: Type.Optional(Type.String({ maxLength: 256 })), ...DeviceFields }, { additionalProperties: false }),
  responses: { 200: { description: 'Signed in.', schema: SignInResponse }, 429: { description: 'Too many attempts.', headers: RETRY_AFTER } },
  errors: ['IQP_E_GOOGLE_TOKEN_INVALID', 'IQP_E_ACCOUNT_CONFLICT', 'IQP_E_DEVICE_FOREIGN', 'IQP_E_FORBIDDEN', 'IQP_E_RATE_LIMITED'],
});

export function keyRoutes(ctx: PluginContext<AuthConfig>, core: () => Core, signIn: () => GoogleSignIn): void {
  ctx.routes.route(jwks, async () => ctx.reply(200, await core().keyring.jwks(), { 'Cache-Control': 'public, max-age=300' }));
  ctx.routes.route(google, async ({ body, ip }) => signIn().signIn(body, ip));
}
