/** server.json is checked on every read and refused by key; written atomically, readable by its owner only. */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readServerFile, writeServerFile } from '../../server/plugins/server-file.js';
import { iqp, tempDir } from '../e2e/helpers.js';

const bad: [string, string, RegExp][] = [
  ['not JSON', '{"plugins": ', /not valid JSON/],
  ['an unknown top-level key', '{"plugin": {}}', /"plugin" is not a known setting/],
  ['plugins not an object', '{"plugins": []}', /"plugins" must be an object/],
  ['a bad plugin id', '{"plugins": {"Hello": {"source": "builtin"}}}', /"plugins\.Hello" is not a plugin id/],
  ['no source', '{"plugins": {"hello": {"enabled": true}}}', /"plugins\.hello\.source" must be/],
  ['enabled not a boolean', '{"plugins": {"hello": {"source": "builtin", "enabled": "yes"}}}', /"plugins\.hello\.enabled" must be true or false/],
  ['a start timeout out of range', '{"plugins": {"hello": {"source": "builtin", "start_timeout_ms": 0}}}', /"plugins\.hello\.start_timeout_ms" must be a whole number/],
  ['an unknown plugin setting', '{"plugins": {"hello": {"source": "builtin", "requried": true}}}', /"plugins\.hello\.requried" is not a known setting/],
  ['config not an object', '{"plugins": {"hello": {"source": "builtin", "config": "x"}}}', /"plugins\.hello\.config" must be an object/],
];

describe('server.json', () => {
  it('missing means no plugins', () => {
    expect(readServerFile(tempDir('iqp-server-file-'))).toEqual({ plugins: {} });
  });

  it.each(bad)('refuses %s with IQP_E_CONFIG naming the key', (_what, text, message) => {
    const dir = tempDir('iqp-server-file-');
    writeFileSync(join(dir, 'server.json'), text);
    expect(() => readServerFile(dir)).toThrow(expect.objectContaining({ code: 'IQP_E_CONFIG', message: expect.stringMatching(message) }));
  });

  it('round-trips with defaults filled in, written 0600', () => {
    const dir = tempDir('iqp-server-file-');
    writeFileSync(join(dir, 'server.json'), '{"plugins": {"hello": {"source": "/opt/hello"}}}');
    const file = readServerFile(dir);
    expect(file).toEqual({ plugins: { hello: { enabled: true, source: '/opt/hello', required: false, config: {} } } });
    writeServerFile(dir, file);
    expect(statSync(join(dir, 'server.json')).mode & 0o777).toBe(0o600);
    expect(readServerFile(dir)).toEqual(file);
  });

  it('a broken one stops iqp server start before it serves (exit 2) and iqp plugins list names the key', async () => {
    const dir = tempDir('iqp-server-file-');
    writeFileSync(join(dir, 'server.json'), '{"plugins": {"hello": {"source": "builtin", "requried": true}}}');
    const start = await iqp(['server', 'start', '--data', dir, '--port', '0'], { cwd: dir, env: { HOME: dir } });
    expect(start.code).toBe(2);
    expect(start.stderr).toContain('error IQP_E_CONFIG');
    expect(start.stderr).not.toContain('listening');
    const list = await iqp(['plugins', 'list', '--data', dir, '--json'], { cwd: dir, env: { HOME: dir } });
    expect(list.code).toBe(2);
    expect(list.json().error.message).toContain('plugins.hello.requried');
  });
});
