/**
 * Regenerates the release-manifest test vectors: `node dist/scripts/make-release-vectors.js [--out DIR]`.
 * DIR defaults to the repository's fixtures/release-vectors/ (rewritten; fixtures/keys/ is only read).
 * test/hostile/releases-vectors.test.ts regenerates into a temp dir and requires the committed files to match.
 */
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { generateReleaseVectors } from './release-vectors.js';

const argv = process.argv.slice(2);
const i = argv.indexOf('--out');
if (i >= 0 && !argv[i + 1]) throw new Error('--out needs a directory');
const out = i >= 0 ? resolve(argv[i + 1]!) : join(PACKAGE_ROOT, 'fixtures', 'release-vectors');
const names = await generateReleaseVectors(out);
process.stderr.write(`${out}: ${names.length} release-manifest vectors\n`);
