/**
 * What a script or a pipe sees: a usage error is said once, and with --json it is the one JSON
 * document on stdout with nothing on stderr; --version answers in JSON too; a reader that goes
 * away (`iqp build --help | head -1`) ends the run quietly, without a stack trace.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, baseEnv, iqp, listTree, tempDir } from '../e2e/helpers.js';

describe('iqp output on usage errors, --version and closed pipes', () => {
  it('says an unknown flag once, on stderr, with its code and hint', async () => {
    const cwd = tempDir();
    for (const args of [['build', '--bogus'], ['--bogus'], ['keys', 'list', '--bogus'], ['server', 'start', '--bogus']]) {
      const r = await iqp(args, { cwd });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr.match(/--bogus/g), `${args.join(' ')}\n${r.stderr}`).toHaveLength(1);
      expect(r.stderr).toMatch(/^error IQP_E_USAGE: unknown option '--bogus'\n {2}hint: /);
    }
    expect(listTree(cwd)).toEqual([]);
  });

  it('with --json, a usage error is the one JSON document on stdout and stderr stays empty', async () => {
    const cwd = tempDir();
    for (const args of [['build', '--bogus'], ['--bogus'], ['frobnicate'], ['keys', 'remove'], ['token', 'create', '--role', 'root'], ['build', '--level']]) {
      const r = await iqp([...args, '--json'], { cwd });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.json().error, args.join(' ')).toMatchObject({ code: 'IQP_E_USAGE' });
    }
    // --json before the command counts too.
    const r = await iqp(['--json', 'build', '--bogus'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.json().error.code).toBe('IQP_E_USAGE');
  });

  it('a group without its command names the commands it has; with --json without the help text', async () => {
    const cwd = tempDir();
    const r = await iqp(['keys', '--json'], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    expect(r.json().error).toMatchObject({ code: 'IQP_E_USAGE', message: 'iqp keys needs a command: add, list, remove.' });
    const human = await iqp(['token'], { cwd });
    expect(human.code).toBe(2);
    expect(human.stderr).toContain('Usage: iqp token');
    expect(human.stderr).toContain('error IQP_E_USAGE: iqp token needs a command: create, list, revoke.');
  });

  it('--json --version prints {"version": …}, in either order', async () => {
    const cwd = tempDir();
    const plain = await iqp(['--version'], { cwd });
    const version = plain.stdout.trim();
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    for (const args of [['--json', '--version'], ['--version', '--json'], ['-V', '--json']]) {
      const r = await iqp(args, { cwd });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.json(), args.join(' ')).toEqual({ version });
    }
  });

  it('ends quietly when the reader of stdout has gone (iqp build --help | head -1)', async () => {
    const cwd = tempDir();
    for (const args of [['build', '--help'], ['--help'], ['--version'], ['verify', '--bogus', '--json']]) {
      // The read end is closed before iqp writes a byte, so its first write meets EPIPE every time.
      const child = spawn(process.execPath, [BIN, ...args], { cwd, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      expect(stderr, args.join(' ')).toBe('');
      expect(code, args.join(' ')).toBe(args.includes('--bogus') ? 2 : 0);
    }
  });

  it('ends quietly when the reader of stderr has gone', async () => {
    const cwd = tempDir();
    const child = spawn(process.execPath, [BIN, 'build', '--bogus'], { cwd, env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stderr.destroy();
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    expect(stdout).toBe('');
    expect(code).toBe(2);
  });
});
