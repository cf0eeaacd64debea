import { COMMANDS } from '../cli.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/e2e/helpers.js';
import { DEFAULT_SERVER } from '../../server/config.js';
import { isIqpError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';
import { loadConfig, longFlag } from './config.js';
import { renderSettingsTable, TABLE_END, TABLE_START } from './settings-doc.js';
import { boolean, int, names, oneOf, path, paths, type Source, size, trustProxy, url } from './setting-types.js';
import { type Setting, SETTINGS } from './settings.js';

const FLAG: Source = { kind: 'flag', name: '--n', base: '/work' };
const ENV: Source = { kind: 'env', name: 'IQP_N', base: '/work' };
const FILE: Source = { kind: 'file', name: '/etc/iqp.json: "n"', base: '/etc' };

function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    if (isIqpError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('did not fail');
}

describe('setting types', () => {
  it('int takes canonical decimal digits only, and a range', () => {
    const t = int(0, 100);
    for (const ok of ['0', '7', '100']) expect(t.parse(ok, FLAG)).toBe(Number(ok));
    expect(t.parse(42, FILE)).toBe(42);
    for (const bad of ['0x2', '1e1', ' 12', '12 ', '-0', '12abc', '+3', '1.0', '', '007', '0b1', '٣', '1_0']) {
      expect(failure(() => t.parse(bad, FLAG)), bad).toEqual({ code: 'IQP_E_USAGE', message: expect.stringContaining('--n') });
      expect(failure(() => t.parse(bad, ENV)), bad).toEqual({ code: 'IQP_E_CONFIG', message: expect.stringContaining('IQP_N') });
    }
    for (const bad of [1.5, -1, Number.MAX_SAFE_INTEGER + 1, true, null, [], {}]) expect(failure(() => t.parse(bad, FILE)).code, String(bad)).toBe('IQP_E_CONFIG');
    expect(failure(() => t.parse('101', FLAG)).message).toBe('--n must be from 0 to 100 (got "101").');
    expect(failure(() => t.parse(101, FILE)).message).toBe('/etc/iqp.json: "n": must be from 0 to 100 (got 101).');
  });

  it('size is an int in bytes shown with its unit', () => {
    const t = size(1, 2 ** 40);
    expect(t.parse('1024', ENV)).toBe(1024);
    expect(t.show(8 * 1024 ** 3)).toBe('8589934592 (8 GiB)');
    expect(t.show(1000)).toBe('1000');
    expect(failure(() => t.parse('0', FLAG)).code).toBe('IQP_E_USAGE');
  });

  it('paths resolve against the source: the working directory or the config file’s folder', () => {
    expect(path.parse('k.key', FLAG)).toBe('/work/k.key');
    expect(path.parse('k.key', FILE)).toBe('/etc/k.key');
    expect(path.parse('/abs/k.key', FILE)).toBe('/abs/k.key');
    expect(failure(() => path.parse('', ENV)).code).toBe('IQP_E_CONFIG');
    expect(paths.parse('a.pub:/b.pub', ENV)).toEqual(['/work/a.pub', '/b.pub']);
    expect(paths.parse(['a.pub'], FILE)).toEqual(['/etc/a.pub']);
    expect(paths.parse(['a.pub', 'b.pub'], FLAG)).toEqual(['/work/a.pub', '/work/b.pub']);
    expect(failure(() => paths.parse('a.pub', FILE)).code).toBe('IQP_E_CONFIG');
    expect(failure(() => paths.parse([''], FILE)).code).toBe('IQP_E_CONFIG');
  });

  it('url, names, boolean and oneOf', () => {
    expect(url.parse('https://packs.example.org//', FLAG)).toBe('https://packs.example.org');
    for (const bad of ['ftp://x', 'packs.example.org', '']) expect(failure(() => url.parse(bad, FLAG)).code, bad).toBe('IQP_E_USAGE');
    expect(names.parse('stable, beta,stable', ENV)).toEqual(['stable', 'beta']);
    expect(failure(() => names.parse(['Stable'], FILE)).code).toBe('IQP_E_CONFIG');
    expect(failure(() => names.parse('', ENV)).code).toBe('IQP_E_CONFIG');
    expect([boolean.parse('1', ENV), boolean.parse('false', ENV), boolean.parse(true, FILE), boolean.parse(true, FLAG)]).toEqual([true, false, true, true]);
    expect(failure(() => boolean.parse('yes', ENV)).code).toBe('IQP_E_CONFIG');
    expect(oneOf(['pack', 'release']).parse('release', FLAG)).toBe('release');
    expect(failure(() => oneOf(['pack', 'release']).parse('key', FLAG)).code).toBe('IQP_E_USAGE');
  });

  it('trust_proxy takes false, a hop count, or addresses and CIDRs; never true', () => {
    expect(trustProxy.parse('false', ENV)).toBe(false);
    expect(trustProxy.parse(false, FILE)).toBe(false);
    expect(trustProxy.parse('2', FLAG)).toBe(2);
    expect(trustProxy.parse(1, FILE)).toBe(1);
    expect(trustProxy.parse('loopback', FLAG)).toEqual(['loopback']);
    expect(trustProxy.parse('10.0.0.0/8, ::1,uniquelocal', ENV)).toEqual(['10.0.0.0/8', '::1', 'uniquelocal']);
    expect(trustProxy.parse(['192.168.1.1', 'fc00::/7'], FILE)).toEqual(['192.168.1.1', 'fc00::/7']);
    for (const bad of ['true', '0', '0x1', '10.0.0.0/33', '::1/129', '10.0.0.0/8/1', 'proxy.example', '', '10.0.0.1,']) {
      expect(failure(() => trustProxy.parse(bad, FLAG)).code, bad).toBe('IQP_E_USAGE');
    }
    expect(failure(() => trustProxy.parse(true, FILE)).code).toBe('IQP_E_CONFIG');
  });
});

describe('loadConfig', () => {
  it('takes flag over IQP_* over the config file over the default, and repeatable flags add to the list', () => {
    const dir = tempDir('iqp-settings-unit-');
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, 'conf', 'c.json'), JSON.stringify({ level: 3, port: 9000, trusted_keys: ['f.pub'], trust_proxy: 'loopback' }));
    const load = (env: NodeJS.ProcessEnv, command?: string, values: Record<string, unknown> = {}) =>
      loadConfig(dir, { HOME: dir, IQP_CONFIG: 'conf/c.json', ...env }, undefined, command ? { command, values } : undefined);
    expect(loadConfig(dir, { HOME: dir }).level).toBe(6);
    expect(load({}).level).toBe(3);
    expect(load({ IQP_LEVEL: '4' }).level).toBe(4);
    expect(load({ IQP_LEVEL: '4' }, 'build', { level: '5' }).level).toBe(5);
    // A flag counts only for a command that takes it.
    expect(load({ IQP_LEVEL: '4' }, 'verify', { level: '5' }).level).toBe(4);
    expect(load({}, 'verify', { pubkey: ['a.pub', 'b.pub'] }).trustedKeys).toEqual([join(dir, 'a.pub'), join(dir, 'b.pub'), join(dir, 'conf', 'f.pub')]);
    expect(load({}).trustProxy).toEqual(['loopback']);
    expect(load({ IQP_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(load({}, 'server start', { trustProxy: '2' }).trustProxy).toBe(2);
    // A broken lower source fails even under a flag: the same config fails the same way every time.
    expect(failure(() => load({ IQP_PORT: 'x' }, 'server start', { port: '1' })).code).toBe('IQP_E_CONFIG');
  });

  it('takes the registry defaults from DEFAULT_SERVER', () => {
    const config = loadConfig(tempDir('iqp-settings-unit-'), {});
    for (const [name, value] of Object.entries(DEFAULT_SERVER)) {
      if (name !== 'maxContentBytes') expect(config[name as keyof typeof config], name).toEqual(value);
    }
  });
});

describe('the settings table', () => {
  it('names commands and flags the CLI has, each once per command', async () => {
    // Every command the CLI has, groups' subcommands as "group sub".
    const commands = new Map<string, Command>();
    for (const [, load] of COMMANDS) {
      const entry = await load();
      if ('group' in entry) for (const m of entry.commands) commands.set(`${entry.group().name()} ${m.define().name()}`, m.define());
      else commands.set(entry.define().name(), entry.define());
    }
    for (const [name, s] of Object.entries(SETTINGS) as [string, Setting][]) {
      for (const command of s.commands ?? []) {
        const cmd = commands.get(command);
        expect(cmd, `${name}: iqp ${command}`).toBeDefined();
        expect(cmd!.options.filter((o) => o.long === longFlag(s.flag!)), `${name}: iqp ${command} ${s.flag}`).toHaveLength(1);
      }
    }
  });

  it(`is the README's configuration table (run: npm run build && node dist/scripts/settings-table.js)`, () => {
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf(TABLE_START);
    const end = readme.indexOf(TABLE_END);
    expect(start, `README.md has no "${TABLE_START}" marker`).toBeGreaterThanOrEqual(0);
    const expected = renderSettingsTable();
    const actual = readme.slice(start, end + TABLE_END.length);
    if (actual !== expected) expect.fail(`The README's configuration table differs from src/cli/settings.ts. Expected:\n\n${expected}\n`);
  });
});
