/**
 * The synthetic corpora, generated deterministically (fixed seeds) into bench/.work:
 *
 * - a content database of about 560 MB with a realistic mix: prose documents with tags (text rows
 *   and two secondary indexes), sensor readings (numeric rows in a WITHOUT ROWID table), and assets
 *   (blobs: incompressible "photos", JSON documents and noisy PCM "audio");
 * - a pack source of 2,000,000 rows, written both as data/entries.jsonl and as data/entries.csv.
 */
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BufferedWriter, csvLine } from './files.js';
import { Rng, TextGen } from './prng.js';

export const SYNTHETIC_CONTENT_VERSION = 'synthetic-content-v1';
export const SYNTHETIC_ROWS_VERSION = 'synthetic-rows-v1';
export const SYNTHETIC_ROW_COUNT = 2_000_000;
export const BIG_VERSION = 'big-blobs-v1';

const CONTENT_SCHEMA = `
CREATE TABLE documents (
  id         INTEGER PRIMARY KEY,
  collection INTEGER NOT NULL,
  slug       TEXT    NOT NULL,
  title      TEXT    NOT NULL,
  lang       TEXT    NOT NULL,
  body       TEXT    NOT NULL,
  words      INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE tags (
  document_id INTEGER NOT NULL REFERENCES documents (id),
  tag         TEXT    NOT NULL,
  PRIMARY KEY (document_id, tag)
) WITHOUT ROWID;
CREATE TABLE readings (
  series  INTEGER NOT NULL,
  t       INTEGER NOT NULL,
  value   REAL    NOT NULL,
  quality INTEGER,
  PRIMARY KEY (series, t)
) WITHOUT ROWID;
CREATE TABLE assets (
  id     INTEGER PRIMARY KEY,
  name   TEXT    NOT NULL,
  mime   TEXT    NOT NULL,
  size   INTEGER NOT NULL,
  bytes  BLOB    NOT NULL
);
`;

const CONTENT_INDEXES = `
CREATE INDEX documents_by_collection ON documents (collection, slug);
CREATE INDEX tags_by_tag ON tags (tag, document_id);
CREATE UNIQUE INDEX assets_by_name ON assets (name);
`;

const LANGS = ['en', 'en', 'en', 'fr', 'de', 'es', 'id', 'tr'];

function logUniform(rng: Rng, min: number, max: number): number {
  return Math.round(Math.exp(Math.log(min) + rng.float() * (Math.log(max) - Math.log(min))));
}

function jsonAsset(text: TextGen, size: number): Buffer {
  const items: unknown[] = [];
  let length = 2;
  for (let i = 0; length < size; i++) {
    const item = { id: i, label: text.title(), weight: Math.round(text.rng.float() * 1e4) / 100, tags: [text.word(), text.word()], note: text.sentence(3, 10) };
    const s = JSON.stringify(item);
    items.push(item);
    length += s.length + 1;
  }
  return Buffer.from(JSON.stringify(items), 'utf8');
}

function audioAsset(rng: Rng, size: number): Buffer {
  // 16-bit PCM: a few tones plus noise; compresses a little, like real audio.
  const buf = Buffer.alloc(size - (size % 2));
  const f1 = rng.int(100, 900) / 8000;
  const f2 = rng.int(100, 900) / 8000;
  for (let i = 0; i < buf.length / 2; i++) {
    const v = 6000 * Math.sin(2 * Math.PI * f1 * i) + 3000 * Math.sin(2 * Math.PI * f2 * i) + 400 * rng.gauss();
    buf.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v))), i * 2);
  }
  return buf;
}

