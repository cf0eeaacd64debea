-- Deck pack: flash cards, grouped into decks. The app keeps each learner's review history by
-- card id, so never reuse an id for a different card, and keep ids when you edit a card.
-- One data file per table: data/decks.jsonl, data/cards.csv, data/card_media.jsonl.

CREATE TABLE decks (
  id             TEXT    NOT NULL PRIMARY KEY
                 CHECK (id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9-]*' AND length(id) <= 64),
  title          TEXT    NOT NULL CHECK (length(trim(title)) > 0),
  description    TEXT             CHECK (description IS NULL OR length(trim(description)) > 0),
  -- BCP 47 tags of the text on each side, so the app picks fonts, text direction and voices.
  front_language TEXT    NOT NULL CHECK (front_language GLOB '[a-z][a-z]*' AND length(front_language) <= 35),
  back_language  TEXT    NOT NULL CHECK (back_language GLOB '[a-z][a-z]*' AND length(back_language) <= 35),
  -- Order of the deck list (0 first).
  position       INTEGER NOT NULL UNIQUE CHECK (position >= 0)
) STRICT;

CREATE TABLE cards (
  id       TEXT    NOT NULL PRIMARY KEY
           CHECK (id GLOB '[a-z]*' AND id NOT GLOB '*[^a-z0-9-]*' AND length(id) <= 64),
  deck_id  TEXT    NOT NULL REFERENCES decks (id),
  -- Order within the deck for new cards (0 first); gaps are fine.
  position INTEGER NOT NULL CHECK (position >= 0),
  front    TEXT    NOT NULL CHECK (length(trim(front)) > 0),
  -- May span several lines: the first line is the answer, the rest are notes.
  back     TEXT    NOT NULL CHECK (length(trim(back)) > 0),
  -- Shown on request before the answer (here: a transliteration). NULL when there is none.
  hint     TEXT             CHECK (hint IS NULL OR length(trim(hint)) > 0),
  -- Space-separated lowercase tags, e.g. "noun plural"; NULL when untagged.
  tags     TEXT
           CHECK (tags IS NULL OR (tags GLOB '[a-z0-9]*' AND tags NOT GLOB '*[^a-z0-9 -]*' AND tags NOT GLOB '* ' AND instr(tags, '  ') = 0)),
  UNIQUE (deck_id, position)
) STRICT;

-- Optional: audio or pictures shown with a side of a card; the app downloads and checks them.
CREATE TABLE card_media (
  card_id    TEXT    NOT NULL REFERENCES cards (id),
  side       TEXT    NOT NULL CHECK (side IN ('front', 'back')),
  kind       TEXT    NOT NULL CHECK (kind IN ('audio', 'image')),
  url        TEXT    NOT NULL CHECK (url GLOB 'https://?*'),
  mime_type  TEXT    NOT NULL CHECK (mime_type GLOB 'audio/?*' OR mime_type GLOB 'image/?*'),
  size_bytes INTEGER NOT NULL CHECK (size_bytes > 0),
  -- Lowercase hex SHA-256 of the file's bytes, as printed by `sha256sum`.
  sha256     TEXT    NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
  PRIMARY KEY (card_id, side, kind),
  CHECK (substr(mime_type, 1, length(kind)) = kind)
) STRICT, WITHOUT ROWID;

-- Indexes (applied by `iqp build` after the data is loaded).
-- The UNIQUE (deck_id, position) constraint already orders a deck's cards; this one lets the app
-- fetch every audio file of the pack for offline use without scanning the images.
CREATE INDEX card_media_by_kind ON card_media (kind, card_id);
