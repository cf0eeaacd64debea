/** What the sync plugin's parts share: its ctx, store, entity rules, long-poll notifier and limits. */
import { randomBytes } from 'node:crypto';
import { AUTH_V1, type PluginContext, type PluginDatabase, type RateLimit } from '../../server/plugins/api.js';
import type { SyncConfig } from './config.js';
import { Entities } from './entities.js';
import { Notifier } from './notifier.js';
import { Store, type UserRow } from './store.js';

export function newId(bytes = 16): string {
  return randomBytes(bytes).toString('base64url');
}

export class Core {
  readonly store: Store;
  readonly entities: Entities;
  readonly notifier: Notifier;
  readonly pushLimit: RateLimit;
  readonly pullLimit: RateLimit;
  private pushing = 0;

  constructor(readonly ctx: PluginContext<SyncConfig>, limits: { push: RateLimit; pull: RateLimit }) {
    this.store = new Store(ctx.db);
    this.entities = new Entities(ctx.config);
    // A push in this process wakes its pulls, and its peers' (the other workers'); a push on
    // another machine is found by each waiting pull looking at the database every wait_check_ms.
    this.notifier = new Notifier(ctx.config.wait_check_ms, () => ctx.config.max_waiting_pulls, (userId) => ctx.peers.broadcast(userId));
    ctx.peers.onMessage((userId) => this.notifier.wake(userId));
    this.pushLimit = limits.push;
    this.pullLimit = limits.pull;
  }

  get config(): SyncConfig {
    return this.ctx.config;
  }

  /**
   * The transaction options of work that writes a user's sync data (push, import, resolution,
   * compaction, removal): one such transaction per user at a time on every server, so one
   * account's devices pushing at once queue on PostgreSQL instead of colliding and running again.
   */
  userTx(userId: string): { readonly lockKey: string } {
    return { lockKey: `sync:user:${userId}` };
  }

  /**
   * The refusal for an account that is gone or disabled, else null: its access tokens stay valid
   * until they expire, and nothing they do may read or add data. In `tx` when the work writes, so
   * it holds against an account deletion (see AuthServiceV1.userActive).
   */
  async inactive(userId: string, tx?: PluginDatabase): Promise<Error | null> {
    if (await this.ctx.service(AUTH_V1).userActive(userId, tx)) return null;
    return this.ctx.error('IQP_E_TOKEN_INVALID', 'The account is disabled or gone; sign in again.');
  }

  /** inactive, thrown. */
  async active(userId: string, tx?: PluginDatabase): Promise<void> {
    const refused = await this.inactive(userId, tx);
    if (refused) throw refused;
  }

  /** The user's sync row, made on first use with a fresh epoch. */
  ensureUser(userId: string, db: PluginDatabase): Promise<UserRow> {
    return this.store.ensureUser(userId, () => newId(12), db);
  }

  /** Binds the device to the user on first use; another user's device id is refused. */
  async claimDevice(userId: string, deviceId: string, name: string | null, db: PluginDatabase): Promise<void> {
    const refused = await this.claimOrRefuse(userId, deviceId, name, db);
    if (refused) throw refused;
  }

  /** claimDevice, handing back the refusal instead of throwing it (for a transaction that must still commit). */
  async claimOrRefuse(userId: string, deviceId: string, name: string | null, db: PluginDatabase): Promise<Error | null> {
    if (await this.store.claimDevice(deviceId, userId, name, this.ctx.clock.nowMs(), db)) return null;
    return this.ctx.error('IQP_E_DEVICE_FOREIGN', 'This device id syncs for another account; generate a new random device id for this install.', { details: { field: 'body.device_id' } });
  }

  /**
   * Counts a request against the user's limit: the 429 (with Retry-After) to answer when it is
   * spent, else null. With tx, counted in that transaction (which must then commit).
   */
  async overLimit(limit: RateLimit, userId: string, tx?: PluginDatabase): Promise<Error | null> {
    const r = await limit.consume(`user:${userId}`, 1, tx ? { tx } : {});
    return r.allowed ? null : this.ctx.error('IQP_E_RATE_LIMITED', 'Too many sync requests for this account; wait and try again.', { headers: { 'Retry-After': String(r.retryAfterS) } });
  }

  /** overLimit, thrown. */
  async limit(limit: RateLimit, userId: string): Promise<void> {
    const refused = await this.overLimit(limit, userId);
    if (refused) throw refused;
  }

  /** Runs a push unless too many are running: then 429, so apps back off instead of queueing on the database. */
  async gate<T>(fn: () => Promise<T>): Promise<T> {
    if (this.pushing >= this.config.max_concurrent_pushes) throw this.ctx.error('IQP_E_RATE_LIMITED', 'The registry is busy with other pushes; try again shortly.', { headers: { 'Retry-After': '1' } });
    this.pushing++;
    try {
      return await fn();
    } finally {
      this.pushing--;
    }
  }
}