/** Generates the content database at `path` (about 560 MB; a minute or two). */
export function generateSyntheticContent(path: string, log: (msg: string) => void = () => {}): void {
  const rng = new Rng(20240601);
  const text = new TextGen(rng);
  const db = new Database(path);
  try {
    db.pragma('page_size = 4096');
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -65536');
    db.exec(CONTENT_SCHEMA);
    db.exec('BEGIN');
    const insDoc = db.prepare('INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const insTag = db.prepare('INSERT INTO tags VALUES (?, ?)');
    const tagNames = Array.from({ length: 2000 }, () => text.word() + '-' + text.word());
    const DOCUMENTS = 75_000;
    for (let id = 1; id <= DOCUMENTS; id++) {
      const body = text.prose(logUniform(rng, 400, 12_000));
      const title = text.title();
      const slug = title.toLowerCase().replaceAll(' ', '-') + '-' + id;
      insDoc.run(id, rng.int(1, 400), slug, title, rng.pick(LANGS), body, body.split(' ').length, 1_600_000_000 + rng.int(0, 100_000_000));
      const tags = new Set<string>();
      const n = rng.int(0, 6);
      for (let i = 0; i < n; i++) tags.add(rng.pick(tagNames));
      for (const tag of tags) insTag.run(id, tag);
      if (id % 15_000 === 0) log(`documents ${id}/${DOCUMENTS}`);
    }
    const insReading = db.prepare('INSERT INTO readings VALUES (?, ?, ?, ?)');
    const SERIES = 2000;
    const POINTS = 2500;
    for (let s = 1; s <= SERIES; s++) {
      const base = rng.int(-20, 40);
      const amp = rng.int(1, 15);
      let t = 1_700_000_000 + rng.int(0, 86_400);
      for (let i = 0; i < POINTS; i++) {
        t += 60 * rng.int(1, 3);
        const value = Math.round((base + amp * Math.sin(i / 96) + rng.gauss()) * 100) / 100;
        const q = rng.float();
        insReading.run(s, t, value, q < 0.9 ? 0 : q < 0.98 ? rng.int(1, 3) : null);
      }
      if (s % 500 === 0) log(`readings series ${s}/${SERIES}`);
    }
    const insAsset = db.prepare('INSERT INTO assets VALUES (?, ?, ?, ?, ?)');
    const ASSETS = 1500;
    for (let id = 1; id <= ASSETS; id++) {
      const size = logUniform(rng, 4096, 400_000);
      const kind = rng.float();
      let bytes: Buffer;
      let mime: string;
      let ext: string;
      if (kind < 0.5) {
        bytes = Buffer.allocUnsafe(size);
        rng.fill(bytes);
        mime = 'image/jpeg';
        ext = 'jpg';
      } else if (kind < 0.75) {
        bytes = jsonAsset(text, size);
        mime = 'application/json';
        ext = 'json';
      } else {
        bytes = audioAsset(rng, size);
        mime = 'audio/wav';
        ext = 'wav';
      }
      insAsset.run(id, `asset-${String(id).padStart(5, '0')}.${ext}`, mime, bytes.length, bytes);
    }
    log('assets done; building indexes');
    db.exec(CONTENT_INDEXES);
    db.exec('COMMIT');
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}

const ROWS_SCHEMA = `-- Synthetic benchmark table: ids, small integers, short keys, prose, reals and NULLs.
CREATE TABLE entries (
  id         INTEGER NOT NULL PRIMARY KEY,
  collection INTEGER NOT NULL,
  key        TEXT    NOT NULL,
  title      TEXT    NOT NULL,
  text       TEXT    NOT NULL,
  score      REAL,
  flags      INTEGER NOT NULL,
  note       TEXT
);
CREATE INDEX entries_by_collection ON entries (collection, key);
`;

export function writeIqpJson(dir: string, fields: { package_id: string; package_type: string; language_code: string; name: string; description: string }): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'iqp.json'), `${JSON.stringify({ ...fields, version: '1.0.0', min_app_version: '1.0.0', license: 'CC0-1.0' }, null, 2)}\n`);
}

/** Writes two pack sources with the same 2,000,000 rows: `<base>-jsonl` and `<base>-csv`. */
export function generateSyntheticRows(jsonlDir: string, csvDir: string): void {
  const rng = new Rng(7);
  const text = new TextGen(rng, 20_000);
  for (const [dir, kind] of [
    [jsonlDir, 'jsonl'],
    [csvDir, 'csv'],
  ] as const) {
    writeIqpJson(dir, {
      package_id: `bench.synthetic-rows.${kind}`,
      package_type: 'bench',
      language_code: 'en',
      name: `Synthetic rows (${kind})`,
      description: `${SYNTHETIC_ROW_COUNT} synthetic rows for the load benchmark.`,
    });
    writeFileSync(join(dir, 'schema.sql'), ROWS_SCHEMA);
  }
  const jsonl = new BufferedWriter(join(jsonlDir, 'data', 'entries.jsonl'));
  const csv = new BufferedWriter(join(csvDir, 'data', 'entries.csv'));
  csv.write(csvLine(['id', 'collection', 'key', 'title', 'text', 'score', 'flags', 'note']));
  try {
    for (let id = 1; id <= SYNTHETIC_ROW_COUNT; id++) {
      const sentences = rng.int(1, 2);
      let body = text.sentence();
      for (let i = 1; i < sentences; i++) body += (rng.float() < 0.05 ? '\n' : ' ') + text.sentence();
      const row = {
        id,
        collection: rng.int(1, 5000),
        key: `${text.word()}-${id.toString(36)}`,
        title: text.title(),
        text: body,
        score: rng.float() < 0.1 ? null : Math.round(rng.float() * 1e5) / 1e3,
        flags: rng.int(0, 255),
        note: rng.float() < 0.7 ? null : text.sentence(3, 12),
      };
      jsonl.write(`${JSON.stringify(row)}\n`);
      csv.write(csvLine([row.id, row.collection, row.key, row.title, row.text, row.score, row.flags, row.note]));
    }
  } finally {
    jsonl.close();
    csv.close();
  }
}

/** 2,048 incompressible 1 MiB blobs: a 2 GiB content database to show verify's memory is flat. */
export function generateBigBlobs(path: string): void {
  const rng = new Rng(31337);
  const db = new Database(path);
  try {
    db.pragma('page_size = 4096');
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    const ins = db.prepare('INSERT INTO blobs VALUES (?, ?)');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    db.exec('BEGIN');
    for (let id = 1; id <= 2048; id++) {
      rng.fill(buf);
      ins.run(id, buf);
    }
    db.exec('COMMIT');
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}
