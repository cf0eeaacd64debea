-- Translation pack: the meanings of the Qur'an (all of it or a selection of surahs) in one language.
-- One data file per table: data/surahs.csv, data/translations.jsonl, data/footnotes.jsonl.
-- Ayahs are numbered as in the Hafs (Kufan) count, where the Basmala is ayah 1:1 and no other ayah.

-- Every surah the pack translates (you may list all 114).
CREATE TABLE surahs (
  number              INTEGER NOT NULL PRIMARY KEY CHECK (number BETWEEN 1 AND 114),
  name_arabic         TEXT    NOT NULL CHECK (length(trim(name_arabic)) > 0),
  name_transliterated TEXT    NOT NULL CHECK (length(trim(name_transliterated)) > 0),
  -- The name's meaning in the pack's language; NULL when the translation gives none.
  name_translated     TEXT             CHECK (name_translated IS NULL OR length(trim(name_translated)) > 0),
  ayah_count          INTEGER NOT NULL CHECK (ayah_count BETWEEN 3 AND 286),
  revelation_place    TEXT             CHECK (revelation_place IN ('makkah', 'madinah'))
) STRICT;

-- One row per translated ayah. The app shows it beside the Arabic text it already has.
CREATE TABLE translations (
  surah INTEGER NOT NULL REFERENCES surahs (number),
  ayah  INTEGER NOT NULL CHECK (ayah BETWEEN 1 AND 286),
  text  TEXT    NOT NULL CHECK (length(trim(text)) > 0),
  PRIMARY KEY (surah, ayah)
) STRICT, WITHOUT ROWID;

-- Optional notes shown under an ayah, in `number` order. Keep the table even if it has no rows.
CREATE TABLE footnotes (
  surah  INTEGER NOT NULL,
  ayah   INTEGER NOT NULL,
  number INTEGER NOT NULL CHECK (number >= 1),
  text   TEXT    NOT NULL CHECK (length(trim(text)) > 0),
  PRIMARY KEY (surah, ayah, number),
  FOREIGN KEY (surah, ayah) REFERENCES translations (surah, ayah)
) STRICT, WITHOUT ROWID;

-- Indexes (applied by `iqp build` after the data is loaded).
-- The primary keys already serve the app's lookups by (surah, ayah); this one serves the
-- "surahs revealed in Makkah/Madinah" filter of the surah list.
CREATE INDEX surahs_by_revelation_place ON surahs (revelation_place, number);
