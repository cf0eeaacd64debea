/**
 * ctx.rateLimit on the embedded registry: two connections to one registry.sqlite share each limit,
 * counted in the counters' own file beside it, so counting never commits to registry.sqlite.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { databasePath } from '../../server/config.js';
import { migrateDataDir } from '../../server/datadir.js';
import { countersPath } from '../../server/plugins/rate-limit.js';
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
  async counters(db) {
    return (db as SqlitePluginDatabase).counterConnection().prepare('SELECT key, points FROM plugin_rate_limits ORDER BY key').all() as Array<{ key: string; points: number }>;
  },
});

async function opened() {
  const dataDir = tempDir('iqp-rate-limit-');
  await migrateDataDir(dataDir);
  return { path: databasePath(dataDir), db: new SqlitePluginDatabase(databasePath(dataDir)) };
}

it('refuses a consume given the tx of a transaction that has ended (it would count outside any transaction)', async () => {
  const { db } = await opened();
  try {
    const limit = db.rateLimiter('p', { name: 'login', points: 3, durationS: 60 }, 'command');
    const kept = await db.transaction(async (tx) => tx);
    await expect(limit.consume('k', 1, { tx: kept })).rejects.toThrow(TypeError);
    expect(await limit.peek('k')).toEqual({ consumed: 0, retryAfterS: 0 });
  } finally {
    db.close();
  }
});

it('counts in a file of its own: registry.sqlite sees no commit, so other processes keep their page caches', async () => {
  const { path, db } = await opened();
  // PRAGMA data_version changes for this connection when another one commits to the file.
  const watcher = new Database(path, { readonly: true });
  const version = () => watcher.pragma('data_version', { simple: true }) as number;
  try {
    const limit = db.rateLimiter('p', { name: 'pull', points: 3, durationS: 60 }, 'command');
    const before = version();
    expect(await limit.consume('k')).toEqual({ allowed: true });
    await db.transaction(async (tx) => limit.consume('k', 1, { tx }));
    expect(await limit.peek('k')).toEqual({ consumed: 2, retryAfterS: 0 });
    await limit.reset('k');
    expect(version(), 'no commit to registry.sqlite').toBe(before);
    expect(existsSync(countersPath(path))).toBe(true);
    // A commit of the plugins' connection does show: the watcher is not blind.
    await db.run('INSERT INTO plugin_migrations (plugin_id, migration_id, checksum, applied_at) VALUES (?, ?, ?, ?)', ['p', 'm', 'a'.repeat(64), 'now']);
    expect(version()).not.toBe(before);
  } finally {
    watcher.close();
    db.close();
  }
});

it('waits out another process holding the counters’ lock on the event loop, then counts', async () => {
  const { path, db } = await opened();
  try {
    const limit = db.rateLimiter('p', { name: 'pull', points: 3, durationS: 60 }, 'command');
    await limit.consume('k');
    const other = new Database(countersPath(path));
    other.exec('BEGIN IMMEDIATE');
    let settled = false;
    const counting = limit.consume('k').finally(() => (settled = true));
    // The event loop keeps turning (the wait is not SQLite's sleeping busy handler), and the count waits.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    other.exec('COMMIT');
    other.close();
    expect(await counting).toEqual({ allowed: true });
    expect(await limit.peek('k')).toEqual({ consumed: 2, retryAfterS: 0 });
  } finally {
    db.close();
  }
});
