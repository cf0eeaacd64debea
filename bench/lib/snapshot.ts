/**
 * A frozen copy of the built CLI (bin, dist, package.json, templates, schemas) in bench/.work, so
 * that a rebuild of dist/ while the benchmarks run (an editor's watch mode, a test run in another
 * terminal) cannot change, or break, what is being measured.
 */
import { cpSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export function snapshotBuild(root: string, work: string): string {
  const dir = join(work, 'snapshot');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'docs'), { recursive: true });
  for (const path of ['bin', 'dist', 'package.json', 'templates', join('docs', 'schemas')]) {
    cpSync(join(root, path), join(dir, path), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}
