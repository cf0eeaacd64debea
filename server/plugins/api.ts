/**
 * The plugin API: everything a registry plugin may use, and all it may use. The built-in plugins
 * (plugins/auth, later plugins/sync) are written against this module alone, exactly as a
 * third-party plugin is; docs/plugins.md is its prose. Plugins are trusted code running in the
 * registry's process, not a sandbox: this API keeps them tidy, not contained.
 *
 * Everything is async. A plugin module default-exports definePlugin({ manifest, register, start?, stop? }).
 */
import type { TSchema } from 'typebox';
import type { BodyOf, ParamsOf, QueryOf, ResponseOf, RouteSpec } from '../../src/api/route.js';
import type { ErrorCode } from '../../src/errors.js';

/** The plugin API's version; a manifest's `host` range must include it. Bump the minor for additions, the major for breaks. */
export const PLUGIN_API_VERSION = '1.4.0';

/** One forward-only migration; `id`s sort in the order they run (`0001-accounts`, `0002-devices`). */
export interface PluginMigration {
  readonly id: string;
  /** SQL per database dialect; the statements run in one transaction with the ledger row. */
  readonly sqlite: string;
  /** Needed once the registry runs on PostgreSQL; a plugin without it refuses to start there. */
  readonly postgres?: string;
}

/**
 * Plain data, readable without running the plugin's code: the plugin's directory (or npm package)
 * holds it as `iqp-plugin.json`, next to the module it names in `entry`; the module's
 * definePlugin() must carry the same id and version.
 */
export interface PluginManifest {
  /** Lowercase letters, digits and dashes; its routes mount under /v1/<id>/, its tables are prefixed <id>_. */
  readonly id: string;
  /** The plugin's own semver version. */
  readonly version: string;
  /** A semver range of PLUGIN_API_VERSION the plugin was written for (`^1.0.0`). */
  readonly host: string;
  readonly description?: string;
  /** Plugins this one needs enabled and started first: id → semver range of their version. */
  readonly requires?: Readonly<Record<string, string>>;
  /** Service refs this plugin provides (`auth.v1`). */
  readonly provides?: readonly string[];
  /** JSON Schema (an object schema) of the plugin's config; defaults are applied. */
  readonly configSchema?: Readonly<Record<string, unknown>>;
  readonly migrations?: readonly PluginMigration[];
  /** Time start() may take before the plugin counts as failed (default 10 000 ms; the server's config may override it). */
  readonly startTimeoutMs?: number;
}

/** A typed, versioned name for a service one plugin provides and others consume. */
export interface ServiceRef<T> {
  readonly id: string;
  /** Never set: carries T for the type checker. */
  readonly __type?: T;
}

export function serviceRef<T>(id: string): ServiceRef<T> {
  return { id };
}

export interface PluginLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** One audit-log entry (shown by `iqp audit`); never put a secret in it. The plugin id is added to `action` as `<id>.<action>`. */
export interface PluginAuditEntry {
  readonly action: string;
  /** Who did it: `user:<id>`, `token:<id>(<name>)`, `cli:<command>`, `anonymous`. */
  readonly actor: string;
  readonly target: string;
  readonly details?: Record<string, unknown>;
}

/** A Prometheus counter a plugin keeps (served at /v1/metrics as `iqp_<plugin id>_<name>_total`). Since 1.1. */
export interface PluginCounter {
  inc(labels?: Readonly<Record<string, string>>, value?: number): void;
}

export interface PluginCounterOptions {
  /** Lowercase letters, digits and underscores. */
  readonly name: string;
  readonly help: string;
  readonly labels?: readonly string[];
}

export interface PluginClock {
  /** Milliseconds since the epoch. */
  nowMs(): number;
  /** RFC 3339 UTC with milliseconds. */
  now(): string;
}

export type SqlValue = string | number | bigint | Buffer | null;

/**
 * The plugin's database namespace. Its tables are named `<id>_…` (the host refuses a migration
 * creating anything else). SQL uses `?` placeholders in both dialects (the PostgreSQL adapter
 * numbers them, outside literals, quoted identifiers and comments). Queries outside transaction()
 * are each atomic; transaction() runs its callback as if it were alone and commits when the
 * promise resolves, rolls back when it rejects. Do not start another transaction, or use the
 * outer `db`, inside the callback. The callback may run more than once (PostgreSQL runs
 * transactions SERIALIZABLE and runs one again when it conflicted with another), so it does
 * database work only; and on PostgreSQL a statement that fails inside it fails the transaction.
 */
