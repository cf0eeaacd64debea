/**
 * The plugin host: loads the data directory's enabled plugins and takes them through their life:
 * load → register → dependencies → routes → config → migrations → start (dependency order, with a
 * timeout) → serve → stop (reverse order, with a deadline). A plugin marked `required` that fails
 * anywhere stops the start with its coded error; any other failing plugin, and every plugin that
 * requires it, is left out: its routes answer 503 and /v1/health says "degraded".
 */
import type { Registry } from 'prom-client';
import { type Router } from 'express';
import { type ErrorCode, IqpError, isIqpError } from '../../src/errors.js';
import type { Logger } from '../app.js';
import { markMount } from '../http/route-label.js';
import type { NewAuditEntry } from '../stores/types.js';
import type { PluginClock, PluginContext, PluginDatabase, PluginDefinition, PluginManifest, ServiceRef } from './api.js';
import { resolveConfig } from './config.js';
import { pluginCounter } from './counter.js';
import { createContext, type PluginState, type SharedServices } from './context.js';
import { within } from './deadline.js';
import { type DepNode, rivalProviders, startOrder, unmetRequirements } from './deps.js';
import { HookBus } from './hooks.js';
import { loadPlugin, readPluginManifest } from './loader.js';
import type { LoadedManifest } from './manifest.js';
import { applyPluginMigrations, pendingMigrations } from './migrations.js';
import { claimRoutes, type MountContext, pluginRouter, unavailable } from './routes.js';
import { type RevocableDatabase, revocableDatabase } from './revocable.js';
import { type PluginEntry, readServerFile, type ServerFile } from './server-file.js';
import { NO_PEERS, type PeerChannel } from './peers.js';
import type { PluginStorage } from './storage.js';

export const DEFAULT_START_TIMEOUT_MS = 10_000;
export const DEFAULT_STOP_DEADLINE_MS = 10_000;

export interface PluginFailure {
  readonly id: string;
  readonly code: ErrorCode;
  readonly message: string;
}

export interface PluginStatus {
  readonly loaded: readonly { readonly id: string; readonly version: string }[];
  readonly failed: readonly PluginFailure[];
}

export interface HostOptions {
  readonly dataDir: string;
  readonly mode: 'server' | 'command';
  /** The plugins' database (SqlitePluginDatabase or PgPluginDatabase): ctx.db, and what migrations and rate limits need. */
  readonly db: PluginStorage;
  readonly log: Logger;
  readonly audit: (entry: NewAuditEntry, tx?: PluginDatabase) => Promise<void>;
  readonly clock?: PluginClock;
  readonly env?: NodeJS.ProcessEnv;
  /** Where npm package names are also resolved from (besides the data directory). */
  readonly cwd?: string;
  /** The core's routes (as claimRoutes shapes) a plugin route may not shadow. */
  readonly coreRoutes?: readonly string[];
  /** For mounting routes (server mode). */
  readonly mount?: MountContext;
  /** Takes the data directory's lock for pending migrations; absent when the caller already holds it. */
  readonly lockForMigrations?: () => { release(): void };
  readonly stopDeadlineMs?: number;
  /** The registry's Prometheus registry (server mode); plugin counters count nothing without one. */
  readonly metrics?: Registry;
  /** The other processes serving the registry (a cluster worker's); none by default. */
  readonly peers?: PeerChannel;
  /** server.json as the caller read it (a cluster's primary, once for all its workers); default: read now. */
  readonly serverFile?: ServerFile;
}

interface Rec {
  readonly id: string;
  readonly entry: PluginEntry;
  state?: PluginState;
  def?: PluginDefinition;
  ctx?: PluginContext;
  /** Its ctx.db, taken back when it fails. */
  db?: RevocableDatabase;
  router?: Router;
  config?: Readonly<Record<string, unknown>>;
  failure?: PluginFailure;
}

const systemPluginClock: PluginClock = { nowMs: () => Date.now(), now: () => new Date().toISOString() };

/** Thrown inside start() to abandon it when a required plugin fails. */
class RequiredFailed extends Error {
  constructor(readonly error: IqpError) {
    super(error.message);
  }
}

const TIMEOUT_SETTINGS = " (start_timeout_ms in server.json, or the manifest's startTimeoutMs)";

/** How long loading, register() and start() may each take: the operator's setting, else the plugin's. */
function startTimeout(entry: PluginEntry, manifest: PluginManifest): number {
  return entry.start_timeout_ms ?? manifest.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
}

function coded(err: unknown, code: ErrorCode, what: string): IqpError {
  if (isIqpError(err) && err.code.startsWith('IQP_E_PLUGIN_')) return err;
  return new IqpError(code, `${what}: ${(err as Error)?.message ?? String(err)}`, undefined, { cause: err });
}

