/**
 * The embedded release store (the registry's SQLite file) against the shared release contract,
 * plus what only the SQL schema can promise: migrations from an empty file, foreign keys from
 * artifacts to packs, and CHECK constraints that hold even for writes that bypass the store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { releaseStoreConformance, samplePack } from '../../../test/server/store-conformance.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteMetadataStore } from './metadata.js';
import { SqliteReleaseStore } from './releases.js';

async function openFresh(): Promise<{ dir: string; path: string; meta: SqliteMetadataStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'iqp-releases-'));
  const path = join(dir, 'registry.sqlite');
  return { dir, path, meta: new SqliteMetadataStore(path) };
}

async function addPack(meta: SqliteMetadataStore, packageId: string, version: string): Promise<void> {
  const p = samplePack({ id: packageId, version });
  await meta.insertPack(p, { at: p.published_at, actor: 'test', action: 'pack.publish', target: `${packageId}@${version}`, details: null });
}

releaseStoreConformance('SqliteReleaseStore', async () => {
  const { dir, meta } = await openFresh();
  await meta.migrate();
  return {
    store: new SqliteReleaseStore(meta),
    addPack: (id, version) => addPack(meta, id, version),
    generation: () => meta.generation(),
    audit: async () => (await meta.listAudit(500, null)).items.filter((e) => e.target.startsWith('release')).reverse(),
    breakAudit: async () => {
      meta.db.exec("CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END");
      return async () => void meta.db.exec('DROP TRIGGER audit_down');
    },
    cleanup: async () => {
      await meta.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteReleaseStore schema', () => {
  let fresh: Awaited<ReturnType<typeof openFresh>>;
  beforeEach(async () => {
    fresh = await openFresh();
  });
  afterEach(async () => {
    await fresh.meta.close();
    await rm(fresh.dir, { recursive: true, force: true });
  });

  const tables = (meta: SqliteMetadataStore) => meta.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();

  it('applies every migration to an empty database, and is idempotent (again, and after reopening)', async () => {
    expect(tables(fresh.meta)).toEqual([]);
    expect(await fresh.meta.migrate()).toEqual(MIGRATIONS.map((m) => m.version));
    expect(tables(fresh.meta)).toEqual(expect.arrayContaining(['dataset_releases', 'dataset_release_artifacts', 'release_profiles', 'channel_sequences', 'packs', 'audit_log']));
    const schema = fresh.meta.db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all();
    expect(await fresh.meta.migrate()).toEqual([]);
    await fresh.meta.close();
    fresh.meta = new SqliteMetadataStore(fresh.path);
    expect(await fresh.meta.migrate()).toEqual([]);
    expect(fresh.meta.db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all()).toEqual(schema);
    expect(fresh.meta.db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all()).toEqual(MIGRATIONS.map((m) => m.version));
    expect(fresh.meta.db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
  });

  describe('constraints, below the store', () => {
    let store: SqliteReleaseStore;
    let id: number;
    const sql = (statement: string, ...params: unknown[]) => () => fresh.meta.db.prepare(statement).run(...params);

    beforeEach(async () => {
      await fresh.meta.migrate();
      store = new SqliteReleaseStore(fresh.meta);
      await addPack(fresh.meta, 'a.text', '1.0.0');
      const r = await store.createRelease({ name: 'r', channel: 'stable', notes: '', min_app_version: '1.0.0', required_roles: ['text'], profile: null, created_at: 'now', created_by: 'test' });
      if (r === 'exists') throw new Error('exists');
      id = r.id;
    });

    it('artifacts must name a stored pack, and a pack a release uses cannot be deleted', () => {
      expect(sql('INSERT INTO dataset_release_artifacts (release_id, role, package_id, version, attached_at) VALUES (?, ?, ?, ?, ?)', id, 'text', 'a.text', '9.9.9', 'now')).toThrow(/FOREIGN KEY/);
      expect(sql('INSERT INTO dataset_release_artifacts (release_id, role, package_id, version, attached_at) VALUES (?, ?, ?, ?, ?)', 999, 'text', 'a.text', '1.0.0', 'now')).toThrow(/FOREIGN KEY/);
      sql('INSERT INTO dataset_release_artifacts (release_id, role, package_id, version, attached_at) VALUES (?, ?, ?, ?, ?)', id, 'text', 'a.text', '1.0.0', 'now')();
      expect(sql("DELETE FROM packs WHERE package_id = 'a.text'")).toThrow(/FOREIGN KEY/);
      expect(fresh.meta.db.prepare('SELECT count(*) FROM packs').pluck().get()).toBe(1);
    });

    it('a release cannot be published or deprecated without its signed manifest and times', () => {
      const publishWith = (columns: string) => sql(`UPDATE dataset_releases SET status = 'published', published_at = 'now'${columns} WHERE id = ?`, id);
      expect(publishWith('')).toThrow(/CHECK/);
      expect(publishWith(", sequence = 1, manifest_json = '{}', expires_at = 'later'")).toThrow(/CHECK/);
      expect(publishWith(", sequence = 1, manifest_json = '{}', signature = 'sig'")).toThrow(/CHECK/);
      expect(sql("UPDATE dataset_releases SET status = 'published' WHERE id = ?", id), 'published without published_at').toThrow(/CHECK/);
      expect(sql("UPDATE dataset_releases SET published_at = 'now' WHERE id = ?", id), 'a draft with published_at').toThrow(/CHECK/);
      expect(sql("UPDATE dataset_releases SET deprecated_at = 'now' WHERE id = ?", id), 'deprecated_at on a draft').toThrow(/CHECK/);
      expect(sql("UPDATE dataset_releases SET status = 'gone' WHERE id = ?", id)).toThrow(/CHECK/);
      expect(publishWith(", sequence = 0, manifest_json = '{}', signature = 'sig', expires_at = 'later'")).toThrow(/CHECK/);
      publishWith(", sequence = 1, manifest_json = '{}', signature = 'sig', expires_at = 'later'")();
      expect(sql("UPDATE dataset_releases SET status = 'deprecated' WHERE id = ?", id), 'deprecated without deprecated_at').toThrow(/CHECK/);
    });

    it('names, roles and sequences are checked: unique per channel, JSON role lists, positive channel sequences', () => {
      const insert = (name: string, roles: string, extra = '', values = '') =>
        sql(`INSERT INTO dataset_releases (name, channel, min_app_version, required_roles, created_at, created_by${extra}) VALUES (?, 'stable', '1.0.0', ?, 'now', 'test'${values})`, name, roles);
      expect(insert('r', '["text"]')).toThrow(/UNIQUE/);
      expect(insert('', '["text"]')).toThrow(/CHECK/);
      expect(insert('x', '{"text":1}')).toThrow(/CHECK/);
      expect(insert('y', 'not json')).toThrow(/CHECK/);
      expect(insert('z', '["text"]', ', profile', ", 'no-such-profile'")).toThrow(/FOREIGN KEY/);
      expect(sql("INSERT INTO channel_sequences (channel, sequence) VALUES ('stable', 0)")).toThrow(/CHECK/);
      expect(sql("INSERT INTO release_profiles (name, roles, updated_at) VALUES ('p', '\"text\"', 'now')")).toThrow(/CHECK/);
      const signed = ", status, published_at, sequence, manifest_json, signature, expires_at";
      insert('s1', '["text"]', signed, ", 'published', 'now', 7, '{}', 'sig', 'later'")();
      expect(insert('s2', '["text"]', signed, ", 'published', 'now', 7, '{}', 'sig', 'later'"), 'one sequence per channel').toThrow(/UNIQUE/);
    });
  });
});
