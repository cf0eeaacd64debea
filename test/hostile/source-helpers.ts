/** Shared by the hostile pack-source tests: a template copied to a temp dir, and a build that must be refused cleanly. */
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { iqp, listTree, tempDir, TEMPLATES } from '../e2e/helpers.js';

/** A copy of a template as a pack source folder (translation unless told). */
export function templateSource(template = 'translation'): string {
  const dir = join(tempDir('iqp-source-'), 'src');
  cpSync(join(TEMPLATES, template), dir, { recursive: true });
  return dir;
}

export interface RefusedOptions {
  readonly args?: readonly string[];
  readonly exit?: number;
  readonly env?: Record<string, string>;
  /** Text that must appear nowhere in the output (something behind a link, say). */
  readonly never?: string;
}

/**
 * `iqp build . --unsigned --json` in `dir` must fail with `code` (exit 1 unless told), in time,
 * leaving the source as it was and nothing in its temp directory. Returns the JSON error.
 */
export async function buildRefused(dir: string, code: string, options: RefusedOptions = {}) {
  const tmp = tempDir('iqp-tmp-');
  const before = listTree(dir);
  const r = await iqp(['build', '.', '--unsigned', '--json', ...(options.args ?? [])], { cwd: dir, env: { TMPDIR: tmp, ...options.env }, timeoutMs: 30_000 });
  expect(r.signal, 'the build must end by itself').toBeNull();
  expect(r.code, r.stdout + r.stderr).toBe(options.exit ?? 1);
  const err = r.json().error;
  expect(err.code, JSON.stringify(err)).toBe(code);
  expect(err.hint).toBeTruthy();
  if (options.never) expect(r.stdout + r.stderr).not.toContain(options.never);
  expect(listTree(dir)).toEqual(before);
  expect(listTree(tmp)).toEqual([]);
  return err;
}
