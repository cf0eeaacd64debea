/** ctx.rateLimit on the embedded registry: two connections to one registry.sqlite share each limit. */
import { expect, it } from 'vitest';
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

it('refuses a consume given the tx of a transaction that has ended (it would count outside any transaction)', async () => {
  const dataDir = tempDir('iqp-rate-limit-');
  await migrateDataDir(dataDir);
  const db = new SqlitePluginDatabase(databasePath(dataDir));
  try {
    const limit = db.rateLimiter('p', { name: 'login', points: 3, durationS: 60 });
    const kept = await db.transaction(async (tx) => tx);
    await expect(limit.consume('k', 1, { tx: kept })).rejects.toThrow(TypeError);
    expect(await limit.peek('k')).toEqual({ consumed: 0, retryAfterS: 0 });
  } finally {
    db.close();
  }
});
