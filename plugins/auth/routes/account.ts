/** Sign-up, sign-in, refresh, sign-out, verification and password routes. */
import { type PluginContext, route, Type } from '../../../server/plugins/api.js';
import type { Accounts } from '../accounts.js';
import type { AuthConfig } from '../config.js';
import type { Recovery } from '../recovery.js';
import { asUser } from './principal.js';
import { Code, DeviceFields, Email, LinkToken, NewPassword, Password, Pending, RETRY_AFTER, SignInResponse, TokenResponse } from './schemas.js';

const obj = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });
const pending = { 202: { description: 'Accepted; the same answer whether or not the email has an account.', schema: Pending } } as const;
const limited = { 429: { description: 'Too many attempts.', headers: RETRY_AFTER } } as const;
const busy = { 503: { description: 'Too many password hashes at once.', headers: RETRY_AFTER } } as const;

export const register = route({
  id: 'auth.register',
  method: 'POST',
  path: '/register',
  summary: 'Create an account; a verification code is mailed',
  description: 'Answers 202 whether or not the email already has an account (its owner is mailed instead).',
  auth: 'none',
  body: obj({ email: Email, password: NewPassword }),
  responses: { ...pending, ...limited, ...busy },
  errors: ['IQP_E_PASSWORD_WEAK', 'IQP_E_RATE_LIMITED', 'IQP_E_BUSY'],
});

export const verifyEmail = route({
  id: 'auth.verifyEmail',
  method: 'POST',
  path: '/verify-email',
  summary: 'Verify the email address with the mailed code (and email) or the link token',
  auth: 'none',
  body: obj({ email: Type.Optional(Email), code: Type.Optional(Code), token: Type.Optional(LinkToken) }),
  responses: { 200: { description: 'Verified.', schema: obj({ email_verified: Type.Literal(true) }) }, ...limited },
  errors: ['IQP_E_CODE_INVALID', 'IQP_E_RATE_LIMITED'],
});

export const resendVerification = route({
  id: 'auth.resendVerification',
  method: 'POST',
  path: '/resend-verification',
  summary: 'Mail a new verification code',
  auth: 'none',
  body: obj({ email: Email }),
  responses: { ...pending, ...limited },
  errors: ['IQP_E_RATE_LIMITED'],
});

export const login = route({
  id: 'auth.login',
  method: 'POST',
  path: '/login',
  summary: 'Sign in with email and password',
  description: 'A device_id not seen before registers the device for the account; the tokens are bound to it.',
  auth: 'none',
  body: obj({ email: Email, password: Password, ...DeviceFields }),
  responses: { 200: { description: 'Signed in.', schema: SignInResponse }, ...limited, ...busy },
  errors: ['IQP_E_INVALID_CREDENTIALS', 'IQP_E_EMAIL_UNVERIFIED', 'IQP_E_DEVICE_FOREIGN', 'IQP_E_RATE_LIMITED', 'IQP_E_BUSY', 'IQP_E_FORBIDDEN'],
});

export const refresh = route({
  id: 'auth.refresh',
  method: 'POST',
  path: '/refresh',
  summary: 'Exchange a refresh token for new tokens (the refresh token rotates)',
  description:
    'Replaying the token just used within refresh_grace_s returns the same new tokens (a lost answer, parallel requests); any other reuse ends the session (401 IQP_E_REFRESH_REUSED). Takes a JSON body or, as stock OAuth client libraries send it (RFC 6749 §6), a form: `grant_type=refresh_token&refresh_token=…`; a form key given twice is refused.',
  auth: 'none',
  // Form too: AppAuth (Android, iOS) and oauth4webapi send token requests form-encoded and cannot be told otherwise.
  bodyTypes: ['json', 'form'],
  body: obj({
    refresh_token: Type.String({ maxLength: 256 }),
    grant_type: Type.Optional(Type.Literal('refresh_token')),
    client_id: Type.Optional(Type.String({ maxLength: 256 })),
    scope: Type.Optional(Type.String({ maxLength: 1024 })),
    ...DeviceFields,
  }),
  responses: { 200: { description: 'New tokens.', schema: TokenResponse }, ...limited },
  errors: ['IQP_E_TOKEN_INVALID', 'IQP_E_REFRESH_REUSED', 'IQP_E_DEVICE_FOREIGN', 'IQP_E_RATE_LIMITED'],
});

