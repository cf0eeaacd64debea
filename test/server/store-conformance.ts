/**
 * The storage contract, once: every MetadataStore and BlobStore adapter (the embedded SQLite and
 * filesystem ones today, Postgres and S3-compatible ones later) runs these suites through a
 * factory, the way unjs/unstorage's test/drivers/utils.ts tests each driver. The tests use only
 * the interfaces in server/stores/types.ts, plus the few hooks a harness provides for what the
 * interface deliberately cannot do (reopen the storage, try to rewrite the audit log underneath).
 */
import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Readable } from 'node:stream';
import type { Manifest } from '../../src/pack/format.js';
import { type BlobStore, type MetadataStore, type NewAuditEntry, ORPHAN_GRACE_MS, type PackRecord, type Page, type PublisherKey, type TokenRecord } from '../../server/stores/types.js';

// ---------------------------------------------------------------------------------------------
// Sample records

const hex = (s: string) => createHash('sha256').update(s).digest('hex');

export function samplePack(p: { id: string; version: string; type?: string; lang?: string; min?: string; sha256?: string; at?: string }): PackRecord {
  const manifest: Manifest = {
    format: 1,
    package_id: p.id,
    package_type: p.type ?? 'translation',
    version: p.version,
    language_code: p.lang ?? 'en',
    name: `${p.id} ${p.version}`,
    description: 'A sample record for the store conformance suite.',
    min_app_version: p.min ?? '1.0.0',
    created_at: '2025-01-01T00:00:00Z',
    files: [{ path: 'content.sqlite', size_bytes: 4096, sha256: hex(`content ${p.id}@${p.version}`) }],
    tables: [{ name: 'items', row_count: 3, columns: ['id', 'text'] }],
  };
  return {
    package_id: p.id,
    version: p.version,
    package_type: manifest.package_type,
    language_code: manifest.language_code,
    min_app_version: manifest.min_app_version,
    manifest,
    manifest_json: `${JSON.stringify(manifest, null, 2)}\n`,
    signature: `untrusted comment: signature\nRUQ${p.id}\ntrusted comment: iqp-pack\nsig\n`,
    signer_key_id: '0123456789ABCDEF',
    size_bytes: 1234,
    sha256: p.sha256 ?? hex(`${p.id}@${p.version}`),
    published_at: p.at ?? '2025-02-01T00:00:00.000Z',
    deprecated_message: null,
    deprecated_at: null,
  };
}

function publishAudit(p: PackRecord, actor = 'token:pub(test)'): NewAuditEntry {
  return { at: p.published_at, actor, action: 'pack.publish', target: `${p.package_id}@${p.version}`, details: { after: { sha256: p.sha256 } } };
}

function sampleToken(id: string, role: 'admin' | 'publisher' = 'publisher'): TokenRecord {
  return { id, name: `name-${id}`, role, created_at: '2025-01-01T00:00:00.000Z', last_used_at: null, revoked_at: null };
}

function sampleKey(keyId: string, purpose: PublisherKey['purpose'] = 'pack'): PublisherKey {
  return { key_id: keyId, public_key: `untrusted comment: minisign public key ${keyId}\nRWQ${keyId}\n`, name: `key ${keyId}`, added_at: '2025-01-01T00:00:00.000Z', purpose };
}

async function allAudit(store: MetadataStore, filter?: { actor?: string; target?: string }) {
  return (await store.listAudit(500, null, filter)).items;
}

/** Every item of a keyset-paged listing, checking that each page is within its limit. */
async function drain<T>(page: (cursor: string | null) => Promise<Page<T>>, limit: number): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i += 1) {
    const p: Page<T> = await page(cursor);
    expect(p.items.length).toBeLessThanOrEqual(limit);
    out.push(...p.items);
    expect(p.has_more).toBe(p.next_cursor !== null);
    if (!p.has_more) return out;
    cursor = p.next_cursor;
  }
  throw new Error('paging never ended');
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
}

// ---------------------------------------------------------------------------------------------
// MetadataStore

