/**
 * Paths that name the wrong thing: a folder that does not exist, a file where a folder is expected
 * and the other way round, an output that is one of the build's own inputs. Each case runs the real
 * binary and checks the code, the exit status, that the message names the path the user gave (never
 * an internal temp file), and that nothing was written or overwritten.
 */
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEMP_MARKER } from '../../src/atomic.js';
import { iqp, listTree, tempDir, TEMPLATES } from '../e2e/helpers.js';

let work: string;

beforeAll(async () => {
  work = tempDir('iqp-paths-');
  cpSync(join(TEMPLATES, 'translation'), join(work, 'src'), { recursive: true });
  for (const args of [
    ['keygen', '--out', 'signing', '--no-passphrase'],
    ['build', 'src', '--key', 'signing.key', '--out', 'pack.iqp'],
  ]) {
    const r = await iqp(args, { cwd: work });
    expect(r.code, r.stderr).toBe(0);
  }
});

/** A scratch folder holding one plain file, `afile`. */
function scratch(): string {
  const cwd = tempDir('iqp-paths-cwd-');
  writeFileSync(join(cwd, 'afile'), 'not a folder\n');
  return cwd;
}

describe('writing into a folder that does not exist', () => {
  it.each([
    ['keygen', ['keygen', '--out', 'nodir/signing', '--no-passphrase']],
    ['build', ['build', '__SRC__', '--key', '__KEY__', '--out', 'nodir/pack.iqp']],
  ])('%s names the missing folder, not a temp file, and writes nothing', async (_name, args) => {
    const cwd = scratch();
    const argv = args.map((a) => a.replace('__SRC__', join(work, 'src')).replace('__KEY__', join(work, 'signing.key')));
    const r = await iqp([...argv, '--json'], { cwd });
    const err = r.json().error;
    expect([r.code, err.code]).toEqual([2, 'IQP_E_FILE_NOT_FOUND']);
    expect(err.message).toContain(`${join(cwd, 'nodir')} does not exist`);
    expect(err.message).not.toContain(TEMP_MARKER);
    expect(err.hint).toContain(`mkdir -p ${join(cwd, 'nodir')}`);
    expect(listTree(cwd)).toEqual(['afile']);
  });

  it('keygen under a path through a plain file names that file as not a folder', async () => {
    const cwd = scratch();
    const r = await iqp(['keygen', '--out', 'afile/signing', '--no-passphrase', '--json'], { cwd });
    const err = r.json().error;
    expect([r.code, err.code]).toEqual([2, 'IQP_E_FILE_NOT_FOUND']);
    expect(err.message).toContain(`${join(cwd, 'afile')} is a file, not a folder`);
    expect(err.message).not.toContain(TEMP_MARKER);
    expect(listTree(cwd)).toEqual(['afile']);
  });
});

