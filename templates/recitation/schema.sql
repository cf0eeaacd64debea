-- Recitation pack: audio of the Qur'an, one file per ayah, for one or more reciters.
-- The audio itself is not inside the pack: the app downloads each file from reciters.base_url
-- and checks it against audio_files.size_bytes and audio_files.sha256 before playing it offline.
-- One data file per table: data/reciters.csv, data/audio_files.csv, data/word_segments.jsonl.

CREATE TABLE reciters (
  -- Stable id (lowercase letters, digits, dashes); the app stores it in user settings.
  id          TEXT NOT NULL PRIMARY KEY
              CHECK (id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9-]*' AND length(id) <= 64),
  name        TEXT NOT NULL CHECK (length(trim(name)) > 0),
  name_arabic TEXT          CHECK (name_arabic IS NULL OR length(trim(name_arabic)) > 0),
  style       TEXT NOT NULL CHECK (style IN ('murattal', 'mujawwad', 'muallim')),
  -- Transmission followed, e.g. hafs-an-asim, warsh-an-nafi.
  riwayah     TEXT NOT NULL DEFAULT 'hafs-an-asim'
              CHECK (riwayah GLOB '[a-z]*' AND riwayah NOT GLOB '*[^a-z0-9-]*'),
  -- Every audio_files.url is resolved against this (RFC 3986), so a mirror only changes one row.
  base_url    TEXT NOT NULL CHECK (base_url GLOB 'https://?*/'),
  bio         TEXT
) STRICT;

CREATE TABLE audio_files (
  reciter_id  TEXT    NOT NULL REFERENCES reciters (id),
  surah       INTEGER NOT NULL CHECK (surah BETWEEN 1 AND 114),
  ayah        INTEGER NOT NULL CHECK (ayah BETWEEN 1 AND 286),
  -- Relative to reciters.base_url (e.g. 001001.mp3), or an absolute https:// URL.
  url         TEXT    NOT NULL
              CHECK (url GLOB 'https://?*' OR (length(url) > 0 AND url NOT GLOB '*:*' AND url NOT GLOB '/*' AND url NOT GLOB '*..*')),
  mime_type   TEXT    NOT NULL CHECK (mime_type IN ('audio/mpeg', 'audio/mp4', 'audio/ogg', 'audio/opus', 'audio/flac')),
  duration_ms INTEGER NOT NULL CHECK (duration_ms > 0),
  size_bytes  INTEGER NOT NULL CHECK (size_bytes > 0),
  -- Lowercase hex SHA-256 of the audio file's bytes, as printed by `sha256sum`.
  sha256      TEXT    NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
  PRIMARY KEY (reciter_id, surah, ayah)
) STRICT, WITHOUT ROWID;

-- Optional: when each word is recited within its ayah's file, for word-by-word highlighting.
-- Words are numbered from 1 in the order of the Uthmani (Madani mushaf) text, split on spaces.
CREATE TABLE word_segments (
  reciter_id TEXT    NOT NULL,
  surah      INTEGER NOT NULL,
  ayah       INTEGER NOT NULL,
  word       INTEGER NOT NULL CHECK (word >= 1),
  start_ms   INTEGER NOT NULL CHECK (start_ms >= 0),
  end_ms     INTEGER NOT NULL CHECK (end_ms > start_ms),
  PRIMARY KEY (reciter_id, surah, ayah, word),
  FOREIGN KEY (reciter_id, surah, ayah) REFERENCES audio_files (reciter_id, surah, ayah)
) STRICT, WITHOUT ROWID;

-- Indexes (applied by `iqp build` after the data is loaded).
-- "Which reciters have this ayah?" when the user switches reciter mid-surah.
CREATE INDEX audio_files_by_ayah ON audio_files (surah, ayah, reciter_id);
