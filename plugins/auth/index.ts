/**
 * The built-in auth plugin: accounts, devices and tokens for offline-first apps. Written against
 * the plugin API alone, as a third-party plugin would be; docs/auth.md is its manual.
 */
import { AUTH_ADMIN_V1, AUTH_V1, definePlugin, type PluginManifest } from '../../server/plugins/api.js';
import { Accounts } from './accounts.js';
import type { AuthConfig } from './config.js';
import { Core } from './core.js';
import { GoogleSignIn } from './google.js';
import manifest from './iqp-plugin.json' with { type: 'json' };
import { Profile } from './profile.js';
import { Recovery } from './recovery.js';
import { accountRoutes } from './routes/account.js';
import { keyRoutes } from './routes/keys.js';
import { meRoutes } from './routes/me.js';
import { adminService, authService } from './services.js';

interface Parts {
  core: Core;
  accounts: Accounts;
  recovery: Recovery;
  profile: Profile;
  google: GoogleSignIn;
}

/** Built at start (the config is readable from then on); one set per context, so two registries in one process stay apart. */
const parts = new WeakMap<object, Parts>();

export default definePlugin<AuthConfig>({
  manifest: manifest as PluginManifest,

  async register(ctx) {
    const get = (): Parts => {
      const p = parts.get(ctx);
      if (!p) throw new Error('the auth plugin is not started');
      return p;
    };
    accountRoutes(
      ctx,
      () => get().accounts,
      () => get().recovery,
    );
    meRoutes(ctx, () => get().profile);
    keyRoutes(
      ctx,
      () => get().core,
      () => get().google,
    );
    ctx.provide(AUTH_V1, authService(() => get().core));
    ctx.provide(
      AUTH_ADMIN_V1,
      adminService(
        () => get().core,
        () => get().profile,
      ),
    );
  },

  async start(ctx) {
    const core = new Core(ctx);
    // In a CLI command beside a running server, the server made the key; only rotate-key adds one there.
    if (ctx.mode === 'server') {
      await core.startServing();
      core.sweeper.start();
    }
    parts.set(ctx, { core, accounts: new Accounts(core), recovery: new Recovery(core), profile: new Profile(core), google: new GoogleSignIn(core) });
  },

  async stop(ctx) {
    await parts.get(ctx)?.core.stop();
    parts.delete(ctx);
  },
});