export interface PluginDatabase {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** INSERT/UPDATE/DELETE: how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ readonly changes: number }>;
  transaction<T>(fn: (tx: PluginDatabase) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

export interface TransactionOptions {
  /**
   * Default true: the transaction's outcome is handed back only once its commit is on disk.
   * false is for bookkeeping whose loss in a power cut harms nobody (a device's last-seen mark):
   * the answer does not wait for the disk, and the commit becomes durable with the next one that
   * does (SQLite: no fdatasync wait; a PostgreSQL adapter runs the transaction with
   * synchronous_commit = off). It is still atomic and isolated.
   */
  readonly durable?: boolean;
  /**
   * Transactions given the same key run one after another, whichever server runs them: the
   * adapter waits for the key before it begins (PostgreSQL: a session advisory lock, so every
   * server on the database queues; SQLite: writers take turns already). For work that is sure to
   * collide on the same rows, such as one account's pushes from several devices: it then queues
   * instead of failing on serialization and running again. Other keys, and none, run side by side.
   */
  readonly lockKey?: string;
}

/** A fixed-window limit on a key, shared by every server process (rate-limiter-flexible underneath; see server/plugins/rate-limit.ts for where it counts). */
export interface RateLimit {
  /**
   * Takes `points` (default 1) for key; refused: the seconds until it may try again. With `tx` (a
   * transaction of ctx.db, since 1.4) the count is part of that transaction: the points are kept
   * when it commits and not when it rolls back. A refused attempt counts too, so commit (having
   * written nothing else) and refuse after, rather than throw inside the transaction.
   */
  consume(key: string, points?: number, options?: { readonly tx?: PluginDatabase }): Promise<{ readonly allowed: true } | { readonly allowed: false; readonly retryAfterS: number }>;
  /** How much is used (for tests and status pages). */
  peek(key: string): Promise<{ readonly consumed: number; readonly retryAfterS: number }>;
  reset(key: string): Promise<void>;
}

export interface RateLimitOptions {
  /** Unique within the plugin; the host prefixes it with the plugin id. */
  readonly name: string;
  readonly points: number;
  readonly durationS: number;
  /** Once exhausted, refuse for this long instead of until the window ends. */
  readonly blockDurationS?: number;
}

/** What a handler gets: the validated request parts, typed from the route's schemas. */
export interface RouteInput<R extends RouteSpec> {
  readonly params: ParamsOf<R>;
  readonly query: QueryOf<R>;
  readonly body: BodyOf<R>;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The client's address (X-Forwarded-For only when the server's trust_proxy says so). */
  readonly ip: string;
  /** Who is calling, when the route's auth is not 'none'. */
  readonly principal: Principal | null;
  /**
   * Aborted when the client goes away before the answer is sent, or when the server begins to stop:
   * stop waiting (long polls) and answer with what you have. Since 1.1.
   */
  readonly signal: AbortSignal;
  /** The request body as bytes, for routes that declare `rawBody` (null otherwise): read it once, with your own size cap. Since 1.1. */
  readonly stream: AsyncIterable<Uint8Array> | null;
}

