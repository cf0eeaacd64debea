/**
 * ctx.rateLimit on the embedded registry: rate-limiter-flexible's RateLimiterSQLite on the
 * plugins' connection, in the core's plugin_rate_limits table, keys prefixed `<id>:<name>`.
 * Each call runs as a transaction of the plugins' database: the limiter writes synchronously on
 * that connection, and outside the queue it could land inside another request's open transaction.
 * Those transactions are not durable (see TransactionOptions): a counter lost in a power cut
 * harms nobody, and a request must not wait for the disk only to be counted.
 */
import { RateLimiterRes, RateLimiterSQLite } from 'rate-limiter-flexible';
import type { RateLimit, RateLimitOptions } from './api.js';
import type { SqlitePluginDatabase } from './sqlite-db.js';

export const RATE_LIMIT_TABLE = 'plugin_rate_limits';

const SOFT = { durable: false } as const;

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

export function sqliteRateLimit(db: SqlitePluginDatabase, plugin: string, options: RateLimitOptions): RateLimit {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(options.name)) throw new TypeError(`rateLimit: name ${JSON.stringify(options.name)} must be 1-64 letters, digits, dots, dashes or underscores.`);
  const limiter = new RateLimiterSQLite({
    storeClient: db.db,
    storeType: 'better-sqlite3',
    tableName: RATE_LIMIT_TABLE,
    tableCreated: true,
    keyPrefix: `${plugin}:${options.name}`,
    points: options.points,
    duration: options.durationS,
    ...(options.blockDurationS ? { blockDuration: options.blockDurationS } : {}),
  });
  return {
    consume: (key, points = 1) =>
      db.transaction(async () => {
        try {
          await limiter.consume(key, points);
          return { allowed: true as const };
        } catch (err) {
          // Refused: committed all the same, so the points taken (and any block) are kept.
          if (err instanceof RateLimiterRes) return { allowed: false as const, retryAfterS: retryAfter(err) };
          throw err;
        }
      }, SOFT),
    peek: (key) =>
      db.transaction(async () => {
        const res = await limiter.get(key);
        return res ? { consumed: res.consumedPoints, retryAfterS: res.consumedPoints >= options.points ? retryAfter(res) : 0 } : { consumed: 0, retryAfterS: 0 };
      }, SOFT),
    reset: async (key) => {
      await db.transaction(() => limiter.delete(key), SOFT);
    },
  };
}
