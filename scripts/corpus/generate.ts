/**
 * Builds the good packs from templates/ with a fixed key and date, takes the smallest apart, and
 * writes one bad pack per case plus bad/index.json. Same inputs, same bytes: nothing here reads the
 * clock or a random source, so the committed corpus can be compared with a fresh one.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CATALOG, type ErrorCode } from '../../src/errors.js';
import { buildPack } from '../../src/pack/build.js';
import { ENTRY, ZSTD_DEFAULT_LEVEL } from '../../src/pack/format.js';
import { parseSecretKey } from '../../src/pack/minisign.js';
import { TEMPLATE_NAMES } from '../../src/pack/requirements.js';
import { readSource } from '../../src/pack/source.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type { Case } from './case.js';
import { tarCases, zstdCases } from './cases-archive.js';
import { contentCases } from './cases-content.js';
import { entryCases } from './cases-entries.js';
import { manifestCases } from './cases-manifest.js';
import { signatureCases } from './cases-signature.js';
import { type Base, entryNamed, type Keys, sealedPack, unzst } from './parts.js';

export const CASES: readonly Case[] = [...zstdCases, ...tarCases, ...entryCases, ...manifestCases, ...signatureCases, ...contentCases];

/** Every pack's build time: fixed, so manifests, tar mtimes and signatures never change. */
export const CREATED_AT = new Date('2024-01-01T00:00:00Z');
export const KEYS_DIR = join(PACKAGE_ROOT, 'fixtures', 'keys');
export const PUBLIC_KEY_FILE = 'corpus.pub';
/** The good pack the bad ones are derived from: the smallest, so every fixture stays a few KB. */
export const BASE_TEMPLATE = 'translation';

export interface IndexEntry {
  readonly file: string;
  readonly expect: ErrorCode;
  readonly why: string;
}

async function loadKeys(): Promise<Keys> {
  const load = (name: string) => parseSecretKey(readFileSync(join(KEYS_DIR, `${name}.key`), 'utf8'), null);
  return { corpus: await load('corpus'), other: await load('other') };
}

function baseFrom(name: string, pack: Buffer, keys: Keys): Base {
  const tar = unzst(pack);
  const manifestBytes = entryNamed(tar, ENTRY.manifest);
  return {
    name,
    pack,
    tar,
    manifestBytes,
    manifest: JSON.parse(manifestBytes.toString('utf8')) as Record<string, unknown>,
    content: entryNamed(tar, ENTRY.content),
    signature: entryNamed(tar, ENTRY.signature),
    mtime: Math.floor(CREATED_AT.getTime() / 1000),
    keys,
  };
}

function checkCases(cases: readonly Case[]): void {
  const seen = new Set<string>();
  for (const c of cases) {
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(c.name)) throw new Error(`case name is not kebab-case: ${c.name}`);
    if (seen.has(c.name)) throw new Error(`duplicate case name: ${c.name}`);
    if (!(c.expect in CATALOG)) throw new Error(`${c.name}: unknown error code ${c.expect}`);
    seen.add(c.name);
  }
}

/** Writes `<out>/good/` and `<out>/bad/` from scratch (stale files are removed first). */
export async function generateCorpus(outDir: string): Promise<{ good: string[]; bad: IndexEntry[] }> {
  checkCases(CASES);
  const goodDir = join(outDir, 'good');
  const badDir = join(outDir, 'bad');
  for (const dir of [goodDir, badDir]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  const keys = await loadKeys();
  writeFileSync(join(goodDir, PUBLIC_KEY_FILE), readFileSync(join(KEYS_DIR, PUBLIC_KEY_FILE)));
  const good: string[] = [];
  const packs = new Map<string, Buffer>();
  for (const template of TEMPLATE_NAMES) {
    const file = `${template}.iqp`;
    const outPath = join(goodDir, file);
    const source = await readSource(join(PACKAGE_ROOT, 'templates', template));
    await buildPack({ source, secretKey: keys.corpus, level: ZSTD_DEFAULT_LEVEL, outPath, createdAt: CREATED_AT });
    packs.set(template, readFileSync(outPath));
    good.push(file);
  }
  const base = baseFrom(BASE_TEMPLATE, packs.get(BASE_TEMPLATE)!, keys);
  // Resealing the untouched parts must give the good pack back byte for byte: then every bad pack
  // differs from a pack the writer could make only by its case's mutation.
  if (!sealedPack(base, { manifestBytes: base.manifestBytes }).equals(base.pack)) {
    throw new Error('Resealing the good pack does not reproduce it: scripts/corpus/parts.ts no longer writes what src/pack/writer.ts writes.');
  }
  const bad: IndexEntry[] = [];
  for (const c of CASES) {
    const file = `${c.name}.iqp`;
    writeFileSync(join(badDir, file), await c.make(base));
    bad.push({ file, expect: c.expect, why: c.why });
  }
  writeFileSync(join(badDir, 'index.json'), `${JSON.stringify(bad, null, 2)}\n`);
  return { good, bad };
}
