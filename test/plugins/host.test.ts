/**
 * The plugin host in a real registry: the out-of-tree hello plugin loaded by path (route, config
 * default and $env secret, migration, audit, rate limit, service, hook, error boundary), and each
 * broken fixture refused with its code, left out (503, degraded health) or, when required,
 * stopping the start.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PLUGIN_API_VERSION } from '../../server/plugins/api.js';
import { countersPath, openCounters } from '../../server/plugins/rate-limit.js';
import { databasePath, serverConfig } from '../../server/config.js';
import { migrateDataDir } from '../../server/datadir.js';
import { startServer } from '../../server/start.js';
import type { ErrorCode } from '../../src/errors.js';
import { tempDir } from '../e2e/helpers.js';
import { call, expectError } from '../server/http-client.js';
import { writeServerFile } from '../../server/plugins/server-file.js';
import { type EntrySpec, fixturePlugin, HELLO, type PluginRegistry, startWithPlugins, writePlugins } from './helpers.js';

let open: PluginRegistry[] = [];
afterEach(async () => {
  for (const r of open) await r.close();
  open = [];
});

async function start(plugins: Parameters<typeof startWithPlugins>[0]): Promise<PluginRegistry> {
  const reg = await startWithPlugins(plugins);
  open.push(reg);
  return reg;
}

describe('a working plugin', () => {
  it('serves its routes under /v1/<id> with its config, migration, audit and the core still answering', async () => {
    const reg = await start({ hello: HELLO });
    expect(reg.running.plugins!.status()).toEqual({ loaded: [{ id: 'hello', version: '1.2.0' }], failed: [] });
    const first = await call(reg.url, '/v1/hello/greet', { method: 'POST', json: { name: 'Ada' } });
    expect(first.status).toBe(200);
    // The default greeting applied; the table its migration made holds the row.
    expect(first.json()).toEqual({ message: 'Hello, Ada', count: 1, mode: 'server' });
    expect((await call(reg.url, '/v1/hello/greet', { method: 'POST', json: { name: 'Grace' } })).json().count).toBe(2);

    const health = await call(reg.url, '/v1/health');
    expect(health.status).toBe(200);
    expect(health.json().status).toBe('ok');

    const db = new Database(databasePath(reg.dataDir), { readonly: true });
    try {
      expect(db.prepare('SELECT plugin_id, migration_id FROM plugin_migrations').all()).toEqual([{ plugin_id: 'hello', migration_id: '0001-greetings' }]);
      expect(db.prepare("SELECT action, actor, target FROM audit_log WHERE action LIKE 'hello.%'").all()).toEqual([
        { action: 'hello.greeted', actor: 'anonymous', target: 'Ada' },
        { action: 'hello.greeted', actor: 'anonymous', target: 'Grace' },
      ]);
    } finally {
      db.close();
    }
  });

  it('validates requests against the route schema before the handler runs, and answers 405 for another method', async () => {
    const reg = await start({ hello: HELLO });
    const wrongMethod = await call(reg.url, '/v1/hello/greet');
    expectError(wrongMethod, 'IQP_E_METHOD_NOT_ALLOWED');
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    const r = await call(reg.url, '/v1/hello/greet', { method: 'POST', json: { name: '' } });
    expectError(r, 'IQP_E_INVALID_REQUEST');
    expect(r.json().error.details.field).toBe('body.name');
  });

  it('guards routes with the core tokens and passes the principal', async () => {
    const reg = await start({ hello: HELLO });
    expectError(await call(reg.url, '/v1/hello/secret-length'), 'IQP_E_UNAUTHORIZED');
    const tokens = reg.running.registry.services.tokens;
    const publisher = (await tokens.create('publisher', 'p', 'test')).token;
    const admin = (await tokens.create('admin', 'a', 'test')).token;
    expectError(await call(reg.url, '/v1/hello/secret-length', { token: publisher }), 'IQP_E_FORBIDDEN');
    const ok = await call(reg.url, '/v1/hello/secret-length', { token: admin });
    expect(ok.json()).toEqual({ length: process.env['IQP_TEST_HELLO_SECRET']!.length, caller: 'token' });
  });

  it('a handler that throws answers a coded 500 without internals, logs it with the plugin id, and the registry keeps answering', async () => {
    const reg = await start({ hello: HELLO });
    const r = await call(reg.url, '/v1/hello/boom');
    expectError(r, 'IQP_E_PLUGIN_FAILED');
    expect(r.body.toString()).not.toContain('kaboom');
    expect(r.body.toString()).not.toContain('/srv/hello');
    expect(reg.logs.some((l) => l['plugin'] === 'hello' && String(l['error']).includes('kaboom'))).toBe(true);
    expect((await call(reg.url, '/v1/packs/available')).status).toBe(200);
    expect((await call(reg.url, '/v1/hello/greet', { method: 'POST', json: { name: 'after' } })).status).toBe(200);
  });

  it('ctx.error keeps its status and headers (a rate limit refusing with Retry-After)', async () => {
    const reg = await start({ hello: HELLO });
    expect((await call(reg.url, '/v1/hello/limited')).status).toBe(204);
    expect((await call(reg.url, '/v1/hello/limited')).status).toBe(204);
    const refused = await call(reg.url, '/v1/hello/limited');
    expectError(refused, 'IQP_E_BUSY');
    const retry = Number(refused.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
  });

  it('a plugin that requires another starts after it and uses its service', async () => {
    const reg = await start({ fan: { fixture: 'fan' }, hello: HELLO });
    expect(reg.running.plugins!.status().loaded.map((p) => p.id)).toEqual(['hello', 'fan']);
    expect((await call(reg.url, '/v1/fan/cheer')).json()).toEqual({ message: 'Hello, fans' });
  });

  it('a disabled plugin is not loaded and its paths answer 404', async () => {
    const reg = await start({ hello: { ...HELLO, enabled: false } });
    expect(reg.running.plugins!.status()).toEqual({ loaded: [], failed: [] });
    expectError(await call(reg.url, '/v1/hello/greet', { method: 'POST', json: { name: 'x' } }), 'IQP_E_NOT_FOUND');
  });

  it('a start clears rate-limit counters whose window is over, and keeps the others', async () => {
    const dataDir = tempDir('iqp-plugins-limits-');
    await migrateDataDir(dataDir);
    const db = openCounters(databasePath(dataDir));
    db.prepare('INSERT INTO plugin_rate_limits (key, points, expire) VALUES (?, ?, ?), (?, ?, ?)').run('hello:greet:old', 5, Date.now() - 60_000, 'hello:greet:new', 1, Date.now() + 3_600_000);
    db.close();
    const reg = await startWithPlugins({ hello: HELLO }, dataDir);
    open.push(reg);
    const left = new Database(countersPath(databasePath(dataDir)), { readonly: true });
    expect(left.prepare('SELECT key FROM plugin_rate_limits').pluck().all()).toEqual(['hello:greet:new']);
    left.close();
  });

  it('a counters file SQLite cannot read stops the start with the file named and the fix; without it the start makes a fresh one', async () => {
    const dataDir = tempDir('iqp-plugins-limits-');
    await migrateDataDir(dataDir);
    const file = countersPath(databasePath(dataDir));
    writeFileSync(file, 'x'.repeat(4096));
    const refused = await startWithPlugins({ hello: HELLO }, dataDir).then(
      (reg) => {
        open.push(reg);
        return null;
      },
      (err: unknown) => err,
    );
    expect(refused).toMatchObject({ code: 'IQP_E_CONFIG', details: { file, sqlite: 'SQLITE_NOTADB' } });
    expect((refused as { hint: string }).hint).toContain('remove registry-rate-limits.sqlite');
    rmSync(file);
    const reg = await startWithPlugins({ hello: HELLO }, dataDir);
    open.push(reg);
    const fresh = new Database(file, { readonly: true });
    expect(fresh.prepare('SELECT count(*) FROM plugin_rate_limits').pluck().get()).toBe(0);
    fresh.close();
  });

  it('its data directory is <data>/plugins/<id>, 0700, made only when asked for', async () => {
    const reg = await start({ hello: HELLO });
    // hello keeps no files: nothing made.
    expect(existsSync(join(reg.dataDir, 'plugins', 'hello'))).toBe(false);
    expect(statSync(reg.dataDir).isDirectory()).toBe(true);
  });
});

/** A broken fixture left out (not required): 503 on its paths, degraded health naming it, others unharmed. */
const leftOut: [string, string, Parameters<typeof startWithPlugins>[0][string], ErrorCode, RegExp][] = [
  ['no register()', 'no-register', { fixture: 'no-register' }, 'IQP_E_PLUGIN_INVALID', /register/],
  ['a host range this iqp does not satisfy', 'future-host', { fixture: 'future-host' }, 'IQP_E_PLUGIN_HOST_UNSUPPORTED', new RegExp(`>=2\\.0\\.0.*${PLUGIN_API_VERSION.replaceAll('.', '\\.')}`)],
  ['register() throws', 'register-throws', { fixture: 'register-throws' }, 'IQP_E_PLUGIN_REGISTER', /missing widget/],
  ['its module never finishes loading', 'import-hangs', { fixture: 'import-hangs', start_timeout_ms: 1000 }, 'IQP_E_PLUGIN_INVALID', /cannot be loaded: its module \.\/index\.js did not finish loading within 1000 ms/],
  ['register() never finishes', 'register-hangs', { fixture: 'register-hangs', start_timeout_ms: 1000 }, 'IQP_E_PLUGIN_REGISTER', /register\(\) did not finish within 1000 ms/],
  ['start() never finishes', 'start-hangs', { fixture: 'start-hangs', start_timeout_ms: 1000 }, 'IQP_E_PLUGIN_START', /did not finish within 1000 ms/],
  ['start() throws', 'start-throws', { fixture: 'start-throws' }, 'IQP_E_PLUGIN_START', /start\(\) threw: database of widgets unreachable/],
  ['invalid config', 'hello', { ...HELLO, config: { ...HELLO.config, greeting: 42 } }, 'IQP_E_PLUGIN_CONFIG', /config greeting must be string/],
  ['a route the core answers', 'admin', { fixture: 'route-clash' }, 'IQP_E_PLUGIN_ROUTE_CONFLICT', /GET \/v1\/admin\/audit/],
  ['an id the core’s own tables are named after', 'audit', { fixture: 'reserved-id' }, 'IQP_E_PLUGIN_INVALID', /"audit" is reserved/],
  ['a required plugin missing', 'needs-missing', { fixture: 'needs-missing' }, 'IQP_E_PLUGIN_MISSING', /requires plugin absent/],
  ['a migration that fails', 'badmig', { fixture: 'badmig' }, 'IQP_E_PLUGIN_MIGRATION', /0001-broken failed and was rolled back: no such table/],
];

