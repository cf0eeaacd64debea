/**
 * `iqp plugins …` run at the same time on one data directory (an operator's script, two admins, a
 * provisioning tool in parallel): each command reads server.json, changes its entry and writes it
 * back, and every change that printed success must be in the file afterwards.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withFileLock } from '../../server/lock.js';
import { SERVER_FILE_LOCK } from '../../server/plugins/server-file.js';
import { IqpError } from '../../src/errors.js';
import { ROOT, iqp, tempDir } from '../e2e/helpers.js';
import { newRegistryDir } from '../server/helpers.js';
import { fixturePlugin } from './helpers.js';

function run(dataDir: string, args: string[]) {
  return iqp(['plugins', ...args, '--data', dataDir], { cwd: dataDir, env: { HOME: dataDir } });
}

const plugins = (dataDir: string) => JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')).plugins;

describe('iqp plugins run concurrently', () => {
  it('keeps every change: six enables, a disable and a config started at once', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-concurrent-');
    expect((await run(dataDir, ['enable', fixturePlugin('hello')])).code).toBe(0);
    expect((await run(dataDir, ['enable', fixturePlugin('no-register')])).code).toBe(0);
    const fixtures = ['fan', 'typed', 'keeper', 'authish', 'start-throws', 'start-hangs'];
    const results = await Promise.all([
      ...fixtures.map((f) => run(dataDir, ['enable', fixturePlugin(f)])),
      run(dataDir, ['config', 'hello', '--set', 'greeting=Salaam']),
      run(dataDir, ['disable', 'no-register']),
    ]);
    for (const r of results) expect(r.stderr).not.toContain('IQP_E_');
    expect(results.map((r) => r.code)).toEqual(results.map(() => 0));
    const file = plugins(dataDir);
    expect(Object.keys(file).sort()).toEqual(['authish', 'fan', 'hello', 'keeper', 'no-register', 'start-hangs', 'start-throws', 'typed']);
    expect(file.hello.config).toEqual({ greeting: 'Salaam' });
    expect(file['no-register'].enabled).toBe(false);
  });

  it('takes over the lock of a command killed while holding it: the system released it with the process', async () => {
    const dataDir = await newRegistryDir('iqp-plugins-concurrent-');
    const lock = join(dataDir, SERVER_FILE_LOCK);
    const holder = spawn(
      process.execPath,
      ['--input-type=module', '-e', `const { withFileLock } = await import(${JSON.stringify(join(ROOT, 'dist', 'server', 'lock.js'))}); withFileLock(${JSON.stringify(lock)}, 0, () => new Error('busy'), () => { console.log('held'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => holder.stdout.setEncoding('utf8').once('data', () => resolve()));
    expect(() => withFileLock(lock, 0, () => new IqpError('IQP_E_SERVER_FILE_LOCKED', 'held'), () => 'taken')).toThrow(expect.objectContaining({ code: 'IQP_E_SERVER_FILE_LOCKED' }));
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    holder.kill('SIGKILL');
    await exited;
    const r = await run(dataDir, ['enable', fixturePlugin('hello')]);
    expect(r.stderr).not.toContain('IQP_E_');
    expect(r.code).toBe(0);
    expect(Object.keys(plugins(dataDir))).toEqual(['hello']);
  });

  it('refuses to wait for ever: a lock held past the wait is IQP_E_SERVER_FILE_LOCKED', () => {
    const lock = join(tempDir('iqp-plugins-lock-'), SERVER_FILE_LOCK);
    const busy = () => new IqpError('IQP_E_SERVER_FILE_LOCKED', 'busy');
    const inner = () => withFileLock(lock, 20, busy, () => 'inner');
    // SQLite counts a second lock in the same process as another holder, so this waits its 20 ms and gives up.
    const whileHeld = withFileLock(lock, 0, busy, () => {
      try {
        return inner();
      } catch (err) {
        return (err as IqpError).code;
      }
    });
    expect(whileHeld).toBe('IQP_E_SERVER_FILE_LOCKED');
    expect(inner()).toBe('inner');
  });
});
