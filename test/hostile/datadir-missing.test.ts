/**
 * The commands that administer a registry on its host (token, users, auth, sync, plugins, backup)
 * refuse a data directory that holds no registry, so a mistyped --data never becomes a new, empty
 * registry with a token that no server will accept. Only `iqp server start` and `iqp server
 * migrate` (and restore) make one. Each case runs the real binary and checks the code, the exit
 * status, that the message names the directory and the hint the command that makes a registry,
 * and that nothing was created.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp, listTree, tempDir } from '../e2e/helpers.js';

const COMMANDS: ReadonlyArray<readonly string[]> = [
  ['token', 'create', '--role', 'admin'],
  ['token', 'list'],
  ['token', 'revoke', '0123456789ab'],
  ['users', 'list'],
  ['users', 'create', 'ann@example.org'],
  ['auth', 'outbox'],
  ['auth', 'rotate-key'],
  ['sync', 'stats'],
  ['sync', 'compact'],
  ['sync', 'export', '--user', 'ann@example.org', '--out', 'export.ndjson'],
  ['sync', 'import', 'import.ndjson', '--user', 'ann@example.org', '--mode', 'merge'],
  ['plugins', 'list'],
  ['plugins', 'enable', 'auth'],
  ['plugins', 'disable', 'auth'],
  ['plugins', 'config', 'auth'],
  ['server', 'backup', '--out', 'registry.iqpbak'],
];

async function refused(cwd: string, data: string, args: readonly string[]): Promise<void> {
  const r = await iqp([...args, '--data', data, '--json'], { cwd, env: { IQP_USER_PASSWORD: 'x7#kq2Lm-river-stone' } });
  const err = r.json().error;
  expect([r.code, err?.code], `${args.join(' ')}: ${r.stdout}`).toEqual([2, 'IQP_E_FILE_NOT_FOUND']);
  expect(err.message).toContain(`No registry in ${data}`);
  expect(err.hint).toContain(`iqp server migrate --data ${data}`);
  expect(r.stderr).toBe('');
}

describe('a data directory without a registry', () => {
  it.each(COMMANDS.map((c) => [c.slice(0, 2).join(' '), c] as const))('iqp %s refuses a mistyped --data, creating nothing', async (_name, args) => {
    const cwd = tempDir('iqp-nodata-');
    writeFileSync(join(cwd, 'import.ndjson'), '');
    await refused(cwd, join(cwd, 'dta'), args);
    expect(existsSync(join(cwd, 'dta'))).toBe(false);
    expect(listTree(cwd)).toEqual(['import.ndjson']);
  });

  it('an existing, empty directory holds no registry either: refused, and left empty', async () => {
    const cwd = tempDir('iqp-nodata-');
    const data = join(cwd, 'data');
    mkdirSync(data);
    for (const args of [['token', 'create', '--role', 'admin'], ['plugins', 'enable', 'auth']]) await refused(cwd, data, args);
    expect(listTree(data)).toEqual([]);
  });

  it('`iqp server migrate` makes the registry, and then the first token works', async () => {
    const cwd = tempDir('iqp-nodata-');
    const made = await iqp(['server', 'migrate', '--data', 'data', '--json'], { cwd });
    expect(made.code, made.stdout).toBe(0);
    const token = await iqp(['token', 'create', '--role', 'admin', '--data', 'data', '--json'], { cwd });
    expect(token.code, token.stdout).toBe(0);
    expect(token.json().token).toMatch(/^iqp_/);
  });
});