/** A full answer (status, body, headers), made by ctx.reply() or ctx.stream(). */
export interface RouteReply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A streamed answer's parts (ctx.stream()). */
export interface StreamReplyOptions {
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A handler's answer: the body for the route's first 2xx, or ctx.reply(…) for any other. */
export type RouteResult<R extends RouteSpec> = ResponseOf<R> | RouteReply;

export type RouteHandler<R extends RouteSpec> = (input: RouteInput<R>) => Promise<RouteResult<R>>;

export interface PluginRouter {
  /** Declares a route under /v1/<plugin id>; `spec.path` is relative to that. */
  route<R extends RouteSpec>(spec: R, handler: RouteHandler<R>): void;
}

/** Who made an authenticated request. */
export type Principal =
  | { readonly kind: 'token'; readonly id: string; readonly name: string; readonly role: 'publisher' | 'admin' }
  | { readonly kind: 'user'; readonly userId: string; readonly sessionId: string; readonly deviceId: string | null; readonly roles: readonly UserRole[]; readonly emailVerified: boolean };

export type UserRole = 'user' | 'publisher' | 'admin';

/**
 * Hooks: named events one plugin emits and others subscribe to. Every subscriber runs, in
 * dependency order, and emit() rejects if any of them does (after all have run).
 */
export interface PluginHooks {
  on<E extends keyof HookEvents>(event: E, handler: (payload: HookEvents[E]) => Promise<void>): void;
  emit<E extends keyof HookEvents>(event: E, payload: HookEvents[E]): Promise<void>;
}

/** Well-known hook payloads. */
export interface HookEvents {
  /** A user's account is being deleted: remove everything you keep for them. Runs before the account row goes. */
  'user.deleted': { readonly userId: string };
}

export interface PluginContext<Config = Record<string, unknown>> {
  readonly id: string;
  /**
   * 'server': inside `iqp server start`. 'command': inside a CLI command working on the data
   * directory (`iqp users …`), possibly beside a running server: no routes are served, start no
   * timers or background work, and keep nothing in memory another process might change.
   */
  readonly mode: 'server' | 'command';
  readonly log: PluginLogger;
  readonly clock: PluginClock;
  /** Available from start() on (reading it during register throws): frozen, validated, defaults applied, {"$env": NAME} resolved. */
  readonly config: Readonly<Config>;
  /** The plugin's own directory, `<data dir>/plugins/<id>/` (created 0700), for files such as keys. */
  readonly dataDir: string;
  readonly db: PluginDatabase;
  readonly routes: PluginRouter;
  readonly hooks: PluginHooks;
  /**
   * Writes an audit entry. With `tx` (since 1.3) it is written inside that transaction and commits
   * or rolls back with it: the entry exists exactly when what it records does, at no extra commit.
   */
  audit(entry: PluginAuditEntry, options?: { readonly tx?: PluginDatabase }): Promise<void>;
  rateLimit(options: RateLimitOptions): RateLimit;
  /** A counter for /v1/metrics (in command mode it counts nothing). Make each once, in register() or start(). Since 1.1. */
  counter(options: PluginCounterOptions): PluginCounter;
  /** The same plugin in the other processes serving this registry (workers). Since 1.2. */
  readonly peers: PluginPeers;
  /** Offers a service under a ref listed in the manifest's `provides`. Call during register(). */
  provide<T>(ref: ServiceRef<T>, implementation: T): void;
  /** A service another plugin (one this plugin `requires`) provides; call from start() on. */
  service<T>(ref: ServiceRef<T>): T;
  /** An answer other than the route's first 2xx body: `return ctx.reply(201, body, { Location: … })`. */
  reply(status: number, body?: unknown, headers?: Record<string, string>): RouteReply;
  /**
   * An answer written piece by piece as `body` yields them, with backpressure (exports, NDJSON).
   * Once the first piece is sent the status cannot change: a failure after that cuts the
   * connection, so the client sees a truncated body rather than a complete-looking one. Since 1.1.
   */
  stream(status: number, body: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>, options: StreamReplyOptions): RouteReply;
  /** A coded error answered with its catalog status (and `headers`, e.g. Retry-After). */
  error(code: ErrorCode, message: string, options?: { details?: Record<string, unknown>; headers?: Record<string, string> }): Error;
}

/**
 * Messages to this plugin's twins in the other processes serving the registry (the workers of
 * `iqp server start --workers N`), to act on a change at once rather than at their next poll.
 * Soon but not guaranteed: a process starting, or a server on another machine, does not get it,
 * so keep a backstop (polling the database). Nothing is sent in command mode or by a server
 * running alone.
 */
export interface PluginPeers {
  /** Sends a short text (at most 4 KiB) to every other process's instance of this plugin. */
  broadcast(message: string): void;
  /** Calls `handler` with each message the plugin's twins broadcast; register it in register() or start(). */
  onMessage(handler: (message: string) => void): void;
}

export interface PluginDefinition<Config = Record<string, unknown>> {
  readonly manifest: PluginManifest;
  /** Only declares: routes, services, hooks. No I/O. */
  register(ctx: PluginContext<Config>): Promise<void>;
  /** After migrations, in dependency order, within the start timeout. */
  start?(ctx: PluginContext<Config>): Promise<void>;
  /** On shutdown, in reverse order, within the stop deadline. */
  stop?(ctx: PluginContext<Config>): Promise<void>;
}

export function definePlugin<Config = Record<string, unknown>>(plugin: PluginDefinition<Config>): PluginDefinition<Config> {
  return plugin;
}

// ---- Well-known services ----------------------------------------------------------------------

/** What the auth plugin offers other plugins and the core (admin routes accept user tokens with a role through it). */
export interface AuthServiceV1 {
  /** Checks an access token (a JWT from /v1/auth/login or /refresh); null when it is not one this registry issued or it expired. */
  verifyAccessToken(token: string): Promise<Extract<Principal, { kind: 'user' }> | null>;
  /** Why verifyAccessToken refused, for the 401's error code: expired tokens get IQP_E_TOKEN_EXPIRED so apps refresh. */
  explainRejection(token: string): Promise<'expired' | 'invalid'>;
  /**
   * Whether a user exists and is not disabled. An access token stays valid until it expires, so a
   * plugin that keeps data per user asks this before writing it. With `tx` (the caller's open
   * transaction, on the same database) the answer is read inside it: an account deletion closes
   * the account before its user.deleted hooks run, so a write that saw it open is removed by them.
   */
  userActive(userId: string, tx?: PluginDatabase): Promise<boolean>;
  /**
   * Whether the user may use a capability now (`sync`): always once their email is verified,
   * before that only where the auth config's `unverified_may` lists it.
   */
  may(principal: Extract<Principal, { kind: 'user' }>, capability: 'sync'): boolean;
}

export const AUTH_V1: ServiceRef<AuthServiceV1> = serviceRef<AuthServiceV1>('auth.v1');

export type { TSchema };
/** Route declarations, so a plugin declares its routes as the core does without importing src/. */
export { route } from '../../src/api/route.js';
export type { BodyOf, HttpMethod, ParamsOf, QueryOf, ResponseOf, ResponseSpec, RouteAuth, RouteSpec } from '../../src/api/route.js';
export type { ErrorCode } from '../../src/errors.js';
/** TypeBox, for route and config schemas: `Type.Object({ email: Type.String({ maxLength: 320 }) })`. */
export { Type } from 'typebox';

/** One account, as the admin service shows it (never a password hash or a token). */
export interface AuthUserSummary {
  readonly id: string;
  readonly email: string;
  readonly role: UserRole;
  readonly emailVerified: boolean;
  readonly disabled: boolean;
  readonly createdAt: string;
}

/** One message the default mailer wrote to the outbox (`iqp auth outbox`). */
export interface AuthOutboxMessage {
  readonly id: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly createdAt: string;
}

/**
 * What `iqp users …` and `iqp auth …` do on a data directory (the CLI runs the plugin in 'command'
 * mode). `user` is an account's id or its email; `actor` goes to the audit log (`cli:users create`).
 */
export interface AuthAdminServiceV1 {
  listUsers(): Promise<AuthUserSummary[]>;
  createUser(input: { readonly email: string; readonly password: string; readonly role?: UserRole; readonly emailVerified?: boolean }, actor: string): Promise<AuthUserSummary>;
  /** Takes effect at the user's next refresh (access tokens already issued keep their roles until they expire). */
  setRole(user: string, role: UserRole, actor: string): Promise<AuthUserSummary>;
  /** Revokes every session of the user; disabled users cannot sign in or refresh. */
  setDisabled(user: string, disabled: boolean, actor: string): Promise<AuthUserSummary>;
  /** Emits `user.deleted` so other plugins remove their data, then removes the account. */
  deleteUser(user: string, actor: string): Promise<void>;
  /** A new signing key; the previous one keeps verifying until its last access token expires. */
  rotateKey(actor: string): Promise<{ readonly kid: string; readonly previousKid: string | null }>;
  readOutbox(): Promise<AuthOutboxMessage[]>;
}

export const AUTH_ADMIN_V1: ServiceRef<AuthAdminServiceV1> = serviceRef<AuthAdminServiceV1>('auth-admin.v1');

/** What `iqp sync …` does on a data directory (the CLI runs the sync plugin in 'command' mode). `userId` is an account id. */
export interface SyncAdminServiceV1 {
  /** Drops what no active device still needs (one user, or all); safe while clients sync. */
  compact(userId?: string): Promise<{ readonly users: number; readonly tombstones: number; readonly versions: number; readonly mutations: number }>;
  /** The user's export, line by line (NDJSON with its trailer). */
  exportLines(userId: string, actor: string): AsyncIterable<string>;
  /** Checks the whole file, then imports it in one transaction. */
  importFile(userId: string, mode: 'replace' | 'merge', source: AsyncIterable<Uint8Array | string>, actor: string): Promise<{ readonly imported: number; readonly head: number; readonly sha256: string }>;
  /** Per-user counts, for status pages (never payloads). */
  stats(userId?: string): Promise<{ readonly users: number; readonly entities: number; readonly tombstones: number; readonly conflicts_open: number; readonly devices: number }>;
}

export const SYNC_ADMIN_V1: ServiceRef<SyncAdminServiceV1> = serviceRef<SyncAdminServiceV1>('sync-admin.v1');
