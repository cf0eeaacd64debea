/**
 * A small app over the real client, for end-to-end tests: a local table it edits optimistically
 * and mutates, kept in step by onChanges, signed in through authTokens against a real registry.
 */
import { SyncClient, type SyncClientOptions } from '../../src/sync-client/client.js';
import type { Rejection } from '../../src/sync-client/engine.js';
import type { Conflict, JsonObject, Op } from '../../src/sync-client/protocol.js';
import { MemoryStore, type SyncStore } from '../../src/sync-client/store.js';
import { type AuthTokens, authTokens } from '../../src/sync-client/tokens.js';
import type { FetchLike } from '../../src/sync-client/transport.js';
import { PASSWORD } from '../auth/support.js';
import type { SyncHarness } from '../sync/support.js';

export interface App {
  client: SyncClient;
  tokens: AuthTokens;
  store: SyncStore;
  /** entity/id → payload, as the app holds it. */
  rows: Map<string, JsonObject>;
  conflicts: Conflict[];
  rejected: Rejection[];
  /** Every request body the client sent, by path (observed, not changed). */
  sent: Array<{ path: string; body: any }>;
  edit(entity: string, id: string, op: Op, payload?: JsonObject): Promise<string>;
  /** Resolves once cond holds, checked after every request the client sends and every change it hands over. */
  when(cond: () => boolean): Promise<void>;
}

export async function ensureUser(h: SyncHarness, email: string): Promise<void> {
  if (!(await h.admin.listUsers()).some((u) => u.email === email)) await h.admin.createUser({ email, password: PASSWORD }, 'cli:test');
}

export async function app(h: SyncHarness, email: string, deviceId: string, options: Partial<SyncClientOptions> & { tokenNow?: () => number } = {}): Promise<App> {
  await ensureUser(h, email);
  const store = options.store ?? new MemoryStore();
  const sent: App['sent'] = [];
  const waiters = new Set<() => void>();
  const check = () => {
    for (const w of [...waiters]) w();
  };
  const observed: FetchLike = (url, init) => {
    sent.push({ path: new URL(url).pathname, body: JSON.parse(init.body) });
    queueMicrotask(check);
    return fetch(url, init);
  };
  const tokens = authTokens({ baseUrl: h.base, store, deviceId, deviceName: deviceId.split('-')[0]!, now: options.tokenNow ?? (() => h.clock.nowMs()) });
  await tokens.signIn(email, PASSWORD);
  const rows = new Map<string, JsonObject>();
  const a = { tokens, store, rows, conflicts: [], rejected: [], sent } as unknown as App;
  a.client = new SyncClient({
    baseUrl: h.base,
    deviceId,
    deviceName: deviceId.split('-')[0]!,
    schemaVersion: 1,
    store,
    tokens,
    fetch: observed,
    onChanges(changes) {
      for (const c of changes) {
        if (c.op === 'delete') rows.delete(`${c.entity}/${c.entity_id}`);
        else rows.set(`${c.entity}/${c.entity_id}`, c.payload!);
      }
      queueMicrotask(check);
    },
    onConflicts: (cs) => void a.conflicts.push(...cs),
    onRejected: (rs) => void a.rejected.push(...rs),
    ...options,
  });
  a.when = (cond) =>
    new Promise<void>((resolve) => {
      const w = () => {
        if (!cond()) return;
        waiters.delete(w);
        resolve();
      };
      waiters.add(w);
      w();
    });
  a.edit = async (entity, id, op, payload) => {
    const key = `${entity}/${id}`;
    if (op === 'delete') rows.delete(key);
    else rows.set(key, op === 'patch' ? { ...rows.get(key), ...payload } : payload!);
    return a.client.mutate({ entity, entity_id: id, op, ...(payload ? { payload } : {}) });
  };
  return a;
}

/** What the server holds for the account, as a brand-new device pulls it: entity/id → {version, payload}. */
export async function serverRows(h: SyncHarness, email: string, deviceId: string): Promise<Map<string, { version: number; payload: JsonObject }>> {
  const fresh = await app(h, email, deviceId);
  const out = new Map<string, { version: number; payload: JsonObject }>();
  const client = new SyncClient({
    baseUrl: h.base,
    deviceId,
    schemaVersion: 1,
    store: fresh.store,
    tokens: fresh.tokens,
    onChanges(changes) {
      for (const c of changes) {
        if (c.op === 'delete') out.delete(`${c.entity}/${c.entity_id}`);
        else out.set(`${c.entity}/${c.entity_id}`, { version: c.version, payload: c.payload! });
      }
    },
  });
  await client.syncOnce();
  return out;
}

export function payloads(rows: Map<string, { payload: JsonObject }>): Map<string, JsonObject> {
  return new Map([...rows].map(([k, v]) => [k, v.payload]));
}
