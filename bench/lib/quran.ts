/**
 * The real corpus: quran-json (a devDependency) — the translations of all ayahs in its ten
 * languages, as a translation pack source (data/surahs + data/translations, JSONL and CSV).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { BufferedWriter, csvLine } from './files.js';
import { writeIqpJson } from './synthetic.js';

export const QURAN_VERSION = 'quran-v1';
export const QURAN_LANGUAGES = ['bn', 'en', 'es', 'fr', 'id', 'ru', 'sv', 'tr', 'ur', 'zh'] as const;

interface Chapter {
  id: number;
  name: string;
  transliteration: string;
  translation?: string;
  type: string;
  total_verses: number;
  verses: { id: number; text: string; translation?: string }[];
}

/** The translation template's tables, with a `lang` column so that one pack holds every language. */
const SCHEMA = `-- All of quran-json's translations in one pack (benchmark corpus).
CREATE TABLE surahs (
  number              INTEGER NOT NULL PRIMARY KEY CHECK (number BETWEEN 1 AND 114),
  name_arabic         TEXT    NOT NULL CHECK (length(trim(name_arabic)) > 0),
  name_transliterated TEXT    NOT NULL CHECK (length(trim(name_transliterated)) > 0),
  name_translated     TEXT,
  ayah_count          INTEGER NOT NULL CHECK (ayah_count BETWEEN 3 AND 286),
  revelation_place    TEXT    CHECK (revelation_place IN ('makkah', 'madinah'))
) STRICT;

CREATE TABLE translations (
  lang  TEXT    NOT NULL,
  surah INTEGER NOT NULL REFERENCES surahs (number),
  ayah  INTEGER NOT NULL CHECK (ayah BETWEEN 1 AND 286),
  text  TEXT    NOT NULL CHECK (length(trim(text)) > 0),
  PRIMARY KEY (lang, surah, ayah)
) STRICT, WITHOUT ROWID;

CREATE INDEX translations_by_ayah ON translations (surah, ayah);
`;

function quranDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('quran-json/package.json')), 'dist');
}

function readChapters(file: string): Chapter[] {
  return JSON.parse(readFileSync(join(quranDir(), file), 'utf8')) as Chapter[];
}

/** Writes `<jsonlDir>` and `<csvDir>`, the same rows in each format. Returns the row counts. */
export function generateQuranSources(jsonlDir: string, csvDir: string): { translations: number; surahs: number } {
  const fields = (kind: string) => ({
    package_id: `bench.quran.${kind}`,
    package_type: 'translation',
    language_code: 'mul',
    name: `quran-json translations (${kind})`,
    description: `The meanings of the Qur'an in ${QURAN_LANGUAGES.length} languages (quran-json), for the load benchmark.`,
  });
  writeIqpJson(jsonlDir, fields('jsonl'));
  writeIqpJson(csvDir, fields('csv'));
  writeFileSync(join(jsonlDir, 'schema.sql'), SCHEMA);
  writeFileSync(join(csvDir, 'schema.sql'), SCHEMA);

  const en = readChapters('quran_en.json');
  const surahColumns = ['number', 'name_arabic', 'name_transliterated', 'name_translated', 'ayah_count', 'revelation_place'];
  const sj = new BufferedWriter(join(jsonlDir, 'data', 'surahs.jsonl'));
  const sc = new BufferedWriter(join(csvDir, 'data', 'surahs.csv'));
  sc.write(csvLine(surahColumns));
  for (const c of en) {
    const values = [c.id, c.name, c.transliteration, c.translation ?? null, c.total_verses, c.type === 'meccan' ? 'makkah' : 'madinah'];
    sj.write(`${JSON.stringify(Object.fromEntries(surahColumns.map((k, i) => [k, values[i]])))}\n`);
    sc.write(csvLine(values));
  }
  sj.close();
  sc.close();

  const tj = new BufferedWriter(join(jsonlDir, 'data', 'translations.jsonl'));
  const tc = new BufferedWriter(join(csvDir, 'data', 'translations.csv'));
  tc.write(csvLine(['lang', 'surah', 'ayah', 'text']));
  let translations = 0;
  for (const lang of QURAN_LANGUAGES) {
    for (const c of readChapters(`quran_${lang}.json`)) {
      for (const v of c.verses) {
        const text = v.translation ?? '';
        tj.write(`${JSON.stringify({ lang, surah: c.id, ayah: v.id, text })}\n`);
        tc.write(csvLine([lang, c.id, v.id, text]));
        translations += 1;
      }
    }
  }
  tj.close();
  tc.close();
  return { translations, surahs: en.length };
}