describe('a failing plugin that is not required is left out', () => {
  it.each(leftOut)('%s', async (_what, id, entry, code, message) => {
    const others: Record<string, EntrySpec> = id === 'hello' ? {} : { hello: HELLO };
    const reg = await start({ [id]: entry, ...others });
    const failed = reg.running.plugins!.status().failed;
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ id, code });
    expect(failed[0]!.message).toMatch(message);

    const health = await call(reg.url, '/v1/health');
    expect(health.status).toBe(200);
    expect(health.json().status).toBe('degraded');
    expect(health.json().plugins.failed).toEqual([{ id, code, message: failed[0]!.message }]);

    // Its paths answer 503 (unless another route owns them), the core and other plugins answer.
    const own = await call(reg.url, `/v1/${id}/ping`);
    expectError(own, 'IQP_E_PLUGIN_UNAVAILABLE');
    expect((await call(reg.url, '/v1/packs/available')).status).toBe(200);
    if (id !== 'hello') expect((await call(reg.url, '/v1/hello/greet', { method: 'POST', json: { name: 'still' } })).status).toBe(200);
    expect(reg.logs.some((l) => l['msg'] === 'plugin failed' && l['plugin'] === id && l['code'] === code)).toBe(true);
  });

  it('a failed migration leaves no table and no ledger row', async () => {
    const reg = await start({ badmig: { fixture: 'badmig' } });
    const db = new Database(databasePath(reg.dataDir), { readonly: true });
    try {
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'badmig%'").all()).toEqual([]);
      expect(db.prepare("SELECT * FROM plugin_migrations WHERE plugin_id = 'badmig'").all()).toEqual([]);
    } finally {
      db.close();
    }
  });

  it('whoever requires a failed plugin is left out too', async () => {
    const reg = await start({ fan: { fixture: 'fan' }, hello: { ...HELLO, config: {} } });
    const failed = reg.running.plugins!.status().failed;
    expect(failed.map((f) => [f.id, f.code])).toEqual([
      ['fan', 'IQP_E_PLUGIN_MISSING'],
      ['hello', 'IQP_E_PLUGIN_CONFIG'],
    ]);
    expectError(await call(reg.url, '/v1/fan/cheer'), 'IQP_E_PLUGIN_UNAVAILABLE');
  });
});

