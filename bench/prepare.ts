/** Generates the benchmark corpora into bench/.work/data without running any benchmark. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareCorpora } from './lib/corpora.js';

const work = join(fileURLToPath(new URL('../..', import.meta.url)), 'bench', '.work');
const t0 = Date.now();
const corpora = await prepareCorpora(work, (m) => process.stderr.write(`${m}\n`));
process.stdout.write(`${JSON.stringify(corpora, null, 2)}\n(${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
