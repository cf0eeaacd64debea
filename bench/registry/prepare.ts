/**
 * What the registry benchmarks serve, generated once into bench/.work/registry/data (delete it to
 * start over): a signing key, a ~512 MiB signed pack whose content.sqlite is incompressible random
 * blobs (built with `iqp build --content`, as a publisher would), and a couple of dozen small packs
 * so that /v1/packs/available lists a realistic catalogue rather than one entry.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatPublicKeyFile, formatSecretKeyFile, generateKeyPair } from '../../src/pack/minisign.js';
import { generateOnce } from '../lib/files.js';
import { Rng } from '../lib/prng.js';
import { run } from '../lib/proc.js';
import { writeIqpJson } from '../lib/synthetic.js';

export const BIG_VERSION = 'registry-big-v1';
export const SMALL_VERSION = 'registry-small-v1';
/** 8192 rows of 64 KiB: 512 MiB of random bytes, so the pack is about 512 MiB too. */
export const BIG_ROWS = 8192;
export const ROW_BYTES = 64 * 1024;
export const SMALL_PACKS = 24;

export interface PackFile {
  readonly path: string;
  readonly package_id: string;
  readonly version: string;
  readonly size: number;
}

export interface RegistryCorpus {
  readonly data: string;
  readonly key: string;
  readonly pub: string;
  readonly big: PackFile;
  readonly small: readonly PackFile[];
}

/** A signing key pair `name`.key / `name`.pub (no passphrase) in `data`, made once. */
export function ensureKey(data: string, name = 'registry-bench'): Promise<{ key: string; pub: string }> {
  const key = join(data, `${name}.key`);
  const pub = join(data, `${name}.pub`);
  return (async () => {
    if (!existsSync(key) || !existsSync(pub)) {
      const pair = generateKeyPair();
      writeFileSync(key, await formatSecretKeyFile(pair, null), { mode: 0o600 });
      writeFileSync(pub, formatPublicKeyFile(pair));
    }
    return { key, pub };
  })();
}

function randomBlobsDb(path: string, rows: number, seed: number): void {
  const rng = new Rng(seed);
  const db = new Database(path);
  try {
    db.pragma('page_size = 4096');
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, bytes BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO blobs (id, name, bytes) VALUES (?, ?, ?)');
    const buf = Buffer.allocUnsafe(ROW_BYTES);
    const words = new Uint32Array(buf.buffer, buf.byteOffset, ROW_BYTES / 4);
    db.exec('BEGIN');
    for (let i = 0; i < rows; i++) {
      for (let w = 0; w < words.length; w++) words[w] = rng.u32();
      insert.run(i, `blob-${String(i).padStart(5, '0')}.bin`, buf);
    }
    db.exec('COMMIT');
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}

/** `iqp build <dir> --content <db> --key <key> --out <out>` with the frozen CLI. */
function iqpBuild(cliRoot: string, dir: string, db: string, key: string, out: string): void {
  run({ argv: [process.execPath, join(cliRoot, 'bin', 'iqp.js'), 'build', dir, '--content', db, '--key', key, '--out', out, '--quiet'], env: { SOURCE_DATE_EPOCH: '1700000000' } });
}

export type PackMeta = Parameters<typeof writeIqpJson>[1];

/**
 * Builds `out`, a signed pack of `meta` whose content is `rows` rows of 64 KiB random bytes
 * (seeded), in `tmp` (which it creates), with the frozen CLI as a publisher would.
 */
export function buildRandomPack(cliRoot: string, tmp: string, meta: PackMeta, rows: number, seed: number, key: string, out: string): void {
  mkdirSync(tmp, { recursive: true });
  const src = join(tmp, `${meta.package_id}-src`);
  writeIqpJson(src, meta);
  const db = join(tmp, `${meta.package_id}.sqlite`);
  randomBlobsDb(db, rows, seed);
  iqpBuild(cliRoot, src, db, key, out);
}

export async function prepareRegistryCorpus(work: string, cliRoot: string, log: (m: string) => void): Promise<RegistryCorpus> {
  const { data, key, pub, small } = await prepareSmallPacks(work, cliRoot, log);
  const bigDir = join(data, 'big');
  await generateOnce(bigDir, `${BIG_VERSION}:${readFileSync(pub, 'utf8')}`, (tmp) => {
    log(`generating a ${(BIG_ROWS * ROW_BYTES) / 2 ** 20} MiB random-blob content database and building its pack (once)…`);
    const meta = {
      package_id: 'bench.registry.big',
      package_type: 'bench',
      language_code: 'en',
      name: 'Random blobs (registry benchmark)',
      description: 'Incompressible random blobs: a pack of about 512 MiB for download and upload benchmarks.',
    };
    buildRandomPack(cliRoot, tmp, meta, BIG_ROWS, 512, key, join(tmp, 'pack.iqp'));
  });
  const big = { path: join(bigDir, 'pack.iqp'), package_id: 'bench.registry.big', version: '1.0.0', size: statSync(join(bigDir, 'pack.iqp')).size };
  return { data, key, pub, big, small };
}

/** The signing key and the small packs of the catalogue (without the big pack). */
export async function prepareSmallPacks(work: string, cliRoot: string, log: (m: string) => void): Promise<Omit<RegistryCorpus, 'big'>> {
  const data = join(work, 'data');
  mkdirSync(data, { recursive: true });
  const { key, pub } = await ensureKey(data);
  const smallDir = join(data, 'small');
  await generateOnce(smallDir, `${SMALL_VERSION}:${readFileSync(pub, 'utf8')}`, (tmp) => {
    log(`building ${SMALL_PACKS} small packs for the catalogue (once)…`);
    mkdirSync(tmp, { recursive: true });
    const langs = ['en', 'fr', 'de', 'es', 'id', 'tr', 'ar', 'ur'];
    for (let i = 0; i < SMALL_PACKS; i++) {
      const id = `bench.registry.small-${String(i).padStart(2, '0')}`;
      const meta = {
        package_id: id,
        package_type: i % 3 === 0 ? 'bench' : 'bench-extra',
        language_code: langs[i % langs.length]!,
        name: `Small pack ${i}`,
        description: `A small pack (${i}) so that the catalogue lists more than one entry.`,
      };
      buildRandomPack(cliRoot, tmp, meta, 4 + i, 1000 + i, key, join(tmp, `${id}.iqp`));
    }
  });
  const small = readdirSync(smallDir)
    .filter((n) => n.endsWith('.iqp'))
    .sort()
    .map((n) => ({ path: join(smallDir, n), package_id: n.replace(/\.iqp$/, ''), version: '1.0.0', size: statSync(join(smallDir, n)).size }));
  return { data, key, pub, small };
}
