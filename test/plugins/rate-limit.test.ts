/** ctx.rateLimit on the embedded registry: two connections to one registry.sqlite share each limit. */
import { databasePath } from '../../server/config.js';
import { migrateDataDir } from '../../server/datadir.js';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';
import { rateLimitConformance } from './rate-limit-conformance.js';

rateLimitConformance('SQLite', {
  async open() {
    const dataDir = tempDir('iqp-rate-limit-');
    await migrateDataDir(dataDir);
    const [first, second] = [new SqlitePluginDatabase(databasePath(dataDir)), new SqlitePluginDatabase(databasePath(dataDir))];
    return {
      first,
      second,
      close: async () => {
        first.close();
        second.close();
      },
    };
  },
});
