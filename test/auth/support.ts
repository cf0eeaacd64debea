/**
 * The auth plugin under test as it runs for real: `iqp server start`'s startServer on 127.0.0.1
 * with a random port, over a temp data directory whose server.json enables the built-in auth
 * plugin (and any fixture plugins a test adds), with the plugins' clock in the test's hands so
 * token lifetimes can be crossed without waiting. Its services are the running plugin's own.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CryptoKey, importJWK } from 'jose';
import manifest from '../../plugins/auth/iqp-plugin.json' with { type: 'json' };
import type { AuthConfig } from '../../plugins/auth/config.js';
import { KeySealer } from '../../plugins/auth/crypto/seal.js';
import { serverSecret } from '../../plugins/auth/crypto/secrets.js';
import { databasePath, serverConfig, type TrustProxy } from '../../server/config.js';
import { AUTH_ADMIN_V1, AUTH_V1, type AuthAdminServiceV1, type AuthServiceV1 } from '../../server/plugins/api.js';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { ROOT, tempDir } from '../e2e/helpers.js';

export class TestClock {
  /** Starts at the real time, so work done by another process (iqp auth rotate-key) lines up with it. */
  constructor(public ms = Date.now()) {}
  nowMs(): number {
    return this.ms;
  }
  now(): string {
    return new Date(this.ms).toISOString();
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** The config with the schema's defaults applied and `overrides` on top, as the host hands it over. */
export function configWith(overrides: Partial<AuthConfig> = {}): AuthConfig {
  const props = manifest.configSchema.properties as Record<string, { default?: unknown }>;
  const base: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) if (v.default !== undefined) base[k] = structuredClone(v.default);
  return { ...(base as unknown as AuthConfig), ...overrides };
}

export const FIXTURE_PLUGINS = join(ROOT, 'fixtures', 'plugins');

export interface AuthHarness {
  readonly dir: string;
  readonly clock: TestClock;
  /** A connection of its own to the registry's database, as another process would have. */
  readonly db: SqlitePluginDatabase;
  readonly config: AuthConfig;
  readonly auth: AuthServiceV1;
  readonly admin: AuthAdminServiceV1;
  readonly running: RunningServer;
  /** The registry's root URL. */
  readonly base: string;
  /** The registry's log lines so far (as `iqp server start` would print them, parsed). */
  readonly logs: readonly Record<string, unknown>[];
  /** /v1/auth. */
  readonly url: string;
  /** The auth plugin's audit entries, oldest first. */
  audit(): Promise<{ action: string; actor: string; target: string; details: string | null }[]>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly config?: Partial<AuthConfig>;
  readonly clock?: TestClock;
  readonly dir?: string;
  /** Fixture plugins (fixtures/plugins/<name>) to enable beside auth: id → config. */
  readonly fixtures?: Record<string, Record<string, unknown>>;
  /** Other built-in plugins (sync) to enable beside auth: id → config. */
  readonly builtins?: Record<string, Record<string, unknown>>;
  /** The server's trust_proxy, for tests that name the client's address in X-Forwarded-For. */
  readonly trustProxy?: TrustProxy;
}

/** Generous limits, so tests that are not about limits never meet one. */
const ROOMY = { per_ip: { points: 100_000, duration_s: 60 }, per_email_ip: { points: 100_000, duration_s: 60 }, mail_per_email: { points: 1000, duration_s: 60 } };

export async function authHarness(options: HarnessOptions = {}): Promise<AuthHarness> {
  const dir = options.dir ?? tempDir('iqp-auth-');
  const overrides = { rate_limits: ROOMY, ...options.config };
  const plugins: Record<string, unknown> = { auth: { enabled: true, source: 'builtin', required: true, config: overrides } };
  for (const [id, config] of Object.entries(options.builtins ?? {})) plugins[id] = { enabled: true, source: 'builtin', required: true, config };
  for (const [id, config] of Object.entries(options.fixtures ?? {})) plugins[id] = { enabled: true, source: join(FIXTURE_PLUGINS, id), required: true, config };
  writeFileSync(join(dir, 'server.json'), JSON.stringify({ plugins }, null, 2));
  const clock = options.clock ?? new TestClock();
  const logs: Record<string, unknown>[] = [];
  const running = await startServer(serverConfig({ dataDir: dir, host: '127.0.0.1', port: 0, ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }) }), (line) => logs.push(line), { pluginClock: clock });
  const failed = running.plugins!.status().failed;
  if (failed.length > 0) {
    await running.close();
    throw new Error(`plugins failed: ${JSON.stringify(failed)}\n${JSON.stringify(logs)}`);
  }
  const db = new SqlitePluginDatabase(databasePath(dir));
  return {
    dir,
    clock,
    db,
    config: configWith(overrides),
    auth: running.plugins!.service(AUTH_V1)!,
    admin: running.plugins!.service(AUTH_ADMIN_V1)!,
    running,
    base: running.url,
    logs,
    url: `${running.url}/v1/auth`,
    audit: () => db.all("SELECT action, actor, target, details FROM audit_log WHERE action LIKE 'auth.%' ORDER BY id"),
    async close() {
      db.close();
      await running.close();
    },
  };
}

/** JSON over HTTP: status, headers and parsed body. */
export async function post(url: string, body: unknown, token?: string, method = 'POST'): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export const PASSWORD = 'x7#kq2Lm-river-stone';

/** An account made through the admin service (verified), signed in over HTTP: its tokens. */
export async function signedIn(h: AuthHarness, email = 'ann@example.org', device?: string): Promise<{ access_token: string; refresh_token: string; user: any }> {
  if (!(await h.admin.listUsers()).some((u) => u.email === email)) await h.admin.createUser({ email, password: PASSWORD }, 'cli:test');
  const r = await post(`${h.url}/login`, { email, password: PASSWORD, ...(device ? { device_id: device } : {}) });
  if (r.status !== 200) throw new Error(`login: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The current signing key's private half, as an attacker who stole it (or a test forging claims) would hold it. */
export async function currentPrivateKey(h: AuthHarness): Promise<{ kid: string; key: CryptoKey }> {
  const row = await h.db.get<{ kid: string; private_jwk_sealed: string }>('SELECT kid, private_jwk_sealed FROM auth_signing_keys WHERE retired_at_ms IS NULL');
  const jwk = JSON.parse(openSealedKey(h.dir, row!.kid, row!.private_jwk_sealed));
  return { kid: row!.kid, key: (await importJWK(jwk, 'EdDSA')) as CryptoKey };
}

/** A private signing key's JWK text as the database holds it, opened with the data directory's server.key. */
export function openSealedKey(dir: string, kid: string, sealed: string): string {
  const jwk = new KeySealer(serverSecret(join(dir, 'plugins', 'auth'))).open(sealed, kid);
  if (jwk === null) throw new Error(`the signing key ${kid} does not open with ${dir}'s server.key`);
  return jwk;
}
