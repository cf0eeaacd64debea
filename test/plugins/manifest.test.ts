/**
 * iqp-plugin.json is checked strictly before any plugin code runs: each malformed manifest is
 * refused with its code and the field named.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLUGIN_API_VERSION } from '../../server/plugins/api.js';
import { readManifest } from '../../server/plugins/manifest.js';
import { tempDir } from '../e2e/helpers.js';

const GOOD = { id: 'notes', version: '1.0.0', host: '^1.0.0', entry: './index.js' };

function pluginDir(manifest: unknown, files: Record<string, string> = { 'index.js': 'throw new Error("never run while reading the manifest");' }): string {
  const dir = tempDir('iqp-plugin-manifest-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'iqp-plugin.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return dir;
}

const cases: [string, unknown, string, RegExp][] = [
  ['not JSON', '{ "id": ', 'IQP_E_PLUGIN_INVALID', /not valid JSON/],
  ['an upper-case id', { ...GOOD, id: 'Notes' }, 'IQP_E_PLUGIN_INVALID', /manifest\.id must match pattern/],
  ['an id too long', { ...GOOD, id: `a${'b'.repeat(32)}` }, 'IQP_E_PLUGIN_INVALID', /manifest\.id/],
  ['an unknown field', { ...GOOD, hooks: [] }, 'IQP_E_PLUGIN_INVALID', /manifest\.hooks is not a known field/],
  ['no entry', { id: 'notes', version: '1.0.0', host: '^1.0.0' }, 'IQP_E_PLUGIN_INVALID', /manifest\.entry is required/],
  ['a version that is not semver', { ...GOOD, version: '1.0' }, 'IQP_E_PLUGIN_INVALID', /version "1\.0" is not a semver version/],
  ['a host that is not a range', { ...GOOD, host: 'latest' }, 'IQP_E_PLUGIN_INVALID', /host "latest" is not a semver range/],
  ['a host range this iqp does not satisfy', { ...GOOD, host: '^2.0.0' }, 'IQP_E_PLUGIN_HOST_UNSUPPORTED', new RegExp(`plugin API is ${PLUGIN_API_VERSION.replaceAll('.', '\\.')}\\.$`)],
  ['a requirement with a bad range', { ...GOOD, requires: { auth: 'soon' } }, 'IQP_E_PLUGIN_INVALID', /requires\.auth "soon" is not a semver range/],
  ['a requirement of itself', { ...GOOD, requires: { notes: '^1.0.0' } }, 'IQP_E_PLUGIN_INVALID', /requires\.notes names the plugin itself/],
  ['a bad requirement id', { ...GOOD, requires: { '../x': '^1.0.0' } }, 'IQP_E_PLUGIN_INVALID', /requires/],
  ['a provided ref without a version', { ...GOOD, provides: ['auth'] }, 'IQP_E_PLUGIN_INVALID', /manifest\.provides\.0/],
  ['a config schema that is not an object schema', { ...GOOD, configSchema: { type: 'string' } }, 'IQP_E_PLUGIN_INVALID', /configSchema must be an object schema/],
  ['a config schema that does not compile', { ...GOOD, configSchema: { type: 'object', properties: { a: { type: 'strnig' } } } }, 'IQP_E_PLUGIN_INVALID', /configSchema does not compile/],
  ['duplicate migration ids', { ...GOOD, migrations: [{ id: '0001-a', sqlite: '' }, { id: '0001-a', sqlite: '' }] }, 'IQP_E_PLUGIN_INVALID', /migrations\[1\]\.id "0001-a" appears twice/],
  ['migrations out of order', { ...GOOD, migrations: [{ id: '0002-b', sqlite: '' }, { id: '0001-a', sqlite: '' }] }, 'IQP_E_PLUGIN_INVALID', /sorts before "0002-b"/],
  ['an entry outside the directory', { ...GOOD, entry: '../index.js' }, 'IQP_E_PLUGIN_INVALID', /entry "\.\.\/index\.js" is outside the plugin's directory/],
  ['an absolute entry', { ...GOOD, entry: '/etc/passwd' }, 'IQP_E_PLUGIN_INVALID', /outside the plugin's directory/],
  ['an entry that does not exist', { ...GOOD, entry: './missing.js' }, 'IQP_E_PLUGIN_INVALID', /"\.\/missing\.js" does not exist/],
  ['a start timeout of zero', { ...GOOD, startTimeoutMs: 0 }, 'IQP_E_PLUGIN_INVALID', /startTimeoutMs/],
];

describe('plugin manifests', () => {
  it('a good one is read without running the plugin', () => {
    expect(readManifest(pluginDir(GOOD))).toMatchObject({ id: 'notes', version: '1.0.0', entry: './index.js' });
  });

  it.each(cases)('refuses %s', (_what, manifest, code, message) => {
    const dir = pluginDir(manifest);
    let err: unknown;
    try {
      readManifest(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toMatch(message);
  });

  it('refuses an entry that links outside the directory', () => {
    const outside = tempDir('iqp-plugin-outside-');
    writeFileSync(join(outside, 'evil.js'), 'export default {};');
    const dir = pluginDir({ ...GOOD, entry: './lib/index.js' }, {});
    mkdirSync(join(dir, 'lib'));
    symlinkSync(join(outside, 'evil.js'), join(dir, 'lib', 'index.js'));
    expect(() => readManifest(dir)).toThrow(expect.objectContaining({ code: 'IQP_E_PLUGIN_INVALID', message: expect.stringMatching(/links outside/) }));
  });

  it('refuses a directory without iqp-plugin.json', () => {
    expect(() => readManifest(tempDir('iqp-plugin-empty-'))).toThrow(expect.objectContaining({ code: 'IQP_E_PLUGIN_INVALID', message: expect.stringMatching(/not an iqp plugin/) }));
  });
});
