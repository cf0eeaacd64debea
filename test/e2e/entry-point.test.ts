/**
 * bin/iqp.js, the published entry point, exits with the catalog's internal-error code (70) when
 * the CLI's main rejects (as when a command module fails to load) instead of dying on an unhandled
 * rejection with exit 1. The real file runs beside a dist/ whose main rejects: there is no way to
 * make the real main reject from outside.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { BIN, tempDir } from './helpers.js';

it('exits 70 with IQP_E_INTERNAL on stderr when main rejects', () => {
  const root = tempDir('iqp-entry-');
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'dist', 'src'), { recursive: true });
  copyFileSync(BIN, join(root, 'bin', 'iqp.js'));
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  writeFileSync(join(root, 'dist', 'src', 'cli.js'), "export async function main() { throw new Error('a command module failed to load'); }\n");
  writeFileSync(join(root, 'dist', 'src', 'threadpool.js'), 'export {};\n');
  writeFileSync(join(root, 'dist', 'src', 'lifecycle.js'), 'export function installSignalHandlers() {}\nexport function quietOnClosedPipes() {}\n');
  const r = spawnSync(process.execPath, [join(root, 'bin', 'iqp.js'), 'verify'], { cwd: root, encoding: 'utf8', input: '' });
  expect(r.stderr).toBe('error IQP_E_INTERNAL: a command module failed to load\n');
  expect(r.stdout).toBe('');
  expect(r.status).toBe(70);
});