export class PluginHost {
  private readonly recs = new Map<string, Rec>();
  private order: string[] = [];
  private readonly started: string[] = [];
  private readonly hooks = new HookBus();

  private constructor(private readonly o: HostOptions) {}

  /** Loads and starts the enabled plugins; throws the coded error of a required plugin that failed (after stopping those started). */
  static async start(options: HostOptions): Promise<PluginHost> {
    const host = new PluginHost(options);
    try {
      await host.run();
    } catch (err) {
      await host.stop();
      throw err instanceof RequiredFailed ? err.error : err;
    }
    return host;
  }

  private alive(): Rec[] {
    return [...this.recs.values()].filter((r) => !r.failure);
  }

  /** Records rec's failure (stopping the start if it is required), and leaves out whoever requires it unless `alone`. */
  private fail(rec: Rec, code: ErrorCode, err: unknown, what: string, alone = false): void {
    if (rec.failure) return;
    const e = coded(err, code, `Plugin ${rec.id}: ${what}`);
    rec.failure = { id: rec.id, code: e.code, message: e.message };
    // A start() that timed out runs on: the transaction it may hold is rolled back now.
    rec.db?.revoke(e.message);
    this.hooks.remove(rec.id);
    this.o.log({ level: 'error', msg: 'plugin failed', plugin: rec.id, code: e.code, error: e.message, ...(e.cause ? { cause: String((e.cause as Error)?.stack ?? e.cause) } : {}) });
    if (rec.entry.required) {
      throw new RequiredFailed(new IqpError(e.code, `Required plugin ${rec.id} failed, so the registry does not start. ${e.message}`, { plugin: rec.id }, { hint: e.hint }));
    }
    if (alone) return;
    // Whoever requires it cannot run either.
    for (const other of this.alive()) {
      if (other.state && Object.hasOwn(other.state.manifest.requires ?? {}, rec.id)) {
        this.fail(other, 'IQP_E_PLUGIN_MISSING', new IqpError('IQP_E_PLUGIN_MISSING', `Plugin ${other.id} requires ${rec.id}, which failed.`), '');
      }
    }
  }

  private shared(): SharedServices {
    return {
      mode: this.o.mode,
      dataDir: this.o.dataDir,
      db: this.o.db,
      log: this.o.log,
      audit: this.o.audit,
      clock: this.o.clock ?? systemPluginClock,
      hooks: this.hooks,
      rateLimit: (plugin, options) => this.o.db.rateLimiter(plugin, options, this.o.mode),
      counter: (plugin, options) => pluginCounter(this.o.metrics, plugin, options),
      lookup: (requester, ref) => this.lookup(requester, ref),
      peers: this.peerHandlers(),
    };
  }

  /** Routes peers' messages to the handlers of the plugin they are for; a handler that throws is logged, not fatal. */
  private peerHandlers(): SharedServices['peers'] {
    const channel = this.o.mode === 'server' ? (this.o.peers ?? NO_PEERS) : NO_PEERS;
    const handlers = new Map<string, ((message: string) => void)[]>();
    channel.listen((plugin, message) => {
      for (const handler of handlers.get(plugin) ?? []) {
        try {
          handler(message);
        } catch (err) {
          this.o.log({ level: 'error', msg: 'a plugin failed on a message from its peers', plugin, error: String(err) });
        }
      }
    });
    return {
      send: (plugin, message) => channel.send(plugin, message),
      on: (plugin, handler) => handlers.set(plugin, [...(handlers.get(plugin) ?? []), handler]),
    };
  }

  private provider(ref: string): Rec | undefined {
    return [...this.recs.values()].find((r) => r.state?.provided.has(ref));
  }

  private lookup(requester: string, ref: string): unknown {
    const p = this.provider(ref);
    const requires = this.recs.get(requester)?.state?.manifest.requires ?? {};
    if (!p || !Object.hasOwn(requires, p.id)) {
      throw new IqpError('IQP_E_PLUGIN_MISSING', `Plugin ${requester} asks for ${ref}, but ${p ? `its provider ${p.id} is not among the plugins it requires` : 'no enabled plugin provides it'}.`, { plugin: requester, service: ref });
    }
    return p.state!.provided.get(ref);
  }

  /**
   * Two enabled plugins that provide one service (two auth plugins): which one signs users in
   * would be an accident of ordering, so neither runs, before any code of theirs is loaded, and
   * the error names both.
   */
  private refuseRivalProviders(manifests: ReadonlyMap<string, LoadedManifest>): void {
    for (const [ref, ids] of rivalProviders([...manifests].map(([id, m]) => [id, m.provides] as const))) {
      for (const id of ids) {
        const rec = this.recs.get(id)!;
        const others = ids.filter((other) => other !== id).join(', ');
        this.fail(rec, 'IQP_E_PLUGIN_INVALID', new IqpError('IQP_E_PLUGIN_INVALID', `Plugin ${id} provides ${ref}, as ${others} does: enable only one of them.`, { plugin: id, service: ref }), 'cannot be loaded');
      }
    }
  }

