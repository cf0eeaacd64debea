/**
 * `iqp plugins …` and `iqp server start` with plugins, through the real binary: enabling the
 * out-of-tree hello plugin by path, configuring it (checked before writing, secrets masked),
 * refusing what would break, and a real server serving it, leaving it out, or refusing to start.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, baseEnv, iqp, tempDir } from '../e2e/helpers.js';
import { buildTemplatePack, call, createTokenCli, expectError, newKey, newRegistryDir, packRows, registerKey, spawnServer, upload, withDatabase } from '../server/helpers.js';
import { fixturePlugin } from './helpers.js';

const SECRET_ENV = 'HELLO_TEST_CLI_SECRET'; // not IQP_*: the test environment drops those
const SECRET = 'a secret long enough';

function run(dataDir: string, args: string[]) {
  return iqp(['plugins', ...args, '--data', dataDir], { cwd: dataDir, env: { HOME: dataDir, [SECRET_ENV]: SECRET } });
}

const serverJson = (dataDir: string) => readFileSync(join(dataDir, 'server.json'), 'utf8');

async function stopServer(s: Awaited<ReturnType<typeof spawnServer>>): Promise<void> {
  s.child.kill('SIGTERM');
  expect((await s.exited).code).toBe(0);
}

describe('iqp plugins', () => {
  it('enables a built-in plugin in a registry no server has started on yet (made by iqp server migrate)', async () => {
    const parent = tempDir('iqp-plugins-cli-new-');
    const dataDir = join(parent, 'registry-data');
    expect((await iqp(['server', 'migrate', '--data', dataDir], { cwd: parent, env: { HOME: parent } })).code).toBe(0);
    const r = await iqp(['plugins', 'enable', 'auth', '--data', dataDir], { cwd: parent, env: { HOME: parent } });
    expect(r.stdout + r.stderr).toContain('Enabled auth');
    expect(r.code).toBe(0);
    expect(JSON.parse(serverJson(dataDir)).plugins.auth).toMatchObject({ enabled: true, source: 'builtin' });
  });

  it('enables a plugin by path, configures it, lists it, and masks literal secrets', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-cli-');
    const enabled = await run(dataDir, ['enable', fixturePlugin('hello'), '--json']);
    expect(enabled.code).toBe(0);
    expect(enabled.stderr).toBe('');
    expect(enabled.json()).toMatchObject({ id: 'hello', version: '1.2.0', source: fixturePlugin('hello'), enabled: true, required: false, config_valid: false });
    expect(enabled.json().error).toMatch(/secret is required/);

    const before = serverJson(dataDir);
    const bad = await run(dataDir, ['config', 'hello', '--set', 'greeting=42', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json().error.code).toBe('IQP_E_PLUGIN_CONFIG');
    expect(bad.json().error.message).toMatch(/greeting must be string/);
    expect(serverJson(dataDir)).toBe(before);

    const unknown = await run(dataDir, ['config', 'hello', '--set', 'colour=blue']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('IQP_E_PLUGIN_CONFIG');
    expect(serverJson(dataDir)).toBe(before);

    const literal = await run(dataDir, ['config', 'hello', '--set', `secret=${SECRET}`, '--set', 'greeting=Salaam']);
    expect(literal.code).toBe(0);
    expect(literal.stdout).not.toContain(SECRET);
    expect(literal.stdout).toContain('********');
    expect(literal.stdout).toContain('Salaam');
    expect(literal.stderr).toContain('next `iqp server start`');

    const env = await run(dataDir, ['config', 'hello', '--set', `secret={"$env":"${SECRET_ENV}"}`, '--unset', 'greeting', '--json']);
    expect(env.json()).toEqual({ id: 'hello', config: { secret: { $env: SECRET_ENV } }, changed: true });
    expect(JSON.parse(serverJson(dataDir)).plugins.hello.config).toEqual({ secret: { $env: SECRET_ENV } });

    const listed = await run(dataDir, ['list', '--json']);
    expect(listed.json().plugins).toEqual([{ id: 'hello', version: '1.2.0', source: fixturePlugin('hello'), enabled: true, required: false, config_valid: true }]);
  });

  it('refuses to disable a plugin another enabled plugin requires, and writes nothing', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-cli-');
    expect((await run(dataDir, ['enable', fixturePlugin('hello')])).code).toBe(0);
    expect((await run(dataDir, ['enable', fixturePlugin('fan')])).code).toBe(0);
    const before = serverJson(dataDir);
    const refused = await run(dataDir, ['disable', 'hello', '--json']);
    expect(refused.code).toBe(2);
    expect(refused.json().error).toMatchObject({ code: 'IQP_E_PLUGIN_REQUIRED', details: { plugin: 'hello', required_by: ['fan'] } });
    expect(serverJson(dataDir)).toBe(before);
    expect((await run(dataDir, ['disable', 'fan'])).code).toBe(0);
    expect((await run(dataDir, ['disable', 'hello'])).code).toBe(0);
    expect(Object.values(JSON.parse(serverJson(dataDir)).plugins).map((p) => (p as { enabled: boolean }).enabled)).toEqual([false, false]);
  });

  it('refuses to enable a second provider of a service an enabled plugin provides, and writes nothing', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-cli-');
    expect((await run(dataDir, ['enable', 'auth'])).code).toBe(0);
    const before = serverJson(dataDir);
    const refused = await run(dataDir, ['enable', fixturePlugin('authish'), '--json']);
    expect(refused.code).toBe(2);
    expect(refused.json().error).toMatchObject({ code: 'IQP_E_PLUGIN_PROVIDED', details: { plugin: 'authish', provided_by: 'auth', services: ['auth.v1'] } });
    expect(serverJson(dataDir)).toBe(before);
    // With the first one disabled, the other may take its place; enabling the first again is refused in turn.
    expect((await run(dataDir, ['disable', 'auth'])).code).toBe(0);
    expect((await run(dataDir, ['enable', fixturePlugin('authish')])).code).toBe(0);
    const back = await run(dataDir, ['enable', 'auth']);
    expect(back.code).toBe(2);
    expect(back.stderr).toContain('IQP_E_PLUGIN_PROVIDED');
    expect(back.stderr).toContain('iqp plugins disable authish');
  });

  it('enable sets and clears required and the start timeout, and keeps them when not named', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-cli-');
    const entry = () => JSON.parse(serverJson(dataDir)).plugins.hello;
    expect((await run(dataDir, ['enable', fixturePlugin('hello'), '--required', '--start-timeout-ms', '45000'])).code).toBe(0);
    expect(entry()).toMatchObject({ required: true, start_timeout_ms: 45000 });
    // Enabling again (a new source, say) changes neither.
    const again = await run(dataDir, ['enable', fixturePlugin('hello'), '--json']);
    expect(again.json()).toMatchObject({ required: true, start_timeout_ms: 45000 });
    expect(entry()).toMatchObject({ required: true, start_timeout_ms: 45000 });
    // The runbook's way out of a required plugin that stops the start.
    const optional = await run(dataDir, ['enable', 'hello', '--no-required', '--json']);
    expect(optional.code).toBe(0);
    expect(optional.json()).toMatchObject({ required: false });
    expect(entry()).toMatchObject({ required: false, start_timeout_ms: 45000 });

    const before = serverJson(dataDir);
    for (const bad of ['0', '600001', '1.5', 'soon']) {
      const refused = await run(dataDir, ['enable', 'hello', '--start-timeout-ms', bad, '--json']);
      expect(refused.code).toBe(2);
      expect(refused.json().error.code).toBe('IQP_E_USAGE');
      expect(refused.json().error.message).toContain('--start-timeout-ms');
    }
    expect(serverJson(dataDir)).toBe(before);
  });

  it('refuses what is not a plugin, with nothing written', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-cli-');
    const notPlugin = await run(dataDir, ['enable', dataDir, '--json']);
    expect(notPlugin.code).toBe(1);
    expect(notPlugin.json().error.code).toBe('IQP_E_PLUGIN_INVALID');
    const future = await run(dataDir, ['enable', fixturePlugin('future-host'), '--json']);
    expect(future.json().error.code).toBe('IQP_E_PLUGIN_HOST_UNSUPPORTED');
    const missing = await run(dataDir, ['disable', 'nope', '--json']);
    expect(missing.json().error.code).toBe('IQP_E_PLUGIN_MISSING');
    expect(() => serverJson(dataDir)).toThrow();
  });
});

describe('iqp plugins with npm packages', () => {
  it('enables an installed package by name (resolved from the data directory) and lists it; a source gone missing is named', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-npm-');
    const pkg = join(dataDir, 'node_modules', 'iqp-plugin-notes');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'iqp-plugin-notes', version: '0.3.0', type: 'module', exports: { './iqp-plugin.json': './iqp-plugin.json', '.': './index.js' } }));
    writeFileSync(join(pkg, 'iqp-plugin.json'), JSON.stringify({ id: 'notes', version: '0.3.0', host: '^1.0.0', entry: './index.js' }));
    writeFileSync(join(pkg, 'index.js'), 'export default {};');
    const enabled = await run(dataDir, ['enable', 'iqp-plugin-notes', '--json']);
    expect(enabled.json()).toMatchObject({ id: 'notes', version: '0.3.0', source: 'iqp-plugin-notes' });
    expect((await run(dataDir, ['list', '--json'])).json().plugins).toEqual([{ id: 'notes', version: '0.3.0', source: 'iqp-plugin-notes', enabled: true, required: false, config_valid: true }]);

    rmSync(pkg, { recursive: true });
    const gone = (await run(dataDir, ['list', '--json'])).json().plugins[0];
    expect(gone).toMatchObject({ id: 'notes', version: null, config_valid: false });
    expect(gone.error).toMatch(/"iqp-plugin-notes" is not installed/);
    const unknown = await run(dataDir, ['enable', 'no-such-plugin-package', '--json']);
    expect(unknown.json().error.code).toBe('IQP_E_PLUGIN_MISSING');
  });
});

describe('iqp server start with plugins', () => {
  it('serves an enabled plugin; disabled, its routes are gone (404) and packs are untouched', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-serve-');
    await run(dataDir, ['enable', fixturePlugin('hello')]);
    await run(dataDir, ['config', 'hello', '--set', `secret={"$env":"${SECRET_ENV}"}`]);
    process.env[SECRET_ENV] = SECRET; // spawnServer passes the test's environment on
    const admin = await createTokenCli(dataDir, 'admin');
    const key = newKey();
    const pack = await buildTemplatePack(tempDir('iqp-plugins-pack-'), key);

    const first = await spawnServer(dataDir);
    expect(first.info).toMatchObject({ plugins: { loaded: [{ id: 'hello', version: '1.2.0' }], failed: [] } });
    await registerKey(first.url, admin, key);
    expect((await upload(first.url, admin, pack.path)).status).toBe(201);
    expect((await call(first.url, '/v1/hello/greet', { method: 'POST', json: { name: 'Ada' } })).json()).toMatchObject({ message: 'Hello, Ada', count: 1 });
    await stopServer(first);

    expect((await run(dataDir, ['disable', 'hello'])).code).toBe(0);
    const second = await spawnServer(dataDir);
    expectError(await call(second.url, '/v1/hello/greet', { method: 'POST', json: { name: 'Ada' } }), 'IQP_E_NOT_FOUND');
    const versions = await call(second.url, `/v1/packs/${pack.package_id}`);
    expect(versions.json().versions.map((v: { version: string }) => v.version)).toEqual([pack.version]);
    expect((await call(second.url, '/v1/health')).json().status).toBe('ok');
    await stopServer(second);
    expect(packRows(dataDir)).toHaveLength(1);
    // Its data stays: enabling it again finds its rows.
    expect(withDatabase(dataDir, (db) => db.prepare('SELECT count(*) AS n FROM hello_greetings').get())).toEqual({ n: 1 });
  });

  it('says on stderr which plugins started and which failed', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-serve-');
    await run(dataDir, ['enable', fixturePlugin('hello')]);
    await run(dataDir, ['config', 'hello', '--set', `secret=${SECRET}`]);
    await run(dataDir, ['enable', fixturePlugin('start-throws')]);
    const child = spawn(process.execPath, [BIN, 'server', 'start', '--data', dataDir, '--port', '0'], { cwd: dataDir, env: baseEnv({ HOME: dataDir }) });
    let stderr = '';
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await new Promise<void>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('plugins started') && stderr.includes('plugin start-throws failed')) resolve();
      });
    });
    child.kill('SIGTERM');
    await exited;
    expect(stderr).toContain('plugins started: hello@1.2.0');
    expect(stderr).toMatch(/plugin start-throws failed .*IQP_E_PLUGIN_START.*database of widgets unreachable/);
  });

  it('exits non-zero naming a required plugin that fails, and serves nothing', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-serve-');
    await run(dataDir, ['enable', fixturePlugin('start-throws'), '--required']);
    const r = await iqp(['server', 'start', '--data', dataDir, '--port', '0'], { cwd: dataDir, env: { HOME: dataDir } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/error IQP_E_PLUGIN_START: Required plugin start-throws failed/);
    expect(r.stderr).not.toContain('listening');
  });
});
