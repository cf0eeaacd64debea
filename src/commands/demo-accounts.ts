/**
 * The accounts half of `iqp demo`: the built-in auth plugin enabled on the demo's registry (as
 * `iqp plugins enable auth` does, then a restart), and one app user's life over real HTTP, as a
 * phone app lives it: sign up, verify with the mailed code (read from the outbox, since the demo
 * has no SMTP server), sign in with a device id, read the account, refresh (the refresh token
 * rotates; sent as a form, as OAuth client libraries send it), sign out. No password, token or code
 * is printed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ResponseOf } from '../api/route.js';
import type { audit } from '../api/core/admin.js';
import type { Context } from '../cli/context.js';
import { withRegistry } from '../cli/registry.js';
import type { RegistryClient } from '../client/registry.js';
import { IqpError } from '../errors.js';
import { serverConfig } from '../../server/config.js';
import { AUTH_ADMIN_V1 } from '../../server/plugins/api.js';
import { changeServerFile } from '../../server/plugins/server-file.js';
import { startServer } from '../../server/start.js';
import { DEMO_SYNC_CONFIG, type SyncDemo, syncDemo } from './demo-sync.js';

export interface AccountsDemo {
  readonly url: string;
  readonly email: string;
  readonly user_id: string;
  readonly device_id: string;
  readonly email_verified: boolean;
  /** The refresh token changed at the refresh (it is never printed). */
  readonly refresh_rotated: boolean;
  /** What refreshing with the newest token answered after sign-out. */
  readonly refresh_after_sign_out: string;
  /** The auth plugin's audit entries, oldest first. */
  readonly audit: readonly string[];
  readonly sync: SyncDemo;
}

interface Tokens {
  readonly access_token: string;
  readonly refresh_token: string;
  readonly expires_in: number;
}
interface SignedIn extends Tokens {
  readonly user: { readonly id: string; readonly email: string; readonly email_verified: boolean };
}

const EMAIL = 'app-user@example.org';

/** A form body, as AppAuth and oauth4webapi send token requests (RFC 6749 §6). */
function form(fields: Record<string, string>): { headers: Record<string, string>; body: () => Readable } {
  const text = new URLSearchParams(fields).toString();
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: () => Readable.from([text]) };
}

async function userLife(client: RegistryClient, readOutbox: () => Promise<{ to: string; text: string }[]>, say: (line: string) => void) {
  // Random, never printed: a demo password is still a password.
  const password = randomBytes(18).toString('base64url');
  await client.json({ method: 'POST', path: '/v1/auth/register', json: { email: EMAIL, password }, expect: [202] });
  say(`22. register ${EMAIL} (POST /v1/auth/register → 202; a verification code is mailed)`);
  const mail = (await readOutbox()).filter((m) => m.to === EMAIL).at(-1);
  const code = mail && /code is (\d{6})/.exec(mail.text)?.[1];
  if (!code) throw new IqpError('IQP_E_INTERNAL', 'The demo found no verification code in the auth plugin’s outbox.');
  await client.json({ method: 'POST', path: '/v1/auth/verify-email', json: { email: EMAIL, code }, expect: [200] });
  say('23. verify  code read from the outbox (registry-data/plugins/auth/outbox/), POST /v1/auth/verify-email → verified');
  const deviceId = `demo-${randomUUID()}`;
  const signedIn = await client.json<SignedIn>({ method: 'POST', path: '/v1/auth/login', json: { email: EMAIL, password, device_id: deviceId, device_name: 'iqp demo' }, expect: [200] });
  say(`24. login   device ${deviceId}: access token (${signedIn.expires_in} s) and refresh token (held in memory, never printed)`);
  const me = await client.json<SignedIn['user']>({ method: 'GET', path: '/v1/auth/me', headers: { authorization: `Bearer ${signedIn.access_token}` } });
  say(`25. me      GET /v1/auth/me with the access token: ${me.email}, email verified: ${me.email_verified}`);
  const refreshed = await client.json<Tokens>({ method: 'POST', path: '/v1/auth/refresh', ...form({ grant_type: 'refresh_token', refresh_token: signedIn.refresh_token, device_id: deviceId }) });
  const rotated = refreshed.refresh_token !== signedIn.refresh_token;
  say(`26. refresh POST /v1/auth/refresh (a form, as OAuth libraries send it): new tokens, refresh token ${rotated ? 'rotated' : 'NOT rotated'}`);
  await client.json({ method: 'POST', path: '/v1/auth/logout', json: { refresh_token: refreshed.refresh_token }, expect: [204] });
  const after = await client.json<{ error: { code: string } }>({ method: 'POST', path: '/v1/auth/refresh', json: { refresh_token: refreshed.refresh_token }, expect: [401] });
  say(`27. logout  session ended; its refresh token now answers 401 ${after.error.code}`);
  return { user_id: me.id, device_id: deviceId, email_verified: me.email_verified, refresh_rotated: rotated, refresh_after_sign_out: after.error.code, password };
}

export async function accountsDemo(ctx: Context, dataDir: string, say: (line: string) => void): Promise<AccountsDemo> {
  changeServerFile(dataDir, (file, write) =>
    write({
      ...file,
      plugins: {
        ...file.plugins,
        auth: { config: {}, ...file.plugins['auth'], enabled: true, source: 'builtin', required: true },
        sync: { config: DEMO_SYNC_CONFIG, ...file.plugins['sync'], enabled: true, source: 'builtin', required: true },
      },
    }),
  );
  say('20. plugins auth and sync enabled in registry-data/server.json (what `iqp plugins enable auth`, `enable sync` and `plugins config sync` do)');
  const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => {});
  try {
    say(`21. serve   registry restarted on ${running.url} with the auth and sync plugins (/v1/auth, /v1/sync)`);
    const admin = running.plugins?.service(AUTH_ADMIN_V1);
    if (!admin) throw new IqpError('IQP_E_PLUGIN_UNAVAILABLE', 'The auth plugin did not start on the demo registry.');
    const { token } = await running.registry.services.tokens.create('admin', 'iqp demo accounts', 'cli:demo');
    return await withRegistry({ ...ctx, config: { ...ctx.config, registry: running.url, token } }, { token: true }, async (client) => {
      const { password, ...life } = await userLife(client, () => admin.readOutbox(), say);
      const sync = await syncDemo(running.url, EMAIL, password, say, 28);
      const page = await client.json<ResponseOf<typeof audit>>({ method: 'GET', path: '/v1/admin/audit?action=auth.*&limit=100', auth: true });
      const actions = page.entries.map((e) => e.action).reverse();
      const syncPage = await client.json<ResponseOf<typeof audit>>({ method: 'GET', path: '/v1/admin/audit?action=sync.*&limit=100', auth: true });
      const syncActions = syncPage.entries.map((e) => e.action).reverse();
      say(`36. audit   ${actions.join(', ')} (GET /v1/admin/audit?action=auth.*); ${syncActions.length} sync entries (${[...new Set(syncActions)].join(', ')}), counts only, no payloads`);
      return { url: running.url, email: EMAIL, ...life, audit: actions, sync };
    });
  } finally {
    await running.close();
    say('37. stop    registry stopped');
  }
}