  private async run(): Promise<void> {
    const file = this.o.serverFile ?? readServerFile(this.o.dataDir);
    for (const [id, entry] of Object.entries(file.plugins).sort(([a], [b]) => a.localeCompare(b))) if (entry.enabled) this.recs.set(id, { id, entry });
    const shared = this.shared();
    // Each manifest read once; one that cannot be read is reported by the load below.
    const manifests = new Map<string, LoadedManifest>();
    for (const rec of this.recs.values()) {
      try {
        manifests.set(rec.id, readPluginManifest(rec.id, rec.entry.source, this.o.dataDir, this.o.cwd));
      } catch {
        // reported below
      }
    }
    this.refuseRivalProviders(manifests);

    // A module whose import, or a register(), never settles would hold the whole start (and any
    // command running plugins) for ever: each has the plugin's start timeout too.
    for (const rec of this.recs.values()) {
      if (rec.failure) continue;
      let timeout = DEFAULT_START_TIMEOUT_MS;
      try {
        const manifest = manifests.get(rec.id) ?? readPluginManifest(rec.id, rec.entry.source, this.o.dataDir, this.o.cwd);
        timeout = startTimeout(rec.entry, manifest);
        rec.def = await within(timeout, () => loadPlugin(manifest), `Plugin ${rec.id}: cannot be loaded: its module ${manifest.entry} did not finish loading within ${timeout} ms${TIMEOUT_SETTINGS}.`, 'IQP_E_PLUGIN_INVALID');
        rec.state = { manifest, phase: 'register', routes: [], provided: new Map(), config: null };
        const access = revocableDatabase(this.o.db, rec.id);
        rec.db = access;
        rec.ctx = createContext(rec.state, {
          ...shared,
          db: access.db,
          audit: (entry, tx) => access.guard(() => shared.audit(entry, tx)),
          rateLimit: (plugin, options) => access.rateLimit(shared.rateLimit(plugin, options)),
        });
      } catch (err) {
        this.fail(rec, 'IQP_E_PLUGIN_INVALID', err, 'cannot be loaded');
        continue;
      }
      try {
        const { def, ctx } = rec;
        await within(timeout, async () => def.register(ctx), `Plugin ${rec.id}: register() did not finish within ${timeout} ms${TIMEOUT_SETTINGS}.`, 'IQP_E_PLUGIN_REGISTER');
      } catch (err) {
        this.fail(rec, 'IQP_E_PLUGIN_REGISTER', err, 'register() threw');
      }
    }

    this.orderPlugins();
    if (this.o.mode === 'server') this.buildRouters();

    for (const rec of this.inOrder()) {
      try {
        rec.config = resolveConfig(rec.state!.manifest, rec.entry.config, this.o.env ?? process.env);
      } catch (err) {
        this.fail(rec, 'IQP_E_PLUGIN_CONFIG', err, 'invalid config');
      }
    }

    await this.migrate();
    // Counters of windows long over (keys such as client addresses would otherwise pile up); any process may do it.
    if (this.o.mode === 'server') await this.o.db.sweepRateLimits(Date.now());

    for (const rec of this.inOrder()) {
      const state = rec.state!;
      state.config = rec.config!;
      state.phase = 'starting';
      const timeout = startTimeout(rec.entry, state.manifest);
      try {
        await within(timeout, async () => rec.def!.start?.(rec.ctx!), `Plugin ${rec.id}: start() did not finish within ${timeout} ms${TIMEOUT_SETTINGS}.`);
        state.phase = 'running';
        this.started.push(rec.id);
      } catch (err) {
        this.fail(rec, 'IQP_E_PLUGIN_START', err, 'start() threw');
      }
    }
  }

  /** Plugins still alive, in dependency order. */
  private inOrder(): Rec[] {
    return this.order.map((id) => this.recs.get(id)!).filter((r) => !r.failure);
  }

