/**
 * The PostgreSQL stores answer as the SQLite ones do, to the byte: the same seeded writes go to
 * both, and every listing (orders, ties, filters, pages and their cursors) must come back equal.
 * The text mixes cases, punctuation and multi-byte characters, where a collation other than
 * SQLite's byte order would sort differently.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePg, freshSchema, type TestSchema } from '../../../test/postgres/harness.js';
import { seededRng } from '../../../test/seed.js';
import { newRelease, signedManifest } from '../../../test/server/release-store-conformance.js';
import { samplePack } from '../../../test/server/store-conformance.js';
import { Rng } from '../../../src/prng.js';
import { artifactsKey, type ReleaseStore } from '../release-types.js';
import { SqliteMetadataStore } from '../sqlite/metadata.js';
import { SqliteReleaseStore } from '../sqlite/releases.js';
import type { AuditFilter, MetadataStore, Page } from '../types.js';
import { PostgresMetadataStore } from './metadata.js';
import { PostgresReleaseStore } from './releases.js';

const CHARS = ['a', 'b', 'B', 'Z', 'z', '0', '9', '.', '-', '_', ' ', 'é', 'É', 'ß', '中', '😀', '(', ')', '/'];
const TIMES = ['2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.500Z', '2025-06-01T12:00:00.000Z', '2026-01-01T00:00:00Z'];
const word = (rng: Rng, min = 1, max = 6) => Array.from({ length: rng.int(min, max) }, () => rng.pick(CHARS)).join('');
const hex12 = (rng: Rng) => Array.from({ length: 12 }, () => rng.pick([...'0123456789abcdef'])).join('');

interface Pair {
  meta: MetadataStore;
  releases: ReleaseStore;
}

/** Every page of a listing, as returned (cursors included). */
async function pages<T>(page: (cursor: string | null) => Promise<Page<T>>): Promise<Page<T>[]> {
  const out: Page<T>[] = [];
  let cursor: string | null = null;
  do {
    const p: Page<T> = await page(cursor);
    out.push(p);
    cursor = p.next_cursor;
  } while (cursor !== null && out.length < 500);
  return out;
}

/** The same writes, made through one pair of stores. */
async function write(s: Pair, rng: Rng, hexes: string[], ids: string[]): Promise<void> {
  for (let i = 0; i < 60; i += 1) {
    const p = samplePack({
      id: rng.pick(ids),
      version: rng.pick(['1.0.0', '1.10.0', '1.2.0', '10.0.0', '1.0.0-beta', '1.0.0-Beta']),
      type: rng.pick(['translation', 'Translation', 'dataset']),
      lang: rng.pick(['en', 'EN', 'ur-PK', 'é']),
      at: rng.pick(TIMES),
      sha256: rng.pick(['a', 'b', 'c']).repeat(64),
    });
    const actor = rng.pick([`token:${rng.pick(hexes)}(${word(rng)})`, `token:${rng.pick(hexes)}`, word(rng)]);
    await s.meta.insertPack(p, { at: p.published_at, actor, action: 'pack.publish', target: `${p.package_id}@${p.version}`, details: { note: word(rng, 0, 8) } });
  }
  for (const id of ids.slice(0, 4)) await s.meta.setDeprecation(id, ['1.0.0', '1.2.0'], word(rng), rng.pick(TIMES), 'admin');
  for (let i = 0; i < 10; i += 1) {
    const keyId = Array.from({ length: 16 }, () => rng.pick([...'0123456789ABCDEFabcdef'])).join('');
    await s.meta.addKey({ key_id: keyId, public_key: word(rng), name: word(rng), added_at: rng.pick(TIMES), purpose: rng.pick(['pack', 'release'] as const) }, { at: rng.pick(TIMES), actor: 'admin', action: 'key.add', target: `key:${keyId}`, details: null });
  }
  for (let i = 0; i < 10; i += 1) {
    const id = `${word(rng, 12, 12)}${i}`;
    await s.meta.createToken({ id, name: word(rng), role: rng.pick(['admin', 'publisher'] as const), created_at: rng.pick(TIMES), last_used_at: null, revoked_at: null }, `${i}`.padStart(64, 'h'));
  }
  for (let i = 0; i < 40; i += 1) {
    const action = rng.pick(['token.create', 'token.revoke', 'tokens', 'token/x', 'token', 'pack.deprecate', 'release.publish']);
    await s.meta.appendAudit({ at: rng.pick(TIMES), actor: rng.pick([`token:${rng.pick(hexes)}(${word(rng)})`, `token:${rng.pick(hexes)}`, word(rng)]), action, target: word(rng, 1, 2), details: null });
  }
  for (let i = 0; i < 6; i += 1) await s.releases.upsertProfile({ name: word(rng, 1, 4), roles: [word(rng)], description: word(rng), updated_at: rng.pick(TIMES) }, 'admin');
  for (let i = 0; i < 12; i += 1) {
    const r = await s.releases.createRelease(newRelease(word(rng, 1, 3), rng.pick(['stable', 'beta', 'ß'])));
    if (r === 'exists') continue;
    const artifacts = [];
    for (const pack of (await s.meta.listActive({})).slice(0, rng.int(0, 4))) {
      const a = { role: word(rng, 1, 2), package_id: pack.package_id, version: pack.version, attached_at: rng.pick(TIMES) };
      if ((await s.releases.attachArtifact(r.id, a, 'admin')) === 'attached') artifacts.push(a);
    }
    if (rng.float() < 0.6) {
      const got = (await s.releases.getRelease(r.id))!;
      await s.releases.publishRelease(r.id, signedManifest((await s.releases.channelSequence(r.channel)) + 1), artifactsKey(got.artifacts), rng.pick(TIMES), 'admin');
    }
  }
}

