/**
 * A small real plugin context for the auth plugin's tests until they run under the plugin host:
 * a real SqlitePluginDatabase on a temp file with the manifest's migrations applied, a clock the
 * test moves, an audit log it can read, fixed-window rate limits on that clock, and the plugin's
 * routes mounted on a real Express app (server/http/contract.ts) listening on 127.0.0.1.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { type ErrorRequestHandler } from 'express';
import { type CryptoKey, importJWK } from 'jose';
import manifest from '../../plugins/auth/iqp-plugin.json' with { type: 'json' };
import plugin from '../../plugins/auth/index.js';
import type { AuthConfig } from '../../plugins/auth/config.js';
import { createValidator, mountRoute, reply } from '../../server/http/contract.js';
import { codedError, sendError } from '../../server/http/errors.js';
import {
  AUTH_ADMIN_V1,
  AUTH_V1,
  type AuthAdminServiceV1,
  type AuthServiceV1,
  type HookEvents,
  type PluginAuditEntry,
  type PluginContext,
  type RateLimit,
  type RouteSpec,
} from '../../server/plugins/api.js';
import type { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { type ErrorCode, IqpError } from '../../src/errors.js';
import { tempDir } from '../e2e/helpers.js';
import { openDatabase, TestClock } from './db.js';

export { openDatabase, TestClock } from './db.js';

class CodedWithHeaders extends IqpError {
  headers: Record<string, string> | undefined;
}

/** The config with the schema's defaults applied, as the host would hand it over. */
export function defaultConfig(overrides: Partial<AuthConfig> = {}): AuthConfig {
  const props = manifest.configSchema.properties as Record<string, { default?: unknown }>;
  const base: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) if (v.default !== undefined) base[k] = structuredClone(v.default);
  return { ...(base as unknown as AuthConfig), ...overrides };
}

export interface AuthHarness {
  readonly dir: string;
  readonly clock: TestClock;
  readonly db: SqlitePluginDatabase;
  readonly ctx: PluginContext<AuthConfig>;
  readonly audit: PluginAuditEntry[];
  readonly deleted: string[];
  readonly auth: AuthServiceV1;
  readonly admin: AuthAdminServiceV1;
  readonly routes: { spec: RouteSpec; handler: (input: any) => Promise<unknown> }[];
  /** Base URL of the mounted routes (/v1/auth/…), once listen() ran. */
  url: string;
  listen(): Promise<string>;
  close(): Promise<void>;
}