describe('a failing required plugin stops the start', () => {
  it.each(leftOut)('%s', async (_what, id, entry, code, message) => {
    const dataDir = tempDir('iqp-plugins-required-');
    writePlugins(dataDir, { [id]: { ...entry, required: true } });
    const logs: Record<string, unknown>[] = [];
    const err = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), (l) => logs.push(l)).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toContain(`Required plugin ${id} failed`);
    expect((err as Error).message).toMatch(message);
    // Nothing is left holding the directory: it can be started again at once.
    const again = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => undefined).catch((e: unknown) => e);
    expect(again).toMatchObject({ code });
  });
});

describe('two plugins providing one service', () => {
  it('run neither, before loading either one\'s code, each naming the other', async () => {
    // A second auth.v1 provider beside authish: its manifest says so; its module must never be loaded.
    const rival = join(tempDir('iqp-plugin-rival-'), 'rival');
    mkdirSync(rival);
    const manifest = JSON.parse(readFileSync(join(fixturePlugin('authish'), 'iqp-plugin.json'), 'utf8'));
    writeFileSync(join(rival, 'iqp-plugin.json'), JSON.stringify({ ...manifest, id: 'rival' }));
    writeFileSync(join(rival, 'index.js'), 'throw new Error("the rival module was loaded");\n');
    const dataDir = tempDir('iqp-plugins-rivals-');
    writeServerFile(dataDir, {
      plugins: {
        authish: { enabled: true, source: fixturePlugin('authish'), required: false, config: {} },
        rival: { enabled: true, source: rival, required: false, config: {} },
      },
    });
    const running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => undefined);
    try {
      const { failed, loaded } = running.plugins!.status();
      expect(loaded).toEqual([]);
      expect(failed).toEqual([
        { id: 'authish', code: 'IQP_E_PLUGIN_INVALID', message: expect.stringContaining('provides auth.v1, as rival does') },
        { id: 'rival', code: 'IQP_E_PLUGIN_INVALID', message: expect.stringContaining('provides auth.v1, as authish does') },
      ]);
      expect((await call(running.url, '/v1/health')).json()).toMatchObject({ status: 'degraded' });
    } finally {
      await running.close();
    }
  });
});