/** Everything the stores can be asked, as one value to compare. */
async function answers(s: Pair, hexes: string[], ids: string[]): Promise<unknown> {
  const filters: AuditFilter[] = [
    {},
    ...hexes.map((h) => ({ actor: `token:${h}` })),
    { action: 'token.*' },
    { action: 'pack.*' },
    { action: 'tokens' },
    { since: TIMES[1]! },
    { action: 'token.*', since: TIMES[2]! },
  ];
  return {
    active: await s.meta.listActive({}),
    byType: await Promise.all(['translation', 'Translation', 'dataset'].map((type) => s.meta.listActive({ type }))),
    byLang: await Promise.all(['en', 'EN', 'é'].map((lang) => s.meta.listActive({ lang, type: 'translation' }))),
    versions: await Promise.all(ids.map((id) => s.meta.listVersions(id))),
    packIds: await pages((c) => s.meta.listPackIds(3, c)),
    count: await s.meta.countPacks(),
    blobs: await s.meta.listBlobRefs(),
    keys: await s.meta.listKeys(),
    tokens: await s.meta.listTokens(),
    audit: await Promise.all(filters.map((f) => pages((c) => s.meta.listAudit(4, c, f)))),
    releases: await pages((c) => s.releases.listReleases(2, c)),
    published: await Promise.all(['stable', 'beta', 'ß'].map((ch) => s.releases.listPublished(ch))),
    sequences: await Promise.all(['stable', 'beta', 'ß'].map((ch) => s.releases.channelSequence(ch))),
    profiles: await s.releases.listProfiles(),
  };
}

describePg('PostgreSQL answers as SQLite does', () => {
  let dir: string;
  let schema: TestSchema;
  let sqlite: SqliteMetadataStore;
  let postgres: PostgresMetadataStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iqp-parity-'));
    sqlite = new SqliteMetadataStore(join(dir, 'registry.sqlite'));
    schema = await freshSchema();
    postgres = new PostgresMetadataStore(schema.options());
    await Promise.all([sqlite.migrate(), postgres.migrate()]);
  });
  afterAll(async () => {
    await sqlite.close();
    await postgres.close();
    await rm(dir, { recursive: true, force: true });
    await schema.drop();
  });

  it('the same seeded writes give the same listings, orders, pages and cursors', async () => {
    const { seed } = seededRng('store parity');
    const pairs: Pair[] = [
      { meta: sqlite, releases: new SqliteReleaseStore(sqlite) },
      { meta: postgres, releases: new PostgresReleaseStore(postgres.db) },
    ];
    const results = [];
    for (const pair of pairs) {
      const rng = new Rng(seed);
      const hexes = Array.from({ length: 4 }, () => hex12(rng));
      const ids = Array.from({ length: 12 }, () => word(rng));
      await write(pair, rng, hexes, ids);
      results.push(await answers(pair, hexes, ids));
    }
    expect(results[1]).toEqual(results[0]);
    expect(JSON.stringify(results[1]), 'keys in the same order too, as the API would send them').toBe(JSON.stringify(results[0]));
  });
});
