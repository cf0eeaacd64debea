/**
 * The sync plugin under test as it runs for real: the auth harness (a real registry on 127.0.0.1,
 * a temp data directory, the plugins' clock in the test's hands) with the built-in sync plugin
 * enabled beside auth, and signed-in users whose pushes and pulls go over HTTP.
 */
import { SYNC_ADMIN_V1, type SyncAdminServiceV1 } from '../../server/plugins/api.js';
import { type AuthHarness, authHarness, type HarnessOptions, post, signedIn } from '../auth/support.js';

export interface SyncHarness extends AuthHarness {
  readonly sync: SyncAdminServiceV1;
  /** /v1/sync. */
  readonly syncUrl: string;
}

/** Generous limits, so tests that are not about limits never meet one. */
const ROOMY = { push_per_user: { points: 1_000_000, duration_s: 60 }, pull_per_user: { points: 1_000_000, duration_s: 60 } };

export async function syncHarness(config: Record<string, unknown> = {}, options: HarnessOptions = {}): Promise<SyncHarness> {
  const h = await authHarness({ ...options, builtins: { sync: { rate_limits: ROOMY, ...config }, ...options.builtins } });
  return Object.assign(h, { sync: h.running.plugins!.service(SYNC_ADMIN_V1)!, syncUrl: `${h.base}/v1/sync` });
}

export interface Mutation {
  mutation_id: string;
  entity: string;
  entity_id: string;
  op: 'upsert' | 'patch' | 'delete';
  payload?: Record<string, unknown> | null;
  base_version?: number;
  client_ts?: string | number;
}

/** A signed-in account and one of its devices, talking the protocol over HTTP. */
export class Device {
  private n = 0;
  constructor(
    readonly h: SyncHarness,
    readonly token: string,
    readonly userId: string,
    readonly id: string,
    readonly name?: string,
  ) {}

  /** A fresh mutation id for this device. */
  mid(): string {
    return `${this.id}-m${++this.n}`;
  }

  push(mutations: Mutation[], extra: Record<string, unknown> = {}) {
    return post(`${this.h.syncUrl}/push`, { device_id: this.id, ...(this.name ? { device_name: this.name } : {}), schema_version: 1, mutations, ...extra }, this.token);
  }

  pull(cursor: string | null, extra: Record<string, unknown> = {}) {
    return post(`${this.h.syncUrl}/pull`, { device_id: this.id, cursor, ...extra }, this.token);
  }

  /** Pulls from `cursor` until has_more is false: every page's changes, in order, and the final cursor. */
  async pullAll(cursor: string | null, extra: Record<string, unknown> = {}): Promise<{ changes: any[]; conflicts: any[]; cursor: string; pages: number }> {
    const changes: any[] = [];
    const conflicts: any[] = [];
    let pages = 0;
    for (;;) {
      const r = await this.pull(cursor, extra);
      if (r.status !== 200) throw new Error(`pull answered ${r.status}: ${JSON.stringify(r.body)}`);
      pages++;
      changes.push(...r.body.changes);
      conflicts.push(...r.body.conflicts);
      cursor = r.body.cursor;
      if (!r.body.has_more) return { changes, conflicts, cursor: cursor!, pages };
    }
  }
}

/** A verified account signed in over HTTP, and a device of it. */
export async function device(h: SyncHarness, email: string, deviceId: string, name?: string): Promise<Device> {
  const t = await signedIn(h, email, deviceId);
  return new Device(h, t.access_token, t.user.id, deviceId, name);
}

/** A second device of the same account (its own sign-in). */
export async function sibling(d: Device, deviceId: string, name?: string): Promise<Device> {
  const email = (await d.h.admin.listUsers()).find((u) => u.id === d.userId)!.email;
  return device(d.h, email, deviceId, name);
}
