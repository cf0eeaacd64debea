/** ctx.rateLimit on PostgreSQL: two pools (two servers) on one database share each limit. */
import { PgPluginDatabase } from '../../server/plugins/pg-db.js';
import { applyPgMigrations } from '../../server/stores/postgres/schema.js';
import { describePg, freshSchema } from '../postgres/harness.js';
import { rateLimitConformance } from './rate-limit-conformance.js';

describePg('PostgreSQL rate limits', () => {
  rateLimitConformance('PostgreSQL', {
    async open() {
      const schema = await freshSchema();
      const first = new PgPluginDatabase(schema.options());
      await applyPgMigrations(first.pool);
      const second = new PgPluginDatabase(schema.options());
      return {
        first,
        second,
        close: async () => {
          await Promise.all([first.close(), second.close()]);
          await schema.drop();
        },
      };
    },
    counters: (db) => db.all<{ key: string; points: number }>('SELECT key, points FROM plugin_rate_limits ORDER BY key'),
  });
});
