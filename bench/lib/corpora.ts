/**
 * Everything the benchmarks read, generated once into bench/.work/data and reused while the
 * generator versions stay the same (delete bench/.work to start over).
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSource } from '../../src/pack/load.js';
import { formatPublicKeyFile, formatSecretKeyFile, generateKeyPair } from '../../src/pack/minisign.js';
import { readSource } from '../../src/pack/source.js';
import { generateOnce } from './files.js';
import { generateQuranSources, QURAN_VERSION } from './quran.js';
import { BIG_VERSION, generateBigBlobs, generateSyntheticContent, generateSyntheticRows, SYNTHETIC_CONTENT_VERSION, SYNTHETIC_ROWS_VERSION, writeIqpJson } from './synthetic.js';

export interface ContentCorpus {
  readonly label: string;
  /** The content database `iqp build --content` packs. */
  readonly db: string;
  /** Folder with the iqp.json that goes with it. */
  readonly dir: string;
  readonly bytes: number;
}

export interface RowSource {
  readonly label: string;
  readonly format: 'jsonl' | 'csv';
  readonly dir: string;
}

export interface Corpora {
  readonly work: string;
  readonly key: string;
  readonly pub: string;
  readonly content: {
    readonly synthetic: ContentCorpus;
    readonly quran: ContentCorpus;
    /** The synthetic database's blobs alone (about 130 MB), a middle size for the memory check. */
    readonly assets: ContentCorpus;
    /** 2 GiB of incompressible blobs, only with --big. */
    readonly big: ContentCorpus | null;
  };
  readonly rows: readonly RowSource[];
}

async function ensureKey(data: string): Promise<{ key: string; pub: string }> {
  const key = join(data, 'bench.key');
  const pub = join(data, 'bench.pub');
  if (!existsSync(key) || !existsSync(pub)) {
    const pair = generateKeyPair();
    writeFileSync(key, await formatSecretKeyFile(pair, null), { mode: 0o600 });
    writeFileSync(pub, formatPublicKeyFile(pair));
  }
  return { key, pub };
}

/**
 * For runs of benchmarks that read no pack sources (auth, sync): the work folder only, and a clear
 * error if a benchmark reaches for the sources after all.
 */
export function noCorpora(work: string): Corpora {
  const missing = (): never => {
    throw new Error('this run prepared no pack sources: add a pack benchmark to --only, or run them all');
  };
  return {
    work,
    get key() {
      return missing();
    },
    get pub() {
      return missing();
    },
    get content() {
      return missing();
    },
    get rows() {
      return missing();
    },
  };
}

export async function prepareCorpora(work: string, log: (msg: string) => void, options: { big?: boolean } = {}): Promise<Corpora> {
  const data = join(work, 'data');
  mkdirSync(data, { recursive: true });
  const { key, pub } = await ensureKey(data);

  await generateOnce(join(data, 'src-quran'), QURAN_VERSION, (tmp) => {
    log('generating the quran-json pack sources…');
    mkdirSync(tmp);
    generateQuranSources(join(tmp, 'jsonl'), join(tmp, 'csv'));
  });
  const quranSrc = join(data, 'src-quran');

  const quranDb = join(data, 'quran.sqlite');
  await generateOnce(quranDb, QURAN_VERSION, async (tmp) => {
    log('loading the quran-json content database (iqp loader)…');
    await loadSource(await readSource(join(quranSrc, 'jsonl')), tmp);
  });
  const quranDir = join(data, 'content-quran');
  writeIqpJson(quranDir, {
    package_id: 'bench.quran',
    package_type: 'translation',
    language_code: 'mul',
    name: 'quran-json translations',
    description: "The meanings of the Qur'an in the ten languages of quran-json (benchmark corpus).",
  });

  const synthDb = join(data, 'synthetic.sqlite');
  await generateOnce(synthDb, SYNTHETIC_CONTENT_VERSION, (tmp) => {
    log('generating the synthetic content database (about 560 MB, once)…');
    generateSyntheticContent(tmp, (m) => log(`  ${m}`));
  });
  const synthDir = join(data, 'content-synthetic');
  writeIqpJson(synthDir, {
    package_id: 'bench.synthetic',
    package_type: 'bench',
    language_code: 'en',
    name: 'Synthetic content',
    description: 'Generated prose, tags, sensor readings and blobs (benchmark corpus).',
  });

  const assetsDb = join(data, 'synthetic-assets.sqlite');
  await generateOnce(assetsDb, `${SYNTHETIC_CONTENT_VERSION}-assets`, (tmp) => {
    log('deriving the assets-only content database…');
    const src = new Database(synthDb, { readonly: true });
    src.prepare('VACUUM INTO ?').run(tmp);
    src.close();
    const db = new Database(tmp);
    db.exec('DROP TABLE tags; DROP TABLE documents; DROP TABLE readings; VACUUM;');
    db.close();
  });

  let big: ContentCorpus | null = null;
  if (options.big) {
    const bigDb = join(data, 'big.sqlite');
    await generateOnce(bigDb, BIG_VERSION, (tmp) => {
      log('generating the 2 GiB blob database (once)…');
      generateBigBlobs(tmp);
    });
    big = { label: 'big blobs', db: bigDb, dir: synthDir, bytes: statSync(bigDb).size };
  }

  await generateOnce(join(data, 'src-synthetic'), SYNTHETIC_ROWS_VERSION, (tmp) => {
    log('generating the 2,000,000-row synthetic pack sources (JSONL and CSV, once)…');
    mkdirSync(tmp);
    generateSyntheticRows(join(tmp, 'jsonl'), join(tmp, 'csv'));
  });
  const synthSrc = join(data, 'src-synthetic');

  return {
    work,
    key,
    pub,
    content: {
      synthetic: { label: 'synthetic', db: synthDb, dir: synthDir, bytes: statSync(synthDb).size },
      quran: { label: 'quran', db: quranDb, dir: quranDir, bytes: statSync(quranDb).size },
      assets: { label: 'synthetic assets', db: assetsDb, dir: synthDir, bytes: statSync(assetsDb).size },
      big,
    },
    rows: [
      { label: 'quran', format: 'jsonl', dir: join(quranSrc, 'jsonl') },
      { label: 'quran', format: 'csv', dir: join(quranSrc, 'csv') },
      { label: 'synthetic', format: 'jsonl', dir: join(synthSrc, 'jsonl') },
      { label: 'synthetic', format: 'csv', dir: join(synthSrc, 'csv') },
    ],
  };
}
