/** Request and response schemas the auth routes share (OAuth's token names, RFC 6749 §5.1). */
import { Type } from '../../../server/plugins/api.js';

export const Email = Type.String({ format: 'email', maxLength: 320, description: 'Compared case-insensitively.' });
/** Sign-in: nothing longer can be anyone's password, so it never reaches the hasher. */
export const Password = Type.String({ minLength: 1, maxLength: 1024 });
/** A new password: its length and commonness are judged by the handler (422 IQP_E_PASSWORD_WEAK). */
export const NewPassword = Type.String({ maxLength: 4096, description: '8 to 1,024 characters, not one of the most common passwords.' });
export const DeviceId = Type.String({ pattern: '^[A-Za-z0-9._:-]{8,128}$', description: 'Chosen by the app, random and stable per install (a UUID is fine).' });
export const DeviceName = Type.String({ minLength: 1, maxLength: 100 });
export const Code = Type.String({ maxLength: 16, description: 'The 6-digit code from the mail.' });
export const LinkToken = Type.String({ maxLength: 128, description: 'The token from the mail’s link.' });

export const DeviceFields = {
  device_id: Type.Optional(DeviceId),
  device_name: Type.Optional(DeviceName),
};

export const Tokens = {
  access_token: Type.String({ description: 'A JWT (typ at+jwt) for Authorization: Bearer; expires after expires_in seconds.' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ minimum: 1 }),
  refresh_token: Type.String({ description: 'Opaque; rotates on every use: keep only the newest.' }),
};

export const UserView = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    email_verified: Type.Boolean(),
    role: Type.Union([Type.Literal('user'), Type.Literal('publisher'), Type.Literal('admin')]),
    created_at: Type.String(),
  },
  { additionalProperties: false },
);

export const TokenResponse = Type.Object(Tokens, { additionalProperties: false });
export const SignInResponse = Type.Object({ ...Tokens, user: UserView }, { additionalProperties: false });
export const Pending = Type.Object({ status: Type.Literal('verification_sent') }, { additionalProperties: false });

export const DeviceView = Type.Object(
  {
    id: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    platform: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String(),
    last_seen_at: Type.String(),
    current: Type.Boolean({ description: 'The device the calling access token was issued to.' }),
  },
  { additionalProperties: false },
);

export const RETRY_AFTER = { 'Retry-After': 'Seconds to wait before trying again.' };
