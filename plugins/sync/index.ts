/**
 * The built-in sync plugin: offline-first push and pull of app users' data, written against the
 * plugin API alone. docs/sync-protocol.md is the protocol; docs/plugins.md the host.
 */
import { definePlugin, type PluginContext, type PluginManifest, SYNC_ADMIN_V1, type SyncAdminServiceV1 } from '../../server/plugins/api.js';
import { compact } from './compact.js';
import type { SyncConfig } from './config.js';
import { Core } from './core.js';
import manifest from './iqp-plugin.json' with { type: 'json' };
import { syncRoutes } from './routes/sync.js';
import { exportLines, importLines, readExport } from './transfer.js';

interface Running {
  core: Core;
  timer: NodeJS.Timeout | null;
}

const running = new WeakMap<object, Running>();

function adminService(ctx: PluginContext<SyncConfig>, core: () => Core): SyncAdminServiceV1 {
  return {
    async compact(userId) {
      const stats = await compact(core(), userId);
      await ctx.audit({ action: 'compacted', actor: 'cli:sync compact', target: userId ? `user:${userId}` : 'all', details: { ...stats } });
      return stats;
    },
    async *exportLines(userId, actor) {
      await ctx.audit({ action: 'export', actor, target: `user:${userId}` });
      yield* exportLines(core(), userId);
    },
    async importFile(userId, mode, source, actor) {
      const file = await readExport(core(), source);
      const out = await importLines(core(), userId, mode, file.lines);
      await ctx.audit({ action: 'import', actor, target: `user:${userId}`, details: { mode, lines: file.lines.length, written: out.imported } });
      return { imported: file.lines.length, head: out.head, sha256: file.trailer.sha256 };
    },
    async stats(userId) {
      const where = userId ? 'WHERE user_id = ?' : '';
      const params = userId ? [userId] : [];
      const one = async (sql: string) => Number((await ctx.db.get<{ n: number }>(sql, params))?.n ?? 0);
      return {
        users: await one(`SELECT COUNT(*) AS n FROM sync_users ${where}`),
        entities: await one(`SELECT COUNT(*) AS n FROM sync_rows ${where ? `${where} AND` : 'WHERE'} deleted = 0`),
        tombstones: await one(`SELECT COUNT(*) AS n FROM sync_rows ${where ? `${where} AND` : 'WHERE'} deleted = 1`),
        conflicts_open: await one(`SELECT COUNT(*) AS n FROM sync_conflicts ${where ? `${where} AND` : 'WHERE'} status = 'open'`),
        devices: await one(`SELECT COUNT(*) AS n FROM sync_devices ${where}`),
      };
    },
  };
}

export default definePlugin<SyncConfig>({
  manifest: manifest as PluginManifest,

  async register(ctx) {
    const core = (): Core => {
      const r = running.get(ctx);
      if (!r) throw new Error('the sync plugin is not started');
      return r.core;
    };
    syncRoutes(ctx, core);
    ctx.provide(SYNC_ADMIN_V1, adminService(ctx, core));
    // An account being deleted takes its sync data with it, in one transaction.
    ctx.hooks.on('user.deleted', async ({ userId }) => {
      await ctx.db.transaction((tx) => core().store.removeUser(userId, tx), core().userTx(userId));
    });
  },

  async start(ctx) {
    const limits = ctx.config.rate_limits;
    const core = new Core(ctx, {
      push: ctx.rateLimit({ name: 'push', points: limits.push_per_user.points, durationS: limits.push_per_user.duration_s }),
      pull: ctx.rateLimit({ name: 'pull', points: limits.pull_per_user.points, durationS: limits.pull_per_user.duration_s }),
    });
    let timer: NodeJS.Timeout | null = null;
    const every = ctx.config.retention.compact_interval_s;
    if (ctx.mode === 'server' && every > 0) {
      timer = setInterval(() => {
        compact(core).then(
          (s) => ctx.log.info('sync compacted', { ...s }),
          (err: unknown) => ctx.log.error('sync compaction failed', { error: String(err) }),
        );
      }, every * 1000);
      timer.unref();
    }
    running.set(ctx, { core, timer });
  },

  async stop(ctx) {
    const r = running.get(ctx);
    if (r?.timer) clearInterval(r.timer);
    running.delete(ctx);
  },
});
