import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EPOCH, iqp, listTree, tempDir, TEMPLATES } from './helpers.js';

let work: string;
let pack: string;

beforeAll(async () => {
  work = tempDir();
  cpSync(join(TEMPLATES, 'translation'), join(work, 'src'), { recursive: true });
  for (const name of ['author', 'stranger']) {
    expect((await iqp(['keygen', '--out', name, '--no-passphrase'], { cwd: work })).code).toBe(0);
  }
  const r = await iqp(['build', 'src', '--key', 'author.key', '--json'], { cwd: work, env: { SOURCE_DATE_EPOCH: EPOCH } });
  expect(r.code, r.stderr).toBe(0);
  pack = r.json().path;
});

describe('iqp inspect', () => {
  it('shows manifest, files, tables and signer without writing anything to disk', async () => {
    const cwd = tempDir();
    const tmp = tempDir('iqp-tmp-');
    const r = await iqp(['inspect', pack, '--json'], { cwd, env: { TMPDIR: tmp } });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.manifest.package_id).toBe('example.translation.en');
    expect(out.entries.map((e: { path: string }) => e.path)).toEqual(['manifest.json', 'content.sqlite', 'checksums.sha256', 'manifest.json.minisig']);
    expect(out.signature.key_id).toMatch(/^[0-9A-F]{16}$/);
    expect(out.manifest.tables.find((t: { name: string }) => t.name === 'translations').row_count).toBe(11);
    expect(listTree(cwd)).toEqual([]);
    expect(listTree(tmp)).toEqual([]);
    const human = await iqp(['inspect', pack], { cwd });
    expect(human.stdout).toContain('example.translation.en@1.0.0');
    expect(human.stdout).toMatch(/translations\s+11 rows/);
    expect(human.stdout).toContain(`signer: key ${out.signature.key_id}`);
  });

  it('reports a missing file as a usage error', async () => {
    const r = await iqp(['inspect', 'nope.iqp', '--json'], { cwd: work });
    expect(r.code).toBe(2);
    expect(r.json().error.code).toBe('IQP_E_FILE_NOT_FOUND');
  });
});

describe('iqp verify', () => {
  it('exits 0 and reports the signer when every check passes', async () => {
    const r = await iqp(['verify', pack, '--pubkey', 'author.pub'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^OK example\.translation\.en@1\.0\.0/);
    expect(r.stdout).toContain('signature: good');
  });

  it('accepts several keys and trusts the configured ones (IQP_TRUSTED_KEYS, config file)', async () => {
    expect((await iqp(['verify', pack, '-p', 'stranger.pub', '-p', 'author.pub'], { cwd: work })).code).toBe(0);
    expect((await iqp(['verify', pack], { cwd: work, env: { IQP_TRUSTED_KEYS: join(work, 'author.pub') } })).code).toBe(0);
    const cfgDir = tempDir();
    writeFileSync(join(cfgDir, 'cfg.json'), JSON.stringify({ trusted_keys: [join(work, 'author.pub')] }));
    expect((await iqp(['verify', pack, '--config', join(cfgDir, 'cfg.json')], { cwd: work })).code).toBe(0);
  });

  it('rejects a pack signed by another key (exit 1) and demands a key when none is given (exit 2)', async () => {
    const wrong = await iqp(['verify', pack, '--pubkey', 'stranger.pub', '--json'], { cwd: work });
    expect(wrong.code).toBe(1);
    expect(wrong.json().error.code).toBe('IQP_E_SIG_UNTRUSTED_KEY');
    const none = await iqp(['verify', pack, '--json'], { cwd: work });
    expect(none.code).toBe(2);
    expect(none.json().error.code).toBe('IQP_E_NO_TRUSTED_KEYS');
  });

  it('enforces --max-size before reading the content', async () => {
    const r = await iqp(['verify', pack, '--pubkey', 'author.pub', '--max-size', '1024', '--json'], { cwd: work });
    expect(r.code).toBe(1);
    expect(r.json().error.code).toBe('IQP_E_PACK_ENTRY_TOO_LARGE');
  });

  it('prints errors for people on stderr with a hint, and nothing on stdout', async () => {
    const r = await iqp(['verify', pack, '--pubkey', 'stranger.pub'], { cwd: work });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error IQP_E_SIG_UNTRUSTED_KEY: .+\n  hint: .+\n$/);
  });
});
