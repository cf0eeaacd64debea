/**
 * The release storage contract (server/stores/release-types.ts), once for every ReleaseStore
 * adapter, like store-conformance.ts does for metadata and blobs. Artifacts refer to published
 * packs by foreign key, so the harness also inserts packs; it reads the audit log the store writes
 * into and can make audit inserts fail, which the interface deliberately cannot.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { artifactsKey, type ArtifactRecord, type NewRelease, type ReleaseRecord, type ReleaseStore, type SignedReleaseManifest } from '../../server/stores/release-types.js';
import type { AuditEntry } from '../../server/stores/types.js';

export interface ReleaseHarness {
  /** A fresh store over migrated, empty storage. */
  readonly store: ReleaseStore;
  /** Inserts a published pack id@version (what artifacts may refer to). */
  addPack(packageId: string, version: string): Promise<void>;
  /** Audit entries whose target starts with `release`, oldest first. */
  audit(): Promise<AuditEntry[]>;
  /** The change counter of the metadata store over the same storage (MetadataStore.generation). */
  generation(): number;
  /** Makes every audit insert fail until the returned function is called. */
  breakAudit(): Promise<() => Promise<void>>;
  cleanup(): Promise<void>;
}

const AT = '2026-01-01T00:00:00.000Z';
const ACTOR = 'token:abc(test)';

export function newRelease(name: string, channel = 'stable', extra: Partial<NewRelease> = {}): NewRelease {
  return { name, channel, notes: `notes of ${name}`, min_app_version: '1.0.0', required_roles: ['text'], profile: null, created_at: AT, created_by: ACTOR, ...extra };
}

export function signedManifest(sequence: number, expires_at = '2030-01-01T00:00:00Z'): SignedReleaseManifest {
  return { sequence, manifest_json: `{"sequence":${sequence}}\n`, signature: `signature ${sequence}`, signer_key_id: '0123456789ABCDEF', expires_at };
}

const artifact = (role: string, package_id: string, version: string): ArtifactRecord => ({ role, package_id, version, attached_at: AT });

