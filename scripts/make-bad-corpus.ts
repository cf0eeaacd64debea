/**
 * Regenerates the bad-pack corpus: `node dist/scripts/make-bad-corpus.js [--out DIR]`.
 * DIR defaults to the repository's fixtures/ (good/ and bad/ are rewritten; fixtures/keys/ is only read).
 * test/e2e/bad-corpus.test.ts regenerates into a temp dir and requires the committed files to match.
 */
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../src/paths.js';
import { generateCorpus } from './corpus/generate.js';

function outDir(argv: readonly string[]): string {
  const i = argv.indexOf('--out');
  if (i < 0) return join(PACKAGE_ROOT, 'fixtures');
  const value = argv[i + 1];
  if (!value) throw new Error('--out needs a directory');
  return resolve(value);
}

const out = outDir(process.argv.slice(2));
const { good, bad } = await generateCorpus(out);
const codes = new Set(bad.map((b) => b.expect));
process.stderr.write(`${out}: ${good.length} good packs, ${bad.length} bad packs covering ${codes.size} error codes\n`);