export async function authHarness(options: { config?: Partial<AuthConfig>; dir?: string; clock?: TestClock; mode?: 'server' | 'command' } = {}): Promise<AuthHarness> {
  const dir = options.dir ?? tempDir('iqp-auth-');
  const pluginDir = join(dir, 'plugins', 'auth');
  mkdirSync(pluginDir, { recursive: true, mode: 0o700 });
  const db = openDatabase(dir);
  const clock = options.clock ?? new TestClock();
  const audit: PluginAuditEntry[] = [];
  const deleted: string[] = [];
  const services = new Map<string, unknown>();
  const routes: AuthHarness['routes'] = [];
  const hookHandlers: ((p: HookEvents['user.deleted']) => Promise<void>)[] = [async (p) => void deleted.push(p.userId)];
  const windows = new Map<string, { start: number; used: number }>();
  const config = Object.freeze(defaultConfig(options.config));

  const ctx: PluginContext<AuthConfig> = {
    id: 'auth',
    mode: options.mode ?? 'server',
    log: { info() {}, warn() {}, error() {} },
    clock,
    config,
    dataDir: pluginDir,
    db,
    routes: { route: (spec, handler) => void routes.push({ spec, handler: handler as never }) },
    hooks: {
      on: (_e, h) => void hookHandlers.push(h),
      emit: async (_e, p) => {
        for (const h of hookHandlers) await h(p);
      },
    },
    audit: async (e) => void audit.push({ ...e, action: `auth.${e.action}` }),
    rateLimit: (o): RateLimit => {
      const key = (k: string) => `${o.name}:${k}`;
      const state = (k: string) => {
        const w = windows.get(key(k));
        if (!w || clock.nowMs() - w.start >= o.durationS * 1000) return { start: clock.nowMs(), used: 0 };
        return w;
      };
      const retry = (w: { start: number }) => Math.max(1, Math.ceil((w.start + o.durationS * 1000 - clock.nowMs()) / 1000));
      return {
        consume: async (k, points = 1) => {
          const w = state(k);
          w.used += points;
          windows.set(key(k), w);
          return w.used <= o.points ? { allowed: true } : { allowed: false, retryAfterS: retry(w) };
        },
        peek: async (k) => ({ consumed: state(k).used, retryAfterS: retry(state(k)) }),
        reset: async (k) => void windows.delete(key(k)),
      };
    },
    provide: (ref, impl) => void services.set(ref.id, impl),
    service: (ref) => services.get(ref.id) as never,
    reply: (status, body, headers) => reply(status, body, headers),
    error: (code: ErrorCode, message, o) => {
      const e = new CodedWithHeaders(code, message, o?.details);
      e.headers = o?.headers;
      return e;
    },
  };

  await plugin.register(ctx);
  await plugin.start?.(ctx);
  let server: import('node:http').Server | null = null;

  const h: AuthHarness = {
    dir,
    clock,
    db,
    ctx,
    audit,
    deleted,
    auth: services.get(AUTH_V1.id) as AuthServiceV1,
    admin: services.get(AUTH_ADMIN_V1.id) as AuthAdminServiceV1,
    routes,
    url: '',
    async listen() {
      const app = express();
      app.set('trust proxy', false);
      const router = express.Router();
      const ajv = createValidator();
      const guard = (spec: RouteSpec) => async (req: express.Request, res: express.Response, next: express.NextFunction) => {
        const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
        const principal = m ? await h.auth.verifyAccessToken(m[1]!) : null;
        if (!principal) {
          const why = m ? await h.auth.explainRejection(m[1]!) : 'invalid';
          return next(new IqpError(why === 'expired' ? 'IQP_E_TOKEN_EXPIRED' : 'IQP_E_UNAUTHORIZED', 'Sign in.'));
        }
        if (spec.auth !== 'user' && !principal.roles.includes(spec.auth as never)) return next(new IqpError('IQP_E_FORBIDDEN', 'Role.'));
        res.locals['principal'] = principal;
        next();
      };
      for (const r of routes) {
        mountRoute(
          router,
          ajv,
          r.spec,
          (input, req, res) =>
            r.handler({ ...input, headers: req.headers, ip: req.socket.remoteAddress ?? '', principal: (res.locals['principal'] as unknown) ?? null }),
          { guard, validateResponses: true },
        );
      }
      app.use('/v1/auth', router);
      const onError: ErrorRequestHandler = (err, _req, res, _next) => {
        for (const [k, v] of Object.entries((err as CodedWithHeaders).headers ?? {})) res.setHeader(k, v);
        if (codedError(err).httpStatus >= 500 && codedError(err).code !== 'IQP_E_BUSY') console.error(err);
        sendError(res, codedError(err));
      };
      app.use(onError);
      server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      h.url = `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1/auth`;
      return h.url;
    },
    async close() {
      if (server) await new Promise((r) => server!.close(() => r(undefined)));
      await plugin.stop?.(ctx);
      db.close();
    },
  };
  return h;
}

/** JSON over HTTP to the harness: status, headers and parsed body. */
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
  const row = await h.db.get<{ kid: string }>('SELECT kid FROM auth_signing_keys WHERE retired_at_ms IS NULL');
  const jwk = JSON.parse(readFileSync(join(h.dir, 'plugins', 'auth', 'keys', `${row!.kid}.jwk`), 'utf8'));
  return { kid: row!.kid, key: (await importJWK(jwk, 'EdDSA')) as CryptoKey };
}