describe('route guards', () => {
  it("'user' routes take the access tokens of the plugin providing auth.v1; admin routes take API tokens or users with the role", async () => {
    const reg = await start({ authish: { fixture: 'authish' } });
    expectError(await call(reg.url, '/v1/authish/me'), 'IQP_E_UNAUTHORIZED');
    const expired = await call(reg.url, '/v1/authish/me', { token: 'expired-token' });
    // Expired, not just invalid: apps refresh on this code instead of signing in again.
    expectError(expired, 'IQP_E_TOKEN_EXPIRED');
    expect((await call(reg.url, '/v1/authish/me', { token: 'user-token' })).json()).toEqual({ kind: 'user', id: 'u-user-token' });

    expectError(await call(reg.url, '/v1/authish/admin', { token: 'user-token' }), 'IQP_E_FORBIDDEN');
    expect((await call(reg.url, '/v1/authish/admin', { token: 'admin-user-token' })).json()).toEqual({ kind: 'user', id: 'u-admin-user-token' });
    const admin = await reg.running.registry.services.tokens.create('admin', 'ops', 'test');
    expect((await call(reg.url, '/v1/authish/admin', { token: admin.token })).json()).toEqual({ kind: 'token', id: admin.record.id });
    expect(reg.running.plugins!.service({ id: 'auth.v1' })).not.toBeNull();
  });

  it('the core finds no auth.v1 when no plugin provides it', async () => {
    const reg = await start({ hello: HELLO });
    expect(reg.running.plugins!.service({ id: 'auth.v1' })).toBeNull();
  });
});
