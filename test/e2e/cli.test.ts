import { describe, expect, it } from 'vitest';
import { iqp, listTree, tempDir } from './helpers.js';

describe('iqp command line', () => {
  it('prints help and version with exit 0', async () => {
    const cwd = tempDir();
    const help = await iqp(['--help'], { cwd });
    expect(help.code).toBe(0);
    for (const cmd of ['init', 'build', 'inspect', 'verify', 'keygen', 'demo']) expect(help.stdout).toContain(cmd);
    const version = await iqp(['--version'], { cwd });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // -V answers without loading any command, and says the same.
    const short = await iqp(['-V'], { cwd });
    expect(short.code).toBe(0);
    expect(short.stdout).toBe(version.stdout);
    const sub = await iqp(['build', '--help'], { cwd });
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--unsigned');
  });

  it('answers usage mistakes with IQP_E_USAGE and exit 2, as JSON with --json', async () => {
    const cwd = tempDir();
    for (const args of [['frobnicate'], ['build', '--bogus'], ['verify'], ['build', '--level', '42', '--unsigned'], ['build', '--threads', '0', '--unsigned'], ['build', '--threads', 'two', '--unsigned']]) {
      const r = await iqp([...args, '--json'], { cwd });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json().error.code).toBe('IQP_E_USAGE');
    }
  });

  it('refuses IQP_THREADS that is not a thread count with IQP_E_CONFIG', async () => {
    const cwd = tempDir();
    for (const value of ['0', 'many', '65']) {
      const r = await iqp(['build', '--unsigned', '--json'], { cwd, env: { IQP_THREADS: value } });
      expect(r.code, value).toBe(2);
      expect(r.json().error, value).toMatchObject({ code: 'IQP_E_CONFIG' });
      expect(r.json().error.message).toMatch(/threads|IQP_THREADS/);
    }
    expect(listTree(cwd), 'nothing written').toEqual([]);
  });

  it('refuses a broken config file with IQP_E_CONFIG', async () => {
    const cwd = tempDir();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${cwd}/iqp.config.json`, '{"levle": 3}');
    const r = await iqp(['verify', 'x.iqp', '--json'], { cwd });
    expect(r.code).toBe(2);
    expect(r.json().error).toMatchObject({ code: 'IQP_E_CONFIG' });
    expect(r.json().error.message).toContain('levle');
  });

  it('demo runs keygen, init, build, inspect and verify on every template, then publishes, pulls and runs a release through a local registry', async () => {
    const cwd = tempDir();
    const r = await iqp(['demo', '--dir', 'demo', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.ok).toBe(true);
    expect(out.packs.map((p: { template: string }) => p.template)).toEqual(['translation', 'recitation', 'dataset', 'deck']);
    for (const p of out.packs) expect(p.signer_key_id).toBe(out.key_id);
    const files = listTree(`${cwd}/demo`);
    expect(files.filter((f) => f.endsWith('.iqp') && !f.includes('/'))).toHaveLength(4);
    expect(out.registry.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out.registry.published.map((p: { status: string }) => p.status)).toEqual(['published', 'published', 'published', 'published']);
    expect(out.registry.available).toHaveLength(4);
    expect(out.registry.pulled).toMatchObject({ package_id: out.packs[0].package_id, trust: 'pinned', signer_key_id: out.key_id });
    // The release lifecycle: validation fails without the deck, then the release is signed, served to app 1.4.0 only, pulled and withdrawn.
    expect(out.registry.release).toMatchObject({ validation_failures: ['role_missing'], sequence: 1, latest_for_app: { '0.9.0': null, '1.4.0': out.registry.release.id }, latest_after_deprecation: null });
    expect(out.registry.release.pulled).toHaveLength(3);
    expect(files).toContain(`pulled/${out.packs[0].package_id}-${out.packs[0].version}.iqp`);
    const verify = await iqp(['verify', out.packs[0].path, '--pubkey', 'demo/demo-signing.pub'], { cwd });
    expect(verify.code).toBe(0);
  });
});
