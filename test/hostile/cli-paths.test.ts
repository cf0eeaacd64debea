/**
 * Paths that name the wrong thing: a folder that does not exist, a file where a folder is expected
 * and the other way round, an output that is one of the build's own inputs. Each case runs the real
 * binary and checks the code, the exit status, that the message names the path the user gave (never
 * an internal temp file), and that nothing was written or overwritten.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TEMP_MARKER } from '../../src/atomic.js';
import { iqp, listTree, tempDir, TEMPLATES } from '../e2e/helpers.js';

let work: string;

beforeAll(async () => {
  work = tempDir('iqp-paths-');
  cpSync(join(TEMPLATES, 'translation'), join(work, 'src'), { recursive: true });
  const r = await iqp(['keygen', '--out', 'signing', '--no-passphrase'], { cwd: work });
  expect(r.code, r.stderr).toBe(0);
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