export const logout = route({
  id: 'auth.logout',
  method: 'POST',
  path: '/logout',
  summary: 'End the session the refresh token belongs to',
  description: 'Answers 204 for unknown or used tokens too (RFC 7009).',
  auth: 'none',
  body: obj({ refresh_token: Type.String({ maxLength: 256 }) }),
  responses: { 204: { description: 'Signed out.' }, ...limited },
  errors: ['IQP_E_RATE_LIMITED'],
});

export const changePassword = route({
  id: 'auth.changePassword',
  method: 'POST',
  path: '/password',
  summary: 'Change the password; every session ends, the calling device gets new tokens',
  auth: 'user',
  body: obj({ current_password: Password, new_password: NewPassword, ...DeviceFields }),
  responses: { 200: { description: 'Changed; tokens for the calling device.', schema: TokenResponse }, ...limited, ...busy },
  errors: ['IQP_E_INVALID_CREDENTIALS', 'IQP_E_TOKEN_INVALID', 'IQP_E_PASSWORD_WEAK', 'IQP_E_DEVICE_FOREIGN', 'IQP_E_RATE_LIMITED', 'IQP_E_BUSY'],
});

export const resetRequest = route({
  id: 'auth.passwordResetRequest',
  method: 'POST',
  path: '/password-reset/request',
  summary: 'Mail a password-reset code',
  auth: 'none',
  body: obj({ email: Email }),
  responses: { ...pending, ...limited },
  errors: ['IQP_E_RATE_LIMITED'],
});

export const resetConfirm = route({
  id: 'auth.passwordResetConfirm',
  method: 'POST',
  path: '/password-reset/confirm',
  summary: 'Set a new password with the mailed code (and email) or the link token; every session ends',
  auth: 'none',
  body: obj({ email: Type.Optional(Email), code: Type.Optional(Code), token: Type.Optional(LinkToken), password: NewPassword }),
  responses: { 204: { description: 'Password set.' }, ...limited, ...busy },
  errors: ['IQP_E_CODE_INVALID', 'IQP_E_PASSWORD_WEAK', 'IQP_E_RATE_LIMITED', 'IQP_E_BUSY'],
});

export function accountRoutes(ctx: PluginContext<AuthConfig>, accounts: () => Accounts, recovery: () => Recovery): void {
  ctx.routes.route(register, async ({ body, ip }) => ctx.reply(202, await accounts().register(body, ip)));
  ctx.routes.route(verifyEmail, async ({ body, ip }) => recovery().verifyEmail(body, ip));
  ctx.routes.route(resendVerification, async ({ body, ip }) => ctx.reply(202, await recovery().resendVerification(body.email, ip)));
  ctx.routes.route(login, async ({ body, ip }) => accounts().login(body, ip));
  ctx.routes.route(refresh, async ({ body, ip }) => accounts().refresh(body, ip));
  ctx.routes.route(logout, async ({ body, ip }) => {
    await accounts().logout(body.refresh_token, ip);
    return ctx.reply(204);
  });
  ctx.routes.route(changePassword, async ({ body, ip, principal }) => recovery().changePassword(asUser(ctx, principal), body, ip));
  ctx.routes.route(resetRequest, async ({ body, ip }) => ctx.reply(202, await recovery().requestReset(body.email, ip)));
  ctx.routes.route(resetConfirm, async ({ body, ip }) => {
    await recovery().confirmReset(body, ip);
    return ctx.reply(204);
  });
}