export interface MetadataHarness {
  /** A fresh, empty, not yet migrated store. */
  readonly store: MetadataStore;
  /** A second store over the same storage (after the first is closed), not yet migrated. */
  reopen(): Promise<MetadataStore>;
  /** Attempts to rewrite or remove an audit entry below the interface; an append-only store refuses both. */
  readonly tamperAudit: { update(id: number): Promise<unknown>; delete(id: number): Promise<unknown> };
  cleanup(): Promise<void>;
}

export function metadataStoreConformance(name: string, make: () => Promise<MetadataHarness>): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    let h: MetadataHarness;
    let store: MetadataStore;
    let firstMigration: number[];

    beforeEach(async () => {
      h = await make();
      store = h.store;
      firstMigration = await store.migrate();
    });
    afterEach(async () => {
      await store.close();
      await h.cleanup();
    });

    describe('migrations and health', () => {
      it('applies every migration once, in order; again, and after reopening, nothing', async () => {
        expect(firstMigration.length).toBeGreaterThan(0);
        expect([...firstMigration].sort((a, b) => a - b)).toEqual(firstMigration);
        expect(await store.migrate()).toEqual([]);
        await store.insertPack(samplePack({ id: 'kept.pack', version: '1.0.0' }), publishAudit(samplePack({ id: 'kept.pack', version: '1.0.0' })));
        await store.close();
        store = await h.reopen();
        expect(await store.migrate()).toEqual([]);
        expect(await store.getPack('kept.pack', '1.0.0'), 'data survives reopening and migrating').not.toBeNull();
      });

      it('reports health, and closing twice is harmless', async () => {
        await expect(store.health()).resolves.toBeUndefined();
        await store.close();
        await expect(store.close()).resolves.toBeUndefined();
        store = await h.reopen();
      });
    });

    describe('insertPack / getPack', () => {
      it('creates a pack and its audit entry; getPack returns the record as stored', async () => {
        const p = samplePack({ id: 'a.pack', version: '1.2.3' });
        expect(await store.insertPack(p, publishAudit(p))).toBe('created');
        expect(await store.getPack('a.pack', '1.2.3')).toEqual(p);
        expect(await store.getPack('a.pack', '1.2.4')).toBeNull();
        expect(await store.getPack('b.pack', '1.2.3')).toBeNull();
        const audit = await allAudit(store);
        expect(audit).toHaveLength(1);
        expect(audit[0]).toMatchObject({ ...publishAudit(p), id: expect.any(Number) });
      });

      it('answers identical for the same sha256 and conflict for another, writing no audit entry and changing nothing', async () => {
        const p = samplePack({ id: 'a.pack', version: '1.0.0' });
        await store.insertPack(p, publishAudit(p));
        const again = { ...p, published_at: '2030-01-01T00:00:00.000Z' };
        expect(await store.insertPack(again, publishAudit(again))).toBe('identical');
        const other = samplePack({ id: 'a.pack', version: '1.0.0', sha256: hex('other bytes'), at: '2031-01-01T00:00:00.000Z' });
        expect(await store.insertPack(other, publishAudit(other))).toBe('conflict');
        expect(await store.getPack('a.pack', '1.0.0')).toEqual(p);
        expect(await allAudit(store)).toHaveLength(1);
        expect(await store.countPacks()).toBe(1);
      });

      it('is atomic: when the audit entry cannot be written, the pack is not stored either', async () => {
        const p = samplePack({ id: 'a.pack', version: '1.0.0' });
        const circular: Record<string, unknown> = {};
        circular['self'] = circular;
        await expect(store.insertPack(p, { ...publishAudit(p), details: circular })).rejects.toThrow();
        expect(await store.getPack('a.pack', '1.0.0')).toBeNull();
        expect(await store.countPacks()).toBe(0);
        expect(await allAudit(store)).toEqual([]);
        expect(await store.insertPack(p, publishAudit(p)), 'nothing half-written blocks a retry').toBe('created');
      });

      it('settles concurrent inserts of one version: exactly one created', async () => {
        const p = samplePack({ id: 'race.pack', version: '1.0.0' });
        const results = await Promise.all(Array.from({ length: 8 }, () => store.insertPack(p, publishAudit(p))));
        expect(results.filter((r) => r === 'created')).toHaveLength(1);
        expect(results.filter((r) => r === 'identical')).toHaveLength(7);
        expect(await allAudit(store)).toHaveLength(1);
      });
    });

    describe('listings', () => {
      const packs = [
        samplePack({ id: 'quran.en', version: '1.0.0', type: 'translation', lang: 'en' }),
        samplePack({ id: 'quran.en', version: '1.1.0', type: 'translation', lang: 'en' }),
        samplePack({ id: 'quran.ar', version: '1.0.0', type: 'translation', lang: 'ar' }),
        samplePack({ id: 'foods.en', version: '2.0.0', type: 'dataset', lang: 'en' }),
        samplePack({ id: 'cards.ur', version: '0.1.0', type: 'deck', lang: 'ur-PK' }),
      ];
      const key = (p: Pick<PackRecord, 'package_id' | 'version'>) => `${p.package_id}@${p.version}`;
      const keys = (list: readonly PackRecord[]) => list.map(key).sort();

      beforeEach(async () => {
        for (const p of packs) await store.insertPack(p, publishAudit(p));
      });

      it('listVersions gives every version of one pack, any status', async () => {
        await store.setDeprecation('quran.en', ['1.0.0'], 'old', '2025-03-01T00:00:00.000Z', 'admin');
        expect(keys(await store.listVersions('quran.en'))).toEqual(['quran.en@1.0.0', 'quran.en@1.1.0']);
        expect(await store.listVersions('nope.pack')).toEqual([]);
      });

      it('listActive filters by type, language, both, and leaves deprecated versions out', async () => {
        expect(keys(await store.listActive({}))).toEqual(keys(packs));
        expect(keys(await store.listActive({ type: 'translation' }))).toEqual(['quran.ar@1.0.0', 'quran.en@1.0.0', 'quran.en@1.1.0']);
        expect(keys(await store.listActive({ lang: 'en' }))).toEqual(['foods.en@2.0.0', 'quran.en@1.0.0', 'quran.en@1.1.0']);
        expect(keys(await store.listActive({ type: 'translation', lang: 'ar' }))).toEqual(['quran.ar@1.0.0']);
        expect(await store.listActive({ type: 'nope' })).toEqual([]);
        expect(await store.listActive({ lang: 'ur' }), 'language is matched exactly').toEqual([]);
        await store.setDeprecation('quran.en', ['1.1.0'], 'withdrawn', '2025-03-01T00:00:00.000Z', 'admin');
        expect(keys(await store.listActive({ lang: 'en' }))).toEqual(['foods.en@2.0.0', 'quran.en@1.0.0']);
      });

      it('countPacks counts versions; listBlobRefs lists each stored sha256 once', async () => {
        expect(await store.countPacks()).toBe(packs.length);
        const shared = samplePack({ id: 'same.bytes', version: '1.0.0', sha256: packs[0]!.sha256 });
        await store.insertPack(shared, publishAudit(shared));
        expect(await store.countPacks()).toBe(packs.length + 1);
        expect((await store.listBlobRefs()).sort()).toEqual(packs.map((p) => p.sha256).sort());
      });

      it('listPackIds groups versions per pack, pages by keyset, and cursors are opaque', async () => {
        const all = await drain((c) => store.listPackIds(2, c), 2);
        expect(all.map((x) => x.package_id)).toEqual(['cards.ur', 'foods.en', 'quran.ar', 'quran.en']);
        expect(all.find((x) => x.package_id === 'quran.en')).toMatchObject({ versions: 2, latest_published_at: packs[1]!.published_at });
        const first = await store.listPackIds(2, null);
        expect(first.has_more).toBe(true);
        expect(first.next_cursor).toEqual(expect.any(String));
        for (const item of first.items) expect(first.next_cursor).not.toContain(item.package_id);
        const whole = await store.listPackIds(10, null);
        expect(whole).toEqual({ items: all, has_more: false, next_cursor: null });
      });

      it('listPackIds stays stable while packs are added between pages: no repeats, nothing that existed skipped', async () => {
        const seen: string[] = [];
        let page = await store.listPackIds(2, null);
        seen.push(...page.items.map((x) => x.package_id));
        // One id sorts before the cursor, one after it, one is a new version of a pack already seen.
        for (const p of [samplePack({ id: 'aaa.first', version: '1.0.0' }), samplePack({ id: 'zzz.last', version: '1.0.0' }), samplePack({ id: 'cards.ur', version: '0.2.0' })]) {
          await store.insertPack(p, publishAudit(p));
        }
        while (page.has_more) {
          page = await store.listPackIds(2, page.next_cursor);
          seen.push(...page.items.map((x) => x.package_id));
        }
        expect(new Set(seen).size, `repeated: ${seen.join(', ')}`).toBe(seen.length);
        for (const id of ['cards.ur', 'foods.en', 'quran.ar', 'quran.en', 'zzz.last']) expect(seen).toContain(id);
      });

      it('refuses a cursor it did not make with IQP_E_USAGE', async () => {
        for (const bad of ['garbage!', 'e30', Buffer.from('{"k":null}').toString('base64url'), Buffer.from('[1]').toString('base64url'), '%%%']) {
          await expectCode(store.listPackIds(2, bad), 'IQP_E_USAGE');
          await expectCode(store.listAudit(2, bad), 'IQP_E_USAGE');
        }
      });

      it('refuses a cursor of one listing passed to the other', async () => {
        const packsCursor = (await store.listPackIds(1, null)).next_cursor!;
        const auditCursor = (await store.listAudit(1, null)).next_cursor!;
        expect(packsCursor).toEqual(expect.any(String));
        expect(auditCursor).toEqual(expect.any(String));
        await expectCode(store.listAudit(1, packsCursor), 'IQP_E_USAGE');
        await expectCode(store.listPackIds(1, auditCursor), 'IQP_E_USAGE');
      });
    });

    describe('setDeprecation', () => {
      beforeEach(async () => {
        for (const v of ['1.0.0', '1.1.0']) {
          const p = samplePack({ id: 'dep.pack', version: v });
          await store.insertPack(p, publishAudit(p));
        }
      });

      it('sets and clears deprecation with one audit entry per version recording before and after', async () => {
        const set = await store.setDeprecation('dep.pack', ['1.0.0', '1.1.0'], 'Use 2.0.0', '2025-03-01T00:00:00.000Z', 'token:a(admin)');
        expect(set.map((p) => [p.version, p.deprecated_message, p.deprecated_at])).toEqual([
          ['1.0.0', 'Use 2.0.0', '2025-03-01T00:00:00.000Z'],
          ['1.1.0', 'Use 2.0.0', '2025-03-01T00:00:00.000Z'],
        ]);
        expect(await store.getPack('dep.pack', '1.0.0')).toMatchObject({ deprecated_message: 'Use 2.0.0', deprecated_at: '2025-03-01T00:00:00.000Z' });

        const cleared = await store.setDeprecation('dep.pack', ['1.0.0'], null, '2025-04-01T00:00:00.000Z', 'token:b(admin)');
        expect(cleared).toHaveLength(1);
        expect(cleared[0]).toMatchObject({ version: '1.0.0', deprecated_message: null, deprecated_at: null });
        expect(await store.getPack('dep.pack', '1.0.0')).toMatchObject({ deprecated_message: null, deprecated_at: null });

        const audit = (await allAudit(store, { target: 'dep.pack@1.0.0' })).map(({ id: _id, ...rest }) => rest);
        expect(audit).toEqual([
          {
            at: '2025-04-01T00:00:00.000Z',
            actor: 'token:b(admin)',
            action: 'pack.undeprecate',
            target: 'dep.pack@1.0.0',
            details: { before: { deprecated_message: 'Use 2.0.0' }, after: { deprecated_message: null } },
          },
          {
            at: '2025-03-01T00:00:00.000Z',
            actor: 'token:a(admin)',
            action: 'pack.deprecate',
            target: 'dep.pack@1.0.0',
            details: { before: { deprecated_message: null }, after: { deprecated_message: 'Use 2.0.0' } },
          },
          expect.objectContaining({ action: 'pack.publish' }),
        ]);
      });

      it('skips versions that do not exist, writing nothing for them', async () => {
        const before = (await allAudit(store)).length;
        expect(await store.setDeprecation('dep.pack', ['9.9.9'], 'x', '2025-03-01T00:00:00.000Z', 'admin')).toEqual([]);
        expect(await store.setDeprecation('nope.pack', ['1.0.0'], 'x', '2025-03-01T00:00:00.000Z', 'admin')).toEqual([]);
        expect(await allAudit(store)).toHaveLength(before);
      });
    });

    describe('publisher keys', () => {
      it('adds a key once, with an audit entry only when it was created', async () => {
        const k = sampleKey('0123456789ABCDEF');
        const audit = { at: k.added_at, actor: 'admin', action: 'key.add', target: `key:${k.key_id}`, details: null };
        expect(await store.addKey(k, audit)).toBe('created');
        expect(await store.addKey({ ...k, name: 'renamed' }, audit)).toBe('exists');
        expect(await store.listKeys()).toEqual([k]);
        expect(await allAudit(store)).toHaveLength(1);
      });

      it('removes a key with an audit entry; removing an unknown key is false and writes nothing', async () => {
        const k = sampleKey('0123456789ABCDEF');
        const other = sampleKey('FEDCBA9876543210', 'release');
        await store.addKey(k, { at: k.added_at, actor: 'admin', action: 'key.add', target: `key:${k.key_id}`, details: null });
        await store.addKey(other, { at: other.added_at, actor: 'admin', action: 'key.add', target: `key:${other.key_id}`, details: null });
        const remove = { at: '2025-05-01T00:00:00.000Z', actor: 'admin', action: 'key.remove', target: `key:${k.key_id}`, details: null };
        expect(await store.removeKey(k.key_id, remove)).toBe(true);
        expect(await store.removeKey(k.key_id, remove)).toBe(false);
        expect(await store.listKeys()).toEqual([other]);
        expect((await allAudit(store, { target: `key:${k.key_id}` })).map((e) => e.action)).toEqual(['key.remove', 'key.add']);
      });
    });

    describe('change counter', () => {
      it('moves with every write a public answer depends on, survives reopening, and never moves for tokens or audit entries alone', async () => {
        const moves = async (what: string, write: () => Promise<unknown>, expected: boolean) => {
          const before = store.generation();
          await write();
          const after = store.generation();
          expect(after >= before, `${what}: never backwards`).toBe(true);
          expect(after !== before, `${what}: ${expected ? 'moves' : 'stays'}`).toBe(expected);
        };
        const p = samplePack({ id: 'gen.pack', version: '1.0.0' });
        const k = sampleKey('0123456789ABCDEF');
        const keyAudit = { at: k.added_at, actor: 'admin', action: 'key.add', target: `key:${k.key_id}`, details: null };
        await moves('publish', () => store.insertPack(p, publishAudit(p)), true);
        await moves('identical publish', () => store.insertPack(p, publishAudit(p)), false);
        await moves('deprecate', () => store.setDeprecation('gen.pack', ['1.0.0'], 'old', '2025-03-01T00:00:00.000Z', 'admin'), true);
        await moves('deprecating nothing', () => store.setDeprecation('gen.pack', ['9.9.9'], 'old', '2025-03-01T00:00:00.000Z', 'admin'), false);
        await moves('key added', () => store.addKey(k, keyAudit), true);
        await moves('key removed', () => store.removeKey(k.key_id, { ...keyAudit, action: 'key.remove' }), true);
        const t = sampleToken('bbbbbbbbbbbb', 'admin');
        await moves('token created', () => store.createToken(t, 'c'.repeat(64)), false);
        await moves('token used', () => store.findToken('c'.repeat(64), '2025-06-01T00:00:00.000Z'), false);
        await moves('token revoked', () => store.revokeToken(t.id, '2025-06-02T00:00:00.000Z'), false);
        await moves('audit entry', () => store.appendAudit({ at: '2025-06-03T00:00:00.000Z', actor: 'admin', action: 'note', target: 'x', details: null }), false);
        const last = store.generation();
        await store.close();
        store = await h.reopen();
        await store.migrate();
        expect(store.generation(), 'reopening never moves it back').toBe(last);
      });
    });

    describe('tokens', () => {
      it('finds a token by the hash of its secret and records when it was used', async () => {
        const t = sampleToken('aaaaaaaaaaaa', 'admin');
        await store.createToken(t, hex('secret-a'));
        expect(await store.findToken(hex('secret-a'), '2025-06-01T10:00:00.000Z')).toMatchObject({ id: t.id, name: t.name, role: 'admin', revoked_at: null });
        expect(await store.findToken(hex('secret-b'), '2025-06-01T10:00:00.000Z')).toBeNull();
        expect(await store.findToken('secret-a', '2025-06-01T10:00:00.000Z'), 'the secret itself is not a key').toBeNull();
        const [listed] = await store.listTokens();
        expect(listed).toMatchObject({ id: t.id, last_used_at: '2025-06-01T10:00:00.000Z' });
        expect(listed, 'listings never carry the secret hash').not.toHaveProperty('secret_hash');
        await store.findToken(hex('secret-a'), '2025-06-01T11:30:00.000Z');
        expect((await store.listTokens())[0]!.last_used_at).toBe('2025-06-01T11:30:00.000Z');
      });

      it('does not find a revoked token; revoking twice or an unknown id is false', async () => {
        await store.createToken(sampleToken('aaaaaaaaaaaa'), hex('a'));
        await store.createToken(sampleToken('bbbbbbbbbbbb'), hex('b'));
        expect(await store.revokeToken('aaaaaaaaaaaa', '2025-06-02T00:00:00.000Z')).toBe(true);
        expect(await store.revokeToken('aaaaaaaaaaaa', '2025-06-03T00:00:00.000Z')).toBe(false);
        expect(await store.revokeToken('cccccccccccc', '2025-06-03T00:00:00.000Z')).toBe(false);
        expect(await store.findToken(hex('a'), '2025-06-04T00:00:00.000Z')).toBeNull();
        expect(await store.findToken(hex('b'), '2025-06-04T00:00:00.000Z')).toMatchObject({ id: 'bbbbbbbbbbbb' });
        const listed = await store.listTokens();
        expect(listed.map((t) => [t.id, t.revoked_at])).toEqual([
          ['aaaaaaaaaaaa', '2025-06-02T00:00:00.000Z'],
          ['bbbbbbbbbbbb', null],
        ]);
      });

      it('refuses a second token with the same secret hash or id', async () => {
        await store.createToken(sampleToken('aaaaaaaaaaaa'), hex('a'));
        await expect(store.createToken(sampleToken('bbbbbbbbbbbb'), hex('a'))).rejects.toThrow();
        await expect(store.createToken(sampleToken('aaaaaaaaaaaa'), hex('z'))).rejects.toThrow();
        expect(await store.listTokens()).toHaveLength(1);
      });
    });

    describe('audit log', () => {
      const entry = (i: number, actor = `actor-${i % 3}`): NewAuditEntry => ({
        at: `2025-01-01T00:00:${String(i).padStart(2, '0')}.000Z`,
        actor,
        action: 'test.event',
        target: `target-${i % 2}`,
        details: i % 4 === 0 ? null : { n: i, nested: { list: [i, 'x'] } },
      });

      it('appends entries and lists them newest first with their details', async () => {
        for (let i = 0; i < 5; i += 1) await store.appendAudit(entry(i));
        const listed = await allAudit(store);
        expect(listed.map(({ id: _id, ...rest }) => rest)).toEqual([4, 3, 2, 1, 0].map((i) => entry(i)));
        const ids = listed.map((e) => e.id);
        expect([...ids].sort((a, b) => b - a)).toEqual(ids);
        expect(new Set(ids).size).toBe(ids.length);
      });

      it('filters by actor and target, and pages within a filter', async () => {
        for (let i = 0; i < 12; i += 1) await store.appendAudit(entry(i));
        expect((await allAudit(store, { actor: 'actor-1' })).map((e) => e.details?.['n'])).toEqual([10, 7, 4, 1].map((n) => (n % 4 === 0 ? undefined : n)));
        expect((await allAudit(store, { target: 'target-0' })).every((e) => e.target === 'target-0')).toBe(true);
        expect(await allAudit(store, { actor: 'actor-1', target: 'target-0' })).toHaveLength(2);
        const paged = await drain((c) => store.listAudit(2, c, { target: 'target-1' }), 2);
        expect(paged).toEqual(await allAudit(store, { target: 'target-1' }));
      });

      it('pages by keyset: entries appended between pages never repeat or push older ones out', async () => {
        for (let i = 0; i < 7; i += 1) await store.appendAudit(entry(i));
        const before = await allAudit(store);
        const seen: number[] = [];
        let page = await store.listAudit(3, null);
        seen.push(...page.items.map((e) => e.id));
        for (let i = 0; i < 4; i += 1) await store.appendAudit(entry(50 + i));
        while (page.has_more) {
          page = await store.listAudit(3, page.next_cursor);
          seen.push(...page.items.map((e) => e.id));
        }
        expect(seen).toEqual(before.map((e) => e.id));
        expect(typeof (await store.listAudit(1, null)).next_cursor).toBe('string');
      });

      it('is append-only: updating or deleting an entry underneath the interface is refused', async () => {
        await store.appendAudit(entry(1));
        const [written] = await allAudit(store);
        await expect(h.tamperAudit.update(written!.id)).rejects.toThrow(/append-only/);
        await expect(h.tamperAudit.delete(written!.id)).rejects.toThrow(/append-only/);
        expect(await allAudit(store)).toEqual([written]);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// BlobStore

export interface BlobHarness {
  /** A fresh, empty store (init() not yet called). */
  readonly store: BlobStore;
  /** Makes a committed blob look last written at `at`, underneath the interface (as a crash long ago leaves it). */
  age(sha256: string, at: Date): Promise<void>;
  cleanup(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function blobStoreConformance(name: string, make: () => Promise<BlobHarness>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let h: BlobHarness;
    let store: BlobStore;
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff));
    const sha = createHash('sha256').update(data).digest('hex');

    const listed = async () => (await store.list()).map((b) => b.sha256);
    /** modifiedAt of one listed blob, in ms. */
    const modifiedAt = async (digest: string) => {
      const info = (await store.list()).find((b) => b.sha256 === digest);
      expect(info, digest).toBeDefined();
      expect(info!.modifiedAt).toBeInstanceOf(Date);
      return info!.modifiedAt.getTime();
    };
    // Stores keep whole seconds (HTTP dates, some filesystems): a time read back may be up to 1 s early.
    const SLACK_MS = 2000;

    /** Stages `bytes` and commits them under their sha256. */
    async function put(bytes: Buffer): Promise<string> {
      const staged = await store.stage();
      await writeFile(staged.path, bytes);
      const digest = createHash('sha256').update(bytes).digest('hex');
      await staged.commit(digest);
      return digest;
    }

    beforeEach(async () => {
      h = await make();
      store = h.store;
      await store.init();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('init is idempotent and the store reports health', async () => {
      await store.init();
      await expect(store.health()).resolves.toBeUndefined();
      expect(await listed()).toEqual([]);
      expect(await store.sweep(), 'health leaves nothing staged').toBe(0);
    });

    it('stages to a distinct local file; commit makes the blob readable under its sha256', async () => {
      const a = await store.stage();
      const b = await store.stage();
      expect(a.path).not.toBe(b.path);
      await writeFile(a.path, data);
      expect(await readFile(a.path), 'the caller can read the staged file back').toEqual(data);
      expect(await store.has(sha)).toBe(false);
      await a.commit(sha);
      await b.abort();
      expect(await store.has(sha)).toBe(true);
      expect(await store.size(sha)).toBe(data.length);
      expect(await readAll(await store.read(sha))).toEqual(data);
      expect(await listed()).toEqual([sha]);
      await expect(a.abort(), 'abort after commit is harmless').resolves.toBeUndefined();
      expect(await store.has(sha)).toBe(true);
    });

    it('reads inclusive byte ranges exactly', async () => {
      await put(data);
      for (const [start, end] of [
        [0, 0],
        [0, 9],
        [10, 99],
        [2999, 2999],
        [100, 2999],
        [0, 2999],
        [1500, 1501],
      ] as const) {
        expect(await readAll(await store.read(sha, { start, end })), `${start}-${end}`).toEqual(data.subarray(start, end + 1));
      }
    });

    it('abort removes the staged file and stores nothing', async () => {
      const staged = await store.stage();
      await writeFile(staged.path, data);
      await staged.abort();
      await staged.abort();
      await expect(stat(staged.path)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await listed()).toEqual([]);
      expect(await store.sweep()).toBe(0);
    });

    it('committing the same content twice keeps one blob', async () => {
      await put(data);
      await put(data);
      expect(await listed()).toEqual([sha]);
      expect(await readAll(await store.read(sha))).toEqual(data);
    });

    it('lists every blob sorted; delete removes one and is idempotent', async () => {
      const shas = [await put(data), await put(Buffer.from('second')), await put(Buffer.from('third'))];
      expect(await listed()).toEqual([...shas].sort());
      await store.delete(shas[1]!);
      await store.delete(shas[1]!);
      expect(await listed()).toEqual([shas[0]!, shas[2]!].sort());
      expect(await store.has(shas[1]!)).toBe(false);
      expect(await store.size(shas[1]!)).toBeNull();
      await expect(store.read(shas[1]!), 'a missing blob fails before any stream exists, as a missing file does').rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('answers a well-formed but unknown sha256 as absent, and refuses one that is not a sha256', async () => {
      const unknown = 'f'.repeat(64);
      expect(await store.has(unknown)).toBe(false);
      expect(await store.size(unknown)).toBeNull();
      await expect(store.read(unknown)).rejects.toMatchObject({ code: 'ENOENT' });
      for (const bad of ['../../etc/passwd', 'F'.repeat(64), 'abc', `${'a'.repeat(64)}/x`]) {
        const staged = await store.stage();
        await writeFile(staged.path, data);
        await expect(staged.commit(bad), bad).rejects.toThrow();
        await staged.abort();
        await expect(store.read(bad), bad).rejects.toThrow();
      }
      expect(await listed()).toEqual([]);
    });

    it('sweep removes what a crash left staged, and never a committed blob', async () => {
      await put(data);
      for (let i = 0; i < 3; i += 1) await writeFile((await store.stage()).path, `left behind ${i}`);
      expect(await store.sweep()).toBe(3);
      expect(await store.sweep()).toBe(0);
      expect(await listed()).toEqual([sha]);
      expect(await readAll(await store.read(sha))).toEqual(data);
    });

    it('lists when each blob was written, so a sweep can leave young blobs alone', async () => {
      const before = Date.now();
      await put(data);
      const after = Date.now();
      const at = await modifiedAt(sha);
      expect(at).toBeGreaterThanOrEqual(before - SLACK_MS);
      expect(at).toBeLessThanOrEqual(after + SLACK_MS);
    });

    it('committing content it already holds leaves the blob young again, so a re-publish cannot lose it to a sweep', async () => {
      await put(data);
      const longAgo = new Date(Date.now() - 2 * ORPHAN_GRACE_MS);
      await h.age(sha, longAgo);
      expect(Math.abs((await modifiedAt(sha)) - longAgo.getTime())).toBeLessThanOrEqual(SLACK_MS);
      const before = Date.now();
      await put(data);
      expect(await modifiedAt(sha)).toBeGreaterThanOrEqual(before - ORPHAN_GRACE_MS / 2);
      expect(await listed()).toEqual([sha]);
      expect(await readAll(await store.read(sha))).toEqual(data);
    });

    it('reads stream: a large blob arrives in several chunks and can be abandoned', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
      const digest = await put(big);
      const stream = await store.read(digest);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      expect(chunks.length).toBeGreaterThan(1);
      expect(Buffer.concat(chunks).equals(big)).toBe(true);
      const abandoned = await store.read(digest, { start: 5, end: big.length - 1 });
      abandoned.destroy();
      await new Promise((r) => abandoned.once('close', r));
      expect(await text(await store.read(digest, { start: 0, end: 2 }))).toBe('\x07\x07\x07');
    });
  });
}

// ReleaseStore: its own file, by topic.
export { releaseStoreConformance, type ReleaseHarness } from './release-store-conformance.js';
