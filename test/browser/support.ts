/**
 * What the browser test stands on: a real registry (auth + sync plugins) on 127.0.0.1 that allows
 * one web origin through CORS, a static server on another port serving the test app and the
 * compiled client as a web app's host would, and a Chromium whose browser contexts are devices.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { serverConfig } from '../../server/config.js';
import { AUTH_ADMIN_V1, type AuthAdminServiceV1 } from '../../server/plugins/api.js';
import { type RunningServer, startServer } from '../../server/start.js';
import type { Conflict, JsonObject, Op } from '../../src/sync-client/protocol.js';
import { PASSWORD, post } from '../auth/support.js';
import { ROOT, tempDir } from '../e2e/helpers.js';

/** Debian's Chromium unless IQP_CHROMIUM names another Chromium or Chrome (CI: /usr/bin/google-chrome). */
export const CHROMIUM = process.env['IQP_CHROMIUM'] || '/usr/bin/chromium';

const PAGE_DIR = join(ROOT, 'test', 'browser', 'page');
const CLIENT_DIR = join(ROOT, 'dist', 'src', 'sync-client');

export interface StaticSite {
  /** http://127.0.0.1:<port>: the web app's origin, which the registry must allow. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * The app's host: the test page, its script, and the compiled client under /sync-client/. Answers
 * may be cached for an hour, as a web app's shell is, so a tab reopened while offline still loads.
 */
export async function staticSite(): Promise<StaticSite> {
  if (!existsSync(join(CLIENT_DIR, 'index.js'))) throw new Error(`${CLIENT_DIR}/index.js is missing: run npm run build first`);
  const files: Record<string, string> = { '/': 'index.html', '/index.html': 'index.html', '/app.js': 'app.js' };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const lib = /^\/sync-client\/([a-z0-9-]+\.js)$/.exec(path);
    const file = lib ? join(CLIENT_DIR, lib[1]!) : files[path] ? join(PAGE_DIR, files[path]) : undefined;
    if (req.method !== 'GET' || file === undefined || !existsSync(file)) {
      res.writeHead(path === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    const type = file.endsWith('.html') ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8';
    res.writeHead(200, { 'content-type': type, 'cache-control': 'max-age=3600' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface BrowserRegistry {
  readonly base: string;
  readonly admin: AuthAdminServiceV1;
  /** A verified account with the test password. */
  createUser(email: string): Promise<void>;
  /** GET /v1/sync/export as the account (its own sign-in): entity/id → payload, checked against the trailer. */
  exportRows(email: string): Promise<Record<string, JsonObject>>;
  close(): Promise<void>;
}

/** Generous limits, so nothing here meets one. */
const ROOMY_AUTH = { per_ip: { points: 100_000, duration_s: 60 }, per_email_ip: { points: 100_000, duration_s: 60 }, mail_per_email: { points: 1000, duration_s: 60 } };
const ROOMY_SYNC = { push_per_user: { points: 1_000_000, duration_s: 60 }, pull_per_user: { points: 1_000_000, duration_s: 60 } };

/** `iqp server start` as test/sync/support.ts runs it (auth + sync, temp data dir, random port), allowing `origin` through CORS. */
export async function browserRegistry(origin: string): Promise<BrowserRegistry> {
  const dir = tempDir('iqp-browser-');
  const plugins = {
    auth: { enabled: true, source: 'builtin', required: true, config: { rate_limits: ROOMY_AUTH } },
    sync: { enabled: true, source: 'builtin', required: true, config: { rate_limits: ROOMY_SYNC } },
  };
  writeFileSync(join(dir, 'server.json'), JSON.stringify({ plugins }, null, 2));
  const logs: Record<string, unknown>[] = [];
  const config = serverConfig({ dataDir: dir, host: '127.0.0.1', port: 0, corsOrigins: [origin] });
  const running: RunningServer = await startServer(config, (line) => logs.push(line));
  const failed = running.plugins!.status().failed;
  if (failed.length > 0) {
    await running.close();
    throw new Error(`plugins failed: ${JSON.stringify(failed)}\n${JSON.stringify(logs)}`);
  }
  const admin = running.plugins!.service(AUTH_ADMIN_V1)!;
  const base = running.url;
  let checks = 0;
  return {
    base,
    admin,
    async createUser(email) {
      await admin.createUser({ email, password: PASSWORD }, 'cli:test');
    },
    async exportRows(email) {
      const login = await post(`${base}/v1/auth/login`, { email, password: PASSWORD, device_id: `export-check-${++checks}` });
      if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
      const res = await fetch(`${base}/v1/sync/export`, { headers: { authorization: `Bearer ${login.body.access_token}` } });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`export: ${res.status} ${text}`);
      const lines = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
      const trailer = lines.pop()?.trailer;
      if (trailer?.count !== lines.length) throw new Error(`export trailer ${JSON.stringify(trailer)} does not count ${lines.length} lines`);
      return Object.fromEntries(lines.map((l) => [`${l.entity}/${l.entity_id}`, l.payload as JsonObject]));
    },
    close: () => running.close(),
  };
}

/** What test/browser/page/app.js shows the test. */
export interface AppView {
  rows: Record<string, JsonObject>;
  pending: number;
  signedIn: boolean;
  status: string | null;
  online: boolean;
  conflicts: Conflict[];
  rejected: unknown[];
  statuses: string[];
  /** Pulls the client has sent so far. */
  pulls: number;
  /** The in-flight long polls, by their number among the pulls. */
  openPolls: number[];
  /** entity/id → the number of the pull whose answer brought it last. */
  arrivedOn: Record<string, number>;
}

interface PageApp {
  booted?: boolean;
  deviceId: string;
  signIn(email: string, password: string): Promise<void>;
  edit(entity: string, id: string, op: Op, payload?: JsonObject): Promise<string>;
  view(): Promise<AppView>;
  poll(token: string): AppView | null;
  endPoll(token: string): void;
}
/** The page's global object, as the functions handed to page.evaluate see it (no DOM library here). */
type PageGlobal = { app?: PageApp };

/** Bounded waits for everything the browser does: generous, since CI machines are slow, yet far under the test's budget. */
export const WAIT_MS = 15_000;

/** One device: a browser context (its own IndexedDB) with the app open in a tab. */
export class Device {
  private waits = 0;

  private constructor(
    readonly context: BrowserContext,
    public page: Page,
    private readonly url: string,
  ) {}

  static async open(browser: Browser, site: StaticSite, registry: BrowserRegistry, name: string): Promise<Device> {
    const context = await browser.newContext();
    const url = `${site.origin}/index.html?${new URLSearchParams({ registry: registry.base, name })}`;
    try {
      const d = new Device(context, await context.newPage(), url);
      await d.load();
      return d;
    } catch (err) {
      await context.close();
      throw err;
    }
  }

  private async load(): Promise<void> {
    const errors: string[] = [];
    this.page.on('pageerror', (err) => errors.push(err.message));
    await this.page.goto(this.url);
    try {
      await this.page.waitForFunction(() => (globalThis as PageGlobal).app?.booted === true, null, { timeout: WAIT_MS });
    } catch (err) {
      throw new Error(`the app did not start: ${errors.join('; ') || (err as Error).message}`);
    }
  }

  /** The tab is closed and the app opened again in a new one: only what the browser stored survives. */
  async reopen(): Promise<void> {
    await this.page.close();
    this.page = await this.context.newPage();
    await this.load();
  }

  /** Another tab of this device: the same browser context (so the same IndexedDB databases), the app open in it. */
  async openTab(): Promise<Device> {
    const tab = new Device(this.context, await this.context.newPage(), this.url);
    await tab.load();
    return tab;
  }

  /** Closes this tab only (the device's other tabs stay). */
  closeTab(): Promise<void> {
    return this.page.close();
  }

  deviceId(): Promise<string> {
    return this.page.evaluate(() => (globalThis as PageGlobal).app!.deviceId);
  }

  signIn(email: string, password = PASSWORD): Promise<void> {
    return this.page.evaluate(([e, p]) => (globalThis as PageGlobal).app!.signIn(e, p), [email, password] as const);
  }

  edit(entity: string, id: string, op: Op, payload?: JsonObject): Promise<string> {
    // The payload crosses as JSON text: Playwright's argument types recurse without end on JsonObject.
    const args = [entity, id, op, payload === undefined ? null : JSON.stringify(payload)] as const;
    return this.page.evaluate(([e, i, o, p]) => (globalThis as PageGlobal).app!.edit(e, i, o, p === null ? undefined : JSON.parse(p)), args);
  }

  view(): Promise<AppView> {
    return this.page.evaluate(() => (globalThis as PageGlobal).app!.view());
  }

  /**
   * Waits (bounded) until the app's view satisfies `cond`, a function shipped into the page as text
   * and run there on each view read since the wait began, with `arg`.
   */
  async until<A>(what: string, cond: (view: AppView, arg: A) => boolean, arg: A): Promise<void> {
    const token = `wait-${++this.waits}`;
    try {
      await this.page.waitForFunction(
        ([src, a, t]) => {
          const view = (globalThis as PageGlobal).app!.poll(t);
          // biome-ignore lint/security/noGlobalEval: the condition is the test's own function, shipped into the page as text.
          const check = globalThis.eval(`(${src})`) as (v: AppView, arg: unknown) => boolean;
          return view !== null && check(view, a);
        },
        [cond.toString(), arg, token] as const,
        { timeout: WAIT_MS, polling: 50 },
      );
    } catch (err) {
      throw new Error(`waited ${WAIT_MS} ms for ${what}; the app shows ${JSON.stringify(await this.view().catch((e) => String(e)))}`, { cause: err });
    } finally {
      await this.page.evaluate((t) => (globalThis as PageGlobal).app?.endPoll(t), token).catch(() => undefined);
    }
  }

  setOffline(offline: boolean): Promise<void> {
    return this.context.setOffline(offline);
  }

  close(): Promise<void> {
    return this.context.close();
  }
}
