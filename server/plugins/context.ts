/**
 * The ctx one plugin gets: its own view of the host's shared services (database, log, audit, clock,
 * rate limits, hooks, services), with the rules of each phase enforced where a plugin could
 * otherwise get them wrong silently: routes and provide() only during register(), config and
 * service() only from start() on, refs only as the manifest declares them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RouteSpec } from '../../src/api/route.js';
import type { Logger } from '../app.js';
import { reply } from '../http/contract.js';
import type { NewAuditEntry } from '../stores/types.js';
import type { PluginClock, PluginContext, PluginCounter, PluginCounterOptions, PluginDatabase, RateLimit, RateLimitOptions, RouteHandler, ServiceRef } from './api.js';
import type { HookBus } from './hooks.js';
import type { LoadedManifest } from './manifest.js';
import { type DeclaredRoute, pluginError, streamReply } from './routes.js';

/** Peers' messages are wake-ups and ids, not data: the cap keeps the IPC channel from carrying payloads. */
const PEER_MESSAGE_MAX = 4096;

export type Phase = 'register' | 'starting' | 'running' | 'stopped';

/** What the host keeps of one plugin, and what its ctx reads and fills. */
export interface PluginState {
  readonly manifest: LoadedManifest;
  phase: Phase;
  readonly routes: DeclaredRoute[];
  readonly provided: Map<string, unknown>;
  config: Readonly<Record<string, unknown>> | null;
}

export interface SharedServices {
  readonly mode: 'server' | 'command';
  readonly dataDir: string;
  readonly db: PluginDatabase;
  readonly log: Logger;
  /** Writes through `tx` when given (inside a plugin's transaction), else on its own. */
  readonly audit: (entry: NewAuditEntry, tx?: PluginDatabase) => Promise<void>;
  readonly clock: PluginClock;
  readonly hooks: HookBus;
  readonly rateLimit: (plugin: string, options: RateLimitOptions) => RateLimit;
  readonly counter: (plugin: string, options: PluginCounterOptions) => PluginCounter;
  /** Messages to the same plugin in the other processes serving the registry (plugins/peers.ts). */
  readonly peers: { send(plugin: string, message: string): void; on(plugin: string, handler: (message: string) => void): void };
  /** `ref`'s implementation for plugin `requester`; throws unless a plugin it requires provides it and runs. */
  readonly lookup: (requester: string, ref: string) => unknown;
}

export function pluginDataDir(dataDir: string, id: string): string {
  return join(dataDir, 'plugins', id);
}

export function createContext(state: PluginState, shared: SharedServices): PluginContext {
  const { id } = state.manifest;
  const provides = new Set(state.manifest.provides ?? []);
  const misuse = (message: string) => new Error(`Plugin ${id}: ${message} (docs/plugins.md)`);
  const logAt =
    (level: 'info' | 'warn' | 'error') =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      shared.log({ ...fields, level, msg, plugin: id });
  let dataDir: string | null = null;
  const limits = new Set<string>();

  return {
    id,
    mode: shared.mode,
    log: { info: logAt('info'), warn: logAt('warn'), error: logAt('error') },
    clock: shared.clock,
    get config() {
      if (!state.config) throw misuse('ctx.config is read before start(); register() only declares');
      return state.config;
    },
    get dataDir() {
      // Created when first asked for, so a plugin that keeps no files leaves no folder.
      if (dataDir === null) {
        dataDir = pluginDataDir(shared.dataDir, id);
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      }
      return dataDir;
    },
    db: shared.db,
    routes: {
      route<R extends RouteSpec>(spec: R, handler: RouteHandler<R>) {
        if (state.phase !== 'register') throw misuse('routes are declared during register()');
        if (typeof handler !== 'function') throw misuse(`route ${spec?.id}: the handler must be an async function`);
        if (typeof spec?.path !== 'string' || !spec.path.startsWith('/')) throw misuse(`route ${spec?.id}: its path must start with / (it is relative to /v1/${id})`);
        state.routes.push({ spec, handler: handler as unknown as RouteHandler<RouteSpec> });
      },
    },
    hooks: shared.hooks.forPlugin(id),
    audit: (entry, options) =>
      shared.audit({ at: shared.clock.now(), actor: entry.actor, action: `${id}.${entry.action}`, target: entry.target, details: entry.details ? { ...entry.details } : null }, options?.tx),
    rateLimit(options) {
      if (limits.has(options.name)) throw misuse(`rate limit ${options.name} is made twice`);
      limits.add(options.name);
      return shared.rateLimit(id, options);
    },
    counter(options) {
      if (!/^[a-z][a-z0-9_]{0,63}$/.test(options?.name ?? '')) throw misuse(`counter name ${String(options?.name)} must be lowercase letters, digits and underscores`);
      return shared.counter(id, options);
    },
    peers: {
      broadcast(message) {
        if (typeof message !== 'string' || Buffer.byteLength(message) > PEER_MESSAGE_MAX) throw misuse(`peers.broadcast takes a string of at most ${PEER_MESSAGE_MAX} bytes`);
        shared.peers.send(id, message);
      },
      onMessage(handler) {
        if (typeof handler !== 'function') throw misuse('peers.onMessage takes a function');
        shared.peers.on(id, handler);
      },
    },
    provide<T>(ref: ServiceRef<T>, implementation: T) {
      if (state.phase !== 'register') throw misuse(`provide(${ref.id}) is called during register()`);
      if (!provides.has(ref.id)) throw misuse(`provides ${ref.id}, which its manifest's "provides" does not list`);
      state.provided.set(ref.id, implementation);
    },
    service<T>(ref: ServiceRef<T>): T {
      if (state.phase === 'register') throw misuse(`service(${ref.id}) is called from start() on, not during register()`);
      return shared.lookup(id, ref.id) as T;
    },
    reply: (status, body, headers) => reply(status, body, headers),
    stream: streamReply,
    error: pluginError,
  };
}