describe('a folder where a file is expected, a file where a folder is expected', () => {
  /** Each case runs in a fresh scratch folder holding `afile` and an empty folder `somedir`. */
  const CASES: ReadonlyArray<readonly [string, string[], string, RegExp]> = [
    ['inspect a folder', ['inspect', 'somedir'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    ['verify a folder', ['verify', 'somedir', '--allow-unsigned'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    ['verify with a folder as --pubkey', ['verify', '__PACK__', '--pubkey', 'somedir'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    ['build with a folder as --key', ['build', '__SRC__', '--key', 'somedir', '--out', 'p.iqp'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    ['build with a folder as --content', ['build', '__SRC__', '--unsigned', '--content', 'somedir', '--out', 'p.iqp'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    ['restore a folder as a backup', ['server', 'restore', 'somedir', '--data', 'restored'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    ['keys add a folder', ['keys', 'add', 'somedir', '--registry', 'http://127.0.0.1:9', '--token', 'x'], 'IQP_E_USAGE', /somedir is a folder, not a file/],
    // No check of its own: the mapping of node's EEXIST every command shares.
    ['init under a plain file', ['init', 'afile/src', '--template', 'translation', '--yes'], 'IQP_E_USAGE', /afile already exists, and is not a folder/],
    ['pull into a plain file', ['pull', 'example.pack', '--out', 'afile', '--registry', 'http://127.0.0.1:9'], 'IQP_E_USAGE', /afile is a file, not a folder/],
    ['pull a release into a plain file', ['pull', '--release', 'latest', '--out', 'afile', '--registry', 'http://127.0.0.1:9', '--release-key', '__PUB__'], 'IQP_E_USAGE', /afile is a file, not a folder/],
  ];

  it.each(CASES)('%s', async (_name, args, code, message) => {
    const cwd = scratch();
    mkdirSync(join(cwd, 'somedir'));
    const argv = args.map((a) => a.replace('__SRC__', join(work, 'src')).replace('__PACK__', join(work, 'pack.iqp')).replace('__PUB__', join(work, 'signing.pub')));
    const r = await iqp([...argv, '--json'], { cwd });
    const err = r.json().error;
    expect([r.code, err.code], r.stdout).toEqual([2, code]);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(cwd);
    expect(err.hint).not.toMatch(/disk space/);
    expect(listTree(cwd)).toEqual(['afile']);
  });
});

describe('iqp build --out never replaces what is not a pack', () => {
  /** A copy of the source, key and pack in a fresh folder, with a few other files beside them. */
  function world(): string {
    const cwd = tempDir('iqp-paths-build-');
    cpSync(work, cwd, { recursive: true });
    writeFileSync(join(cwd, 'notes.txt'), 'my notes\n');
    // Named like a pack, but it is not one: the format decides, not the extension.
    writeFileSync(join(cwd, 'fake.iqp'), 'not a pack at all\n');
    symlinkSync(join(cwd, 'signing.key'), join(cwd, 'key-link'));
    return cwd;
  }

  const REFUSED: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['the signing key', 'signing.key', /is the signing key/],
    ['a link to the signing key', 'key-link', /is the signing key/],
    ['the signing key’s public key', 'signing.pub', /is the signing key’s public key/],
    ['the source’s iqp.json', 'src/iqp.json', /is the source’s iqp.json/],
    ['the source’s schema.sql', 'src/schema.sql', /is the source’s schema.sql/],
    ['one of the source’s data files', 'src/data/translations.jsonl', /is inside the source’s data folder/],
    ['a new file in the source’s data folder', 'src/data/new.iqp', /is inside the source’s data folder/],
    ['a file that is not a pack', 'notes.txt', /is not an \.iqp pack/],
    ['a file named .iqp that is not a pack', 'fake.iqp', /is not an \.iqp pack/],
  ];

  it.each(REFUSED)('refuses %s (exit 2), leaving every file as it was', async (_name, out, message) => {
    const cwd = world();
    const before = snapshot(cwd);
    const r = await iqp(['build', 'src', '--key', 'signing.key', '--out', out, '--json'], { cwd });
    const err = r.json().error;
    expect([r.code, err.code], r.stdout).toEqual([2, 'IQP_E_USAGE']);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(out);
    expect(snapshot(cwd)).toEqual(before);
  });

  it('refuses the --content database as the output', async () => {
    const cwd = world();
    writeFileSync(join(cwd, 'content.sqlite'), readFileSync(join(cwd, 'pack.iqp')));
    const before = snapshot(cwd);
    const r = await iqp(['build', 'src', '--unsigned', '--content', 'content.sqlite', '--out', 'content.sqlite', '--json'], { cwd });
    expect([r.code, r.json().error.code]).toEqual([2, 'IQP_E_USAGE']);
    expect(r.json().error.message).toMatch(/is the --content database/);
    expect(snapshot(cwd)).toEqual(before);
  });

  it('replaces an existing pack: a rebuild', async () => {
    const cwd = world();
    writeFileSync(join(cwd, 'src', 'iqp.json'), readFileSync(join(cwd, 'src', 'iqp.json'), 'utf8').replace('"1.0.0"', '"1.0.1"'));
    const r = await iqp(['build', 'src', '--key', 'signing.key', '--out', 'pack.iqp', '--json'], { cwd });
    expect(r.code, r.stdout).toBe(0);
    expect((await iqp(['inspect', 'pack.iqp', '--json'], { cwd })).json().manifest.version).toBe('1.0.1');
  });
});

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(listTree(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));
}
