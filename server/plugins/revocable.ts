/**
 * One plugin's ctx.db: the shared plugins' database, which the host can take back from that plugin
 * alone when it gives up on it (start() timed out or threw, or anything before failed). A start()
 * that times out keeps running, and the transaction it opened would hold the one SQLite connection
 * every plugin queues on (and registry.sqlite's write lock, which the core's writes need) or a
 * PostgreSQL session's row locks, for ever. Taking the database back rolls that transaction back
 * at once and frees its connection; every later call through the plugin's ctx.db, or through the
 * tx of the abandoned transaction, throws, as do its ctx.audit and rate limits, which write there too.
 */
import { IqpError } from '../../src/errors.js';
import type { PluginDatabase, RateLimit, SqlValue } from './api.js';
import type { PluginStorage } from './storage.js';

export interface RevocableDatabase {
  /** What the plugin gets as ctx.db. */
  readonly db: PluginDatabase;
  /** `work` (ctx.audit: an entry written to the database), refused in the same way once revoked. */
  guard<T>(work: () => Promise<T>): Promise<T>;
  /** A rate limit of the plugin's (its counts are database writes too), refused in the same way once revoked. */
  rateLimit(limit: RateLimit): RateLimit;
  /** Ends the plugin's access, rolling back the transaction it holds; `why` says why in the errors it meets from then on. */
  revoke(why: string): void;
}

export function revocableDatabase(storage: PluginStorage, pluginId: string): RevocableDatabase {
  const revoked = new AbortController();
  const check = () => revoked.signal.throwIfAborted();
  return {
    db: {
      dialect: storage.dialect,
      all: async <T>(sql: string, params?: readonly SqlValue[]) => {
        check();
        return storage.all<T>(sql, params);
      },
      get: async <T>(sql: string, params?: readonly SqlValue[]) => {
        check();
        return storage.get<T>(sql, params);
      },
      run: async (sql: string, params?: readonly SqlValue[]) => {
        check();
        return storage.run(sql, params);
      },
      transaction: async (fn, options) => {
        check();
        return storage.transaction(fn, options, revoked.signal);
      },
    },
    guard: async (work) => {
      check();
      return work();
    },
    rateLimit: (limit) => ({
      consume: async (key, points, options) => {
        check();
        return limit.consume(key, points, options);
      },
      peek: async (key) => {
        check();
        return limit.peek(key);
      },
      reset: async (key) => {
        check();
        return limit.reset(key);
      },
    }),
    revoke(why) {
      if (revoked.signal.aborted) return;
      revoked.abort(new IqpError('IQP_E_PLUGIN_UNAVAILABLE', `Plugin ${pluginId} was left out (${why}); its database access ended with it.`, { plugin: pluginId }));
    },
  };
}

/**
 * `work`, unless `signal` aborts first: then its reason, at once, while `work` may still be
 * running (what it does next must meet a closed transaction).
 */
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
