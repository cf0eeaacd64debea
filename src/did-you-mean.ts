/**
 * "(Did you mean translation?)" for a word a typo away from one of some names: commander's own
 * suggestion, the one a mistyped command or flag gets, so a typo reads the same wherever it is made.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// Not among commander's exports, so reached by its path inside the package (were it to move, every
// `iqp build` in the tests would fail on loading this).
const { suggestSimilar } = require(join(dirname(require.resolve('commander')), 'lib', 'suggestSimilar.js')) as {
  suggestSimilar(word: string, candidates: string[]): string;
};

/** The suggestion for `word` among `names`, or '' when none is close. */
export function didYouMean(word: string, names: readonly string[]): string {
  return suggestSimilar(word, [...names]).trim();
}