  private orderPlugins(): void {
    // Requirements first, again after each failure they cause, until every one left is met.
    for (;;) {
      const nodes: DepNode[] = this.alive().map((r) => ({ id: r.id, version: r.state!.manifest.version, requires: r.state!.manifest.requires ?? {} }));
      const problem = unmetRequirements(nodes)[0];
      if (!problem) break;
      this.fail(this.recs.get(problem.id)!, 'IQP_E_PLUGIN_MISSING', new IqpError('IQP_E_PLUGIN_MISSING', `Plugin ${problem.id} ${problem.message}.`), '');
    }
    const nodes: DepNode[] = this.alive().map((r) => ({ id: r.id, version: r.state!.manifest.version, requires: r.state!.manifest.requires ?? {} }));
    const { order, cycles } = startOrder(nodes);
    // Every plugin caught in a cycle gets the cycle as its reason (not "requires one that failed").
    for (const c of cycles) this.fail(this.recs.get(c.id)!, 'IQP_E_PLUGIN_INVALID', new IqpError('IQP_E_PLUGIN_INVALID', `Plugin ${c.id} ${c.message}.`), '', true);
    this.order = order;
    this.hooks.setOrder(order);
  }

  private buildRouters(): void {
    const taken = [...(this.o.coreRoutes ?? [])];
    for (const rec of this.inOrder()) {
      const clash = claimRoutes(rec.id, rec.state!.routes, taken);
      if (clash) {
        const err = new IqpError('IQP_E_PLUGIN_ROUTE_CONFLICT', `Plugin ${rec.id} declares ${clash.route}, which ${clash.other} already answers.`, { route: clash.route, other: clash.other });
        this.fail(rec, 'IQP_E_PLUGIN_ROUTE_CONFLICT', err, '');
        continue;
      }
      try {
        // Compiles every schema now, so a bad one fails the plugin at start rather than a request.
        rec.router = pluginRouter(rec.id, rec.state!.routes, this.o.mount!);
      } catch (err) {
        this.fail(rec, 'IQP_E_PLUGIN_REGISTER', err, 'a route declaration is invalid');
      }
    }
  }

  private async migrate(): Promise<void> {
    const pending: Rec[] = [];
    for (const r of this.inOrder()) {
      try {
        if ((await pendingMigrations(this.o.db, r.state!.manifest)).length > 0) pending.push(r);
      } catch (err) {
        this.fail(r, 'IQP_E_PLUGIN_MIGRATION', err, '');
      }
    }
    if (pending.length === 0) return;
    const lock = this.o.lockForMigrations?.();
    let unlock: (() => Promise<void>) | undefined;
    try {
      // Other servers on the same database wait here; applyPluginMigrations looks at the ledger again once it is ours.
      try {
        unlock = await this.o.db.lockMigrations();
      } catch (err) {
        for (const rec of pending) this.fail(rec, 'IQP_E_PLUGIN_MIGRATION', err, 'its migrations could not take the migration lock');
        return;
      }
      for (const rec of pending) {
        if (rec.failure) continue;
        try {
          const applied = await applyPluginMigrations(this.o.db, rec.state!.manifest, () => (this.o.clock ?? systemPluginClock).now());
          if (applied.length > 0) this.o.log({ level: 'info', msg: 'plugin migrations applied', plugin: rec.id, migrations: applied });
        } catch (err) {
          this.fail(rec, 'IQP_E_PLUGIN_MIGRATION', err, '');
        }
      }
    } finally {
      await unlock?.();
      lock?.release();
    }
  }

  /** Mounts each enabled plugin at /<id> on `router` (itself mounted at /v1): running ones answer, failed ones 503. */
  mount(router: Router): void {
    for (const rec of this.recs.values()) router.use(`/${rec.id}`, markMount, rec.failure || !rec.router ? unavailable(rec.id) : rec.router);
  }

  status(): PluginStatus {
    return {
      loaded: this.started.filter((id) => !this.recs.get(id)!.failure).map((id) => ({ id, version: this.recs.get(id)!.state!.manifest.version })),
      failed: [...this.recs.values()].flatMap((r) => (r.failure ? [r.failure] : [])),
    };
  }

  /** A service a running plugin provides, for the core (auth.v1 for user tokens); null when none does. */
  service<S>(ref: ServiceRef<S>): S | null {
    const p = this.provider(ref.id);
    return p && !p.failure && p.state!.phase === 'running' ? (p.state!.provided.get(ref.id) as S) : null;
  }

  /** Stops the started plugins in reverse order, each within the deadline; failures are logged, never thrown. */
  async stop(): Promise<void> {
    const deadline = this.o.stopDeadlineMs ?? DEFAULT_STOP_DEADLINE_MS;
    while (this.started.length > 0) {
      const rec = this.recs.get(this.started.pop()!)!;
      rec.state!.phase = 'stopped';
      try {
        await within(deadline, async () => rec.def!.stop?.(rec.ctx!), `Plugin ${rec.id}: stop() did not finish within ${deadline} ms.`);
      } catch (err) {
        this.o.log({ level: 'error', msg: 'plugin failed to stop', plugin: rec.id, error: String((err as Error)?.stack ?? err) });
      }
    }
  }
}