export function releaseStoreConformance(name: string, make: () => Promise<ReleaseHarness>): void {
  describe(`ReleaseStore conformance: ${name}`, () => {
    let h: ReleaseHarness;
    let store: ReleaseStore;

    beforeEach(async () => {
      h = await make();
      store = h.store;
      for (const [id, v] of [['a.text', '1.0.0'], ['a.text', '1.1.0'], ['b.audio', '1.0.0'], ['c.extra', '2.0.0']] as const) await h.addPack(id, v);
    });
    afterEach(() => h.cleanup());

    async function create(releaseName: string, channel = 'stable'): Promise<ReleaseRecord> {
      const r = await store.createRelease(newRelease(releaseName, channel));
      if (r === 'exists') throw new Error(`${releaseName} exists`);
      return r;
    }

    /** A draft with a.text@1.0.0 attached, published with the channel's next sequence. */
    async function published(releaseName: string, channel = 'stable'): Promise<ReleaseRecord> {
      const r = await create(releaseName, channel);
      expect(await store.attachArtifact(r.id, artifact('text', 'a.text', '1.0.0'), ACTOR)).toBe('attached');
      const key = artifactsKey([artifact('text', 'a.text', '1.0.0')]);
      expect(await store.publishRelease(r.id, signedManifest((await store.channelSequence(channel)) + 1), key, AT, ACTOR)).toBe('published');
      return (await store.getRelease(r.id))!;
    }

    /** Runs `change`, expecting exactly one new audit entry for release `id` with this action. */
    async function oneAudit<T>(id: number, action: string, change: () => Promise<T>): Promise<{ result: T; entry: AuditEntry }> {
      const before = (await h.audit()).length;
      const result = await change();
      const after = await h.audit();
      expect(after, `${action} writes one audit entry`).toHaveLength(before + 1);
      const entry = after[after.length - 1]!;
      expect(entry).toMatchObject({ action, target: `release:${id}`, actor: ACTOR });
      return { result, entry };
    }

    /** Runs `change`, expecting it to write nothing: the release and the audit log as they were. */
    async function noChange(id: number, change: () => Promise<unknown>, expected: unknown): Promise<void> {
      const [release, audit, seq] = [await store.getRelease(id), (await h.audit()).length, await store.channelSequence('stable')];
      expect(await change()).toBe(expected);
      expect(await store.getRelease(id)).toEqual(release);
      expect(await h.audit()).toHaveLength(audit);
      expect(await store.channelSequence('stable')).toBe(seq);
    }


    it('moves the change counter with every release write, and not for a refused one', async () => {
      const moves = async (what: string, write: () => Promise<unknown>, expected: boolean) => {
        const before = h.generation();
        await write();
        expect(h.generation() > before, `${what}: ${expected ? 'moves' : 'stays'}`).toBe(expected);
      };
      let r: ReleaseRecord | null = null;
      await moves('create', async () => (r = await create('gen')), true);
      await moves('create again', () => store.createRelease(newRelease('gen')), false);
      await moves('attach', () => store.attachArtifact(r!.id, artifact('text', 'a.text', '1.0.0'), ACTOR), true);
      const key = artifactsKey([artifact('text', 'a.text', '1.0.0')]);
      await moves('publish', async () => store.publishRelease(r!.id, signedManifest((await store.channelSequence('stable')) + 1), key, AT, ACTOR), true);
      await moves('deprecate', () => store.deprecateRelease(r!.id, 'old', AT, ACTOR), true);
      await moves('profile', () => store.upsertProfile({ name: 'core', roles: ['text'], description: '', updated_at: AT }, ACTOR), true);
      await moves('audit entry alone', () => store.appendAudit({ at: AT, actor: ACTOR, action: 'note', target: 'release:x', details: null }), false);
    });
    describe('createRelease', () => {
      it('creates a draft as given, with one audit entry (before null, after the state)', async () => {
        const audit = (await h.audit()).length;
        const result = await store.createRelease(newRelease('2026.11', 'stable', { required_roles: ['audio', 'text'] }));
        if (result === 'exists') throw new Error('exists');
        const entries = (await h.audit()).slice(audit);
        expect(entries).toHaveLength(1);
        const entry = entries[0]!;
        expect(entry).toMatchObject({ action: 'release.create', target: `release:${result.id}`, actor: ACTOR });
        expect(result).toMatchObject({ name: '2026.11', channel: 'stable', status: 'draft', required_roles: ['audio', 'text'], signed: null, artifacts: [], published_at: null });
        expect(await store.getRelease(result.id)).toEqual(result);
        expect(entry.details).toMatchObject({ before: null, after: { status: 'draft', sequence: null, artifacts: [], name: '2026.11', channel: 'stable' } });
        expect(await store.getRelease(result.id + 100)).toBeNull();
      });

      it('answers exists for the same name on the same channel, writing nothing; another channel is fine', async () => {
        await create('2026.11');
        const audit = (await h.audit()).length;
        expect(await store.createRelease(newRelease('2026.11', 'stable', { notes: 'other' }))).toBe('exists');
        expect(await h.audit()).toHaveLength(audit);
        expect((await store.listReleases(10, null)).items).toHaveLength(1);
        expect(await store.createRelease(newRelease('2026.11', 'beta'))).toMatchObject({ channel: 'beta', status: 'draft' });
      });
    });

    describe('attachArtifact / detachArtifact', () => {
      it('attaches with one audit entry; the same artifact again is exists; unknown release or pack refused; all without writing', async () => {
        const r = await create('r');
        const { entry } = await oneAudit(r.id, 'release.attach', () => store.attachArtifact(r.id, artifact('text', 'a.text', '1.0.0'), ACTOR));
        expect(entry.details).toMatchObject({ before: { artifacts: [] }, after: { artifacts: ['text=a.text@1.0.0'] } });
        await noChange(r.id, () => store.attachArtifact(r.id, artifact('text', 'a.text', '1.0.0'), ACTOR), 'exists');
        await noChange(r.id, () => store.attachArtifact(r.id, artifact('text', 'a.text', '9.9.9'), ACTOR), 'no-pack');
        await noChange(r.id, () => store.attachArtifact(r.id, artifact('text', 'zz.none', '1.0.0'), ACTOR), 'no-pack');
        await noChange(r.id, () => store.attachArtifact(r.id + 100, artifact('text', 'a.text', '1.0.0'), ACTOR), 'no-release');
      });

      it('replaces the version of a pack in the same role; the same pack in another role is a second artifact', async () => {
        const r = await create('r');
        await store.attachArtifact(r.id, artifact('text', 'a.text', '1.0.0'), ACTOR);
        const { entry } = await oneAudit(r.id, 'release.attach', () => store.attachArtifact(r.id, artifact('text', 'a.text', '1.1.0'), ACTOR));
        expect(entry.details).toMatchObject({ before: { artifacts: ['text=a.text@1.0.0'] }, after: { artifacts: ['text=a.text@1.1.0'] } });
        await store.attachArtifact(r.id, artifact('extra', 'a.text', '1.0.0'), ACTOR);
        await store.attachArtifact(r.id, artifact('text', 'b.audio', '1.0.0'), ACTOR);
        expect((await store.getRelease(r.id))!.artifacts.map((a) => `${a.role}=${a.package_id}@${a.version}`)).toEqual(['extra=a.text@1.0.0', 'text=a.text@1.1.0', 'text=b.audio@1.0.0']);
      });

      it('detaches with one audit entry; a missing artifact is missing; a published release is not-draft', async () => {
        const r = await create('r');
        await store.attachArtifact(r.id, artifact('text', 'a.text', '1.0.0'), ACTOR);
        await store.attachArtifact(r.id, artifact('audio', 'b.audio', '1.0.0'), ACTOR);
        const { result, entry } = await oneAudit(r.id, 'release.detach', () => store.detachArtifact(r.id, 'audio', 'b.audio', AT, ACTOR));
        expect(result).toBe('detached');
        expect(entry.details).toMatchObject({ before: { artifacts: ['audio=b.audio@1.0.0', 'text=a.text@1.0.0'] }, after: { artifacts: ['text=a.text@1.0.0'] } });
        await noChange(r.id, () => store.detachArtifact(r.id, 'audio', 'b.audio', AT, ACTOR), 'missing');
        await noChange(r.id, () => store.detachArtifact(r.id, 'other', 'a.text', AT, ACTOR), 'missing');
        await noChange(r.id, () => store.detachArtifact(r.id + 100, 'text', 'a.text', AT, ACTOR), 'missing');
        const p = await published('p');
        await noChange(p.id, () => store.detachArtifact(p.id, 'text', 'a.text', AT, ACTOR), 'not-draft');
        await noChange(p.id, () => store.attachArtifact(p.id, artifact('audio', 'b.audio', '1.0.0'), ACTOR), 'not-draft');
      });
    });

    describe('publishRelease / resignRelease / deprecateRelease', () => {
      const key = artifactsKey([artifact('text', 'a.text', '1.0.0')]);

      it('publishes a draft whose artifacts match, with the channel’s next sequence, in one audited step', async () => {
        const r = await create('r');
        await store.attachArtifact(r.id, artifact('text', 'a.text', '1.0.0'), ACTOR);
        await noChange(r.id, () => store.publishRelease(r.id, signedManifest(1), artifactsKey([artifact('text', 'a.text', '1.1.0')]), AT, ACTOR), 'stale');
        await noChange(r.id, () => store.publishRelease(r.id, signedManifest(2), key, AT, ACTOR), 'sequence');
        await noChange(r.id, () => store.publishRelease(r.id + 100, signedManifest(1), key, AT, ACTOR), 'no-release');
        const { result, entry } = await oneAudit(r.id, 'release.publish', () => store.publishRelease(r.id, signedManifest(1), key, '2026-02-01T00:00:00.000Z', ACTOR));
        expect(result).toBe('published');
        expect(entry.details).toMatchObject({ before: { status: 'draft', sequence: null }, after: { status: 'published', sequence: 1, signer_key_id: '0123456789ABCDEF' } });
        expect(await store.getRelease(r.id)).toMatchObject({ status: 'published', published_at: '2026-02-01T00:00:00.000Z', published_by: ACTOR, signed: signedManifest(1) });
        expect(await store.channelSequence('stable')).toBe(1);
        expect(await store.channelSequence('beta'), 'sequences are per channel').toBe(0);
        await noChange(r.id, () => store.publishRelease(r.id, signedManifest(2), key, AT, ACTOR), 'not-draft');
      });

      it('moves the channel sequence past deprecated releases: it never goes back', async () => {
        const first = await published('first');
        await store.deprecateRelease(first.id, 'withdrawn', AT, ACTOR);
        expect(await store.channelSequence('stable')).toBe(1);
        const second = await create('second');
        await store.attachArtifact(second.id, artifact('text', 'a.text', '1.0.0'), ACTOR);
        await noChange(second.id, () => store.publishRelease(second.id, signedManifest(1), key, AT, ACTOR), 'sequence');
        expect(await store.publishRelease(second.id, signedManifest(2), key, AT, ACTOR)).toBe('published');
        expect(await store.channelSequence('stable')).toBe(2);
        const beta = await published('beta-one', 'beta');
        expect([beta.signed!.sequence, await store.channelSequence('beta')]).toEqual([1, 1]);
      });

      it('re-signs a published release with the next sequence; drafts, deprecated, stale or wrong sequences are refused', async () => {
        const draft = await create('draft');
        await noChange(draft.id, () => store.resignRelease(draft.id, signedManifest(1), artifactsKey([]), AT, ACTOR), 'not-published');
        const r = await published('r');
        await noChange(r.id, () => store.resignRelease(r.id, signedManifest(2), artifactsKey([]), AT, ACTOR), 'stale');
        await noChange(r.id, () => store.resignRelease(r.id, signedManifest(1), key, AT, ACTOR), 'sequence');
        await noChange(r.id, () => store.resignRelease(r.id + 100, signedManifest(2), key, AT, ACTOR), 'no-release');
        const { result, entry } = await oneAudit(r.id, 'release.resign', () => store.resignRelease(r.id, signedManifest(2, '2031-01-01T00:00:00Z'), key, AT, ACTOR));
        expect(result).toBe('resigned');
        expect(entry.details).toMatchObject({ before: { status: 'published', sequence: 1 }, after: { status: 'published', sequence: 2, expires_at: '2031-01-01T00:00:00Z' } });
        expect(await store.getRelease(r.id)).toMatchObject({ status: 'published', signed: signedManifest(2, '2031-01-01T00:00:00Z'), published_at: r.published_at });
        await store.deprecateRelease(r.id, 'gone', AT, ACTOR);
        await noChange(r.id, () => store.resignRelease(r.id, signedManifest(3), key, AT, ACTOR), 'not-published');
      });

      it('deprecates only a published release, once, with one audit entry', async () => {
        const draft = await create('draft');
        await noChange(draft.id, () => store.deprecateRelease(draft.id, 'no', AT, ACTOR), 'not-published');
        await noChange(draft.id, () => store.deprecateRelease(draft.id + 100, 'no', AT, ACTOR), 'no-release');
        const r = await published('r');
        const { result, entry } = await oneAudit(r.id, 'release.deprecate', () => store.deprecateRelease(r.id, 'bad translation', '2026-03-01T00:00:00.000Z', ACTOR));
        expect(result).toBe('deprecated');
        expect(entry.details).toMatchObject({ before: { status: 'published', deprecated_message: null }, after: { status: 'deprecated', deprecated_message: 'bad translation', sequence: 1 } });
        expect(await store.getRelease(r.id)).toMatchObject({ status: 'deprecated', deprecated_at: '2026-03-01T00:00:00.000Z', deprecated_message: 'bad translation' });
        await noChange(r.id, () => store.deprecateRelease(r.id, 'again', AT, ACTOR), 'not-published');
      });
    });

    describe('listings', () => {
      it('listPublished: one channel’s published releases by sequence, highest first; drafts and deprecated left out', async () => {
        const [a, , c] = [await published('a'), await published('b'), await published('c')];
        await published('other', 'beta');
        await create('draft');
        expect((await store.listPublished('stable')).map((r) => r.name)).toEqual(['c', 'b', 'a']);
        await store.deprecateRelease(c.id, 'withdrawn', AT, ACTOR);
        expect(await store.resignRelease(a.id, signedManifest(4), artifactsKey(a.artifacts), AT, ACTOR)).toBe('resigned');
        expect((await store.listPublished('stable')).map((r) => [r.name, r.signed!.sequence])).toEqual([['a', 4], ['b', 2]]);
        expect((await store.listPublished('beta')).map((r) => r.name)).toEqual(['other']);
        expect(await store.listPublished('nightly')).toEqual([]);
      });

      it('listReleases: newest first, keyset-paged, filtered by channel and status', async () => {
        for (const n of ['r1', 'r2', 'r3', 'r4', 'r5']) await create(n, n === 'r3' ? 'beta' : 'stable');
        await published('r6');
        const all: string[] = [];
        let page = await store.listReleases(2, null);
        for (;;) {
          expect(page.items.length).toBeLessThanOrEqual(2);
          expect(page.has_more).toBe(page.next_cursor !== null);
          all.push(...page.items.map((r) => r.name));
          if (!page.has_more) break;
          page = await store.listReleases(2, page.next_cursor);
        }
        expect(all).toEqual(['r6', 'r5', 'r4', 'r3', 'r2', 'r1']);
        expect((await store.listReleases(10, null, { channel: 'beta' })).items.map((r) => r.name)).toEqual(['r3']);
        expect((await store.listReleases(10, null, { status: 'published' })).items.map((r) => r.name)).toEqual(['r6']);
        expect((await store.listReleases(10, null, { channel: 'stable', status: 'draft' })).items.map((r) => r.name)).toEqual(['r5', 'r4', 'r2', 'r1']);
        expect(await store.listReleases(6, null)).toMatchObject({ has_more: false, next_cursor: null });
        await expect(store.listReleases(2, 'not-a-cursor')).rejects.toMatchObject({ code: 'IQP_E_USAGE' });
      });

      it('listReleases stays stable while releases are created between pages: no repeats, no skips', async () => {
        for (let i = 1; i <= 7; i += 1) await create(`r${i}`);
        const seen: string[] = [];
        let page = await store.listReleases(3, null);
        seen.push(...page.items.map((r) => r.name));
        while (page.has_more) {
          await create(`new-${seen.length}`);
          page = await store.listReleases(3, page.next_cursor);
          seen.push(...page.items.map((r) => r.name));
        }
        expect(seen).toEqual(['r7', 'r6', 'r5', 'r4', 'r3', 'r2', 'r1']);
      });
    });

    describe('profiles', () => {
      it('upserts, gets and lists profiles by name, one audit entry per change with before and after', async () => {
        const before = (await h.audit()).length;
        await store.upsertProfile({ name: 'quran-app', roles: ['text', 'audio'], description: 'app', updated_at: AT }, ACTOR);
        await store.upsertProfile({ name: 'basic', roles: ['text'], description: '', updated_at: AT }, ACTOR);
        await store.upsertProfile({ name: 'quran-app', roles: ['text'], description: 'smaller', updated_at: '2026-02-01T00:00:00.000Z' }, ACTOR);
        expect(await store.getProfile('quran-app')).toEqual({ name: 'quran-app', roles: ['text'], description: 'smaller', updated_at: '2026-02-01T00:00:00.000Z' });
        expect(await store.getProfile('none')).toBeNull();
        expect((await store.listProfiles()).map((p) => p.name)).toEqual(['basic', 'quran-app']);
        const audit = (await h.audit()).slice(before);
        expect(audit.map((e) => [e.action, e.target])).toEqual([
          ['release_profile.put', 'release_profile:quran-app'],
          ['release_profile.put', 'release_profile:basic'],
          ['release_profile.put', 'release_profile:quran-app'],
        ]);
        expect(audit[0]!.details).toEqual({ before: null, after: { roles: ['text', 'audio'], description: 'app' } });
        expect(audit[2]!.details).toEqual({ before: { roles: ['text', 'audio'], description: 'app' }, after: { roles: ['text'], description: 'smaller' } });
      });
    });

    describe('atomicity', () => {
      it('when the audit entry cannot be written, no change is made: create, attach, detach, publish, resign, deprecate, profiles', async () => {
        const draft = await create('draft');
        await store.attachArtifact(draft.id, artifact('text', 'a.text', '1.0.0'), ACTOR);
        const pub = await published('pub');
        const state = async () => ({
          releases: (await store.listReleases(100, null)).items,
          seq: await store.channelSequence('stable'),
          profiles: await store.listProfiles(),
          audit: await h.audit(),
        });
        const before = await state();
        const restore = await h.breakAudit();
        try {
          const key = artifactsKey([artifact('text', 'a.text', '1.0.0')]);
          const attempts: [string, () => Promise<unknown>][] = [
            ['create', () => store.createRelease(newRelease('new'))],
            ['attach', () => store.attachArtifact(draft.id, artifact('audio', 'b.audio', '1.0.0'), ACTOR)],
            ['detach', () => store.detachArtifact(draft.id, 'text', 'a.text', AT, ACTOR)],
            ['publish', () => store.publishRelease(draft.id, signedManifest(2), key, AT, ACTOR)],
            ['resign', () => store.resignRelease(pub.id, signedManifest(2), artifactsKey(pub.artifacts), AT, ACTOR)],
            ['deprecate', () => store.deprecateRelease(pub.id, 'x', AT, ACTOR)],
            ['profile', () => store.upsertProfile({ name: 'p', roles: ['text'], description: '', updated_at: AT }, ACTOR)],
          ];
          for (const [what, attempt] of attempts) await expect(attempt(), what).rejects.toThrow();
        } finally {
          await restore();
        }
        expect(await state()).toEqual(before);
        expect(await store.publishRelease(draft.id, signedManifest(2), artifactsKey([artifact('text', 'a.text', '1.0.0')]), AT, ACTOR), 'nothing half-written blocks a retry').toBe('published');
      });
    });
  });
}
