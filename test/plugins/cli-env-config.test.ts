/**
 * `{"$env": NAME}` values in a plugin's config, as `iqp plugins config` and `plugins list` judge
 * them without the server's environment: an environment variable is always a string, so a key that
 * takes a number or a boolean, or a key the plugin does not know, is refused before anything is
 * written; a string key is accepted (its pattern and length can only be judged at start), at any
 * depth, arrays included, exactly where the server resolves them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../server/plugins/config.js';
import { readPluginManifest } from '../../server/plugins/loader.js';
import { iqp } from '../e2e/helpers.js';
import { newRegistryDir } from '../server/helpers.js';

function run(dataDir: string, args: string[]) {
  return iqp(['plugins', ...args, '--data', dataDir], { cwd: dataDir, env: { HOME: dataDir } });
}

const serverJson = (dataDir: string) => readFileSync(join(dataDir, 'server.json'), 'utf8');

describe('iqp plugins config with {"$env": NAME} values', () => {
  it('refuses an $env value where the schema takes no string, or for a key the plugin does not know, and writes nothing', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-env-');
    expect((await run(dataDir, ['enable', 'auth'])).code).toBe(0);
    const before = serverJson(dataDir);
    const refused: [string, RegExp][] = [
      ['access_ttl_s={"$env":"TTL"}', /access_ttl_s .*TTL.*string.*must be integer/],
      ['colour={"$env":"COLOUR"}', /colour is not a setting this plugin knows/],
      ['smtp={"host":"mail.example","from":"a@b.example","secure":{"$env":"SMTP_SECURE"}}', /smtp\.secure .*SMTP_SECURE.*must be boolean/],
      ['google={"client_ids":[{"$env":"GID"}],"jwks_cooldown_s":{"$env":"COOL"}}', /google\.jwks_cooldown_s .*COOL.*must be integer/],
    ];
    for (const [set, message] of refused) {
      const r = await run(dataDir, ['config', 'auth', '--set', set, '--json']);
      expect(r.json().error?.code, set).toBe('IQP_E_PLUGIN_CONFIG');
      expect(r.json().error.message).toMatch(message);
      expect(r.code).toBe(2);
    }
    expect(serverJson(dataDir)).toBe(before);
  });

  it('accepts $env values for string keys, inside objects and arrays too, and the server resolves the same places', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-env-');
    expect((await run(dataDir, ['enable', 'auth'])).code).toBe(0);
    const sets = ['secret={"$env":"AUTH_SECRET"}', 'google={"client_ids":[{"$env":"GID"},"literal-id"]}', 'unverified_may=[{"$env":"UNVERIFIED"}]', 'smtp={"host":{"$env":"SMTP_HOST"},"from":"a@b.example"}'];
    const r = await run(dataDir, ['config', 'auth', ...sets.flatMap((s) => ['--set', s]), '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await run(dataDir, ['list', '--json'])).json().plugins[0]).toMatchObject({ id: 'auth', config_valid: true });

    const config = JSON.parse(serverJson(dataDir)).plugins.auth.config;
    const env = { AUTH_SECRET: 'A'.repeat(43), GID: 'client-1', UNVERIFIED: 'sync', SMTP_HOST: 'mail.example' };
    const resolved = resolveConfig(readPluginManifest('auth', 'builtin', dataDir), config, env);
    expect(resolved).toMatchObject({ secret: env.AUTH_SECRET, google: { client_ids: ['client-1', 'literal-id'] }, unverified_may: ['sync'], smtp: { host: 'mail.example' } });
  });

  it('plugins list names a hand-written $env value the server would refuse', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-env-');
    expect((await run(dataDir, ['enable', 'auth'])).code).toBe(0);
    const doc = JSON.parse(serverJson(dataDir));
    doc.plugins.auth.config = { access_ttl_s: { $env: 'TTL' } };
    writeFileSync(join(dataDir, 'server.json'), JSON.stringify(doc));
    const listed = (await run(dataDir, ['list', '--json'])).json().plugins[0];
    expect(listed).toMatchObject({ id: 'auth', config_valid: false });
    expect(listed.error).toMatch(/access_ttl_s .*TTL/);
  });
});
