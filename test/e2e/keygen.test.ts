import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { iqp, listTree, sh, tempDir } from './helpers.js';

describe('iqp keygen', () => {
  it('writes a minisign key pair; the secret key is 0600 and minisign verifies what it signs', async () => {
    const cwd = tempDir();
    const r = await iqp(['keygen', '--out', 'ci', '--no-passphrase', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.key_id).toMatch(/^[0-9A-F]{16}$/);
    expect(out.encrypted).toBe(false);
    expect(statSync(join(cwd, 'ci.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(cwd, 'ci.pub'), 'utf8')).toMatch(new RegExp(`^untrusted comment: minisign public key ${out.key_id}\\nRW[A-Za-z0-9+/]{54}\\n$`));
    // minisign signs with the iqp secret key, and verifies with the iqp public key.
    writeFileSync(join(cwd, 'msg.txt'), 'hello\n');
    const signed = sh('minisign', ['-S', '-s', 'ci.key', '-m', 'msg.txt', '-t', 'made by minisign'], cwd);
    expect(signed.code, signed.stderr).toBe(0);
    const verified = sh('minisign', ['-V', '-p', 'ci.pub', '-m', 'msg.txt'], cwd);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('made by minisign');
  });

  it('encrypts the secret key with IQP_PASSPHRASE (minisign scrypt), which minisign can use', async () => {
    const cwd = tempDir();
    const r = await iqp(['keygen', '--out', 'release'], { cwd, env: { IQP_PASSPHRASE: 'correct horse' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('passphrase-protected');
    expect(r.stdout + r.stderr).not.toContain('correct horse');
    writeFileSync(join(cwd, 'm'), 'x');
    const signed = sh('minisign', ['-S', '-s', 'release.key', '-m', 'm'], cwd, 'correct horse\n');
    expect(signed.code, signed.stderr).toBe(0);
    expect(sh('minisign', ['-V', '-p', 'release.pub', '-m', 'm'], cwd).code).toBe(0);
  }, 60_000);

  it('needs a passphrase source without a terminal, and writes nothing', async () => {
    const cwd = tempDir();
    const r = await iqp(['keygen', '--json'], { cwd });
    expect(r.code).toBe(2);
    expect(r.json().error.code).toBe('IQP_E_PASSPHRASE_REQUIRED');
    expect(listTree(cwd)).toEqual([]);
  });

  it('refuses to overwrite an existing key unless --force', async () => {
    const cwd = tempDir();
    expect((await iqp(['keygen', '--no-passphrase'], { cwd })).code).toBe(0);
    const before = readFileSync(join(cwd, 'iqp.key'), 'utf8');
    const again = await iqp(['keygen', '--no-passphrase', '--json'], { cwd });
    expect(again.code).toBe(2);
    expect(again.json().error.code).toBe('IQP_E_KEY_EXISTS');
    expect(readFileSync(join(cwd, 'iqp.key'), 'utf8')).toBe(before);
    expect((await iqp(['keygen', '--no-passphrase', '--force'], { cwd })).code).toBe(0);
    expect(readFileSync(join(cwd, 'iqp.key'), 'utf8')).not.toBe(before);
    expect(listTree(cwd)).toEqual(['iqp.key', 'iqp.pub']);
  });
});
