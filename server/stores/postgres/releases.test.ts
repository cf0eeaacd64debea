/**
 * The PostgreSQL release store against the shared release contract, plus what only the schema can
 * promise (as server/stores/sqlite/releases.test.ts does for SQLite): foreign keys from artifacts
 * to packs, CHECK and UNIQUE constraints that hold even for writes that bypass the store, and the
 * registry id that never changes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { releaseStoreConformance, samplePack } from '../../../test/server/store-conformance.js';
import { describePg, freshSchema, type TestSchema } from '../../../test/postgres/harness.js';
import { PostgresMetadataStore } from './metadata.js';
import { PostgresReleaseStore } from './releases.js';

async function addPack(meta: PostgresMetadataStore, packageId: string, version: string): Promise<void> {
  const p = samplePack({ id: packageId, version });
  await meta.insertPack(p, { at: p.published_at, actor: 'test', action: 'pack.publish', target: `${packageId}@${version}`, details: null });
}

async function open(): Promise<{ schema: TestSchema; meta: PostgresMetadataStore; store: PostgresReleaseStore }> {
  const schema = await freshSchema();
  const meta = new PostgresMetadataStore(schema.options());
  await meta.migrate();
  return { schema, meta, store: new PostgresReleaseStore(meta.db) };
}

describePg('PostgreSQL', () => {
  releaseStoreConformance('PostgresReleaseStore', async () => {
    const { schema, meta, store } = await open();
    return {
      store,
      addPack: (id, version) => addPack(meta, id, version),
      generation: () => meta.generation(),
      audit: async () => (await meta.listAudit(500, null)).items.filter((e) => e.target.startsWith('release')).reverse(),
      breakAudit: async () => {
        await schema.sql(`
          CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$;
          CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_down();`);
        return async () => void (await schema.sql('DROP TRIGGER audit_down ON audit_log; DROP FUNCTION audit_down()'));
      },
      cleanup: async () => {
        await meta.close();
        await schema.drop();
      },
    };
  });

  describe('PostgresReleaseStore schema: constraints, below the store', () => {
    let t: Awaited<ReturnType<typeof open>>;
    let id: number;
    const sql = (statement: string, ...params: unknown[]) => t.schema.sql(statement, params);

    beforeEach(async () => {
      t = await open();
      await addPack(t.meta, 'a.text', '1.0.0');
      const r = await t.store.createRelease({ name: 'r', channel: 'stable', notes: '', min_app_version: '1.0.0', required_roles: ['text'], profile: null, created_at: 'now', created_by: 'test' });
      if (r === 'exists') throw new Error('exists');
      id = r.id;
    });
    afterEach(async () => {
      await t.meta.close();
      await t.schema.drop();
    });

    const FK = /violates foreign key constraint/;
    const CHECK = /violates check constraint/;
    const UNIQUE = /duplicate key value violates unique constraint/;

    it('artifacts must name a stored pack, and a pack a release uses cannot be deleted', async () => {
      const attach = 'INSERT INTO dataset_release_artifacts (release_id, role, package_id, version, attached_at) VALUES ($1, $2, $3, $4, $5)';
      await expect(sql(attach, id, 'text', 'a.text', '9.9.9', 'now')).rejects.toThrow(FK);
      await expect(sql(attach, 999, 'text', 'a.text', '1.0.0', 'now')).rejects.toThrow(FK);
      await sql(attach, id, 'text', 'a.text', '1.0.0', 'now');
      await expect(sql("DELETE FROM packs WHERE package_id = 'a.text'")).rejects.toThrow(FK);
      expect(await t.meta.countPacks()).toBe(1);
    });

    it('a release cannot be published or deprecated without its signed manifest and times', async () => {
      const publishWith = (columns: string) => sql(`UPDATE dataset_releases SET status = 'published', published_at = 'now'${columns} WHERE id = $1`, id);
      await expect(publishWith('')).rejects.toThrow(CHECK);
      await expect(publishWith(", sequence = 1, manifest_json = '{}', expires_at = 'later'")).rejects.toThrow(CHECK);
      await expect(publishWith(", sequence = 1, manifest_json = '{}', signature = 'sig'")).rejects.toThrow(CHECK);
      await expect(sql("UPDATE dataset_releases SET status = 'published' WHERE id = $1", id), 'published without published_at').rejects.toThrow(CHECK);
      await expect(sql("UPDATE dataset_releases SET published_at = 'now' WHERE id = $1", id), 'a draft with published_at').rejects.toThrow(CHECK);
      await expect(sql("UPDATE dataset_releases SET deprecated_at = 'now' WHERE id = $1", id), 'deprecated_at on a draft').rejects.toThrow(CHECK);
      await expect(sql("UPDATE dataset_releases SET status = 'gone' WHERE id = $1", id)).rejects.toThrow(CHECK);
      await expect(publishWith(", sequence = 0, manifest_json = '{}', signature = 'sig', expires_at = 'later'")).rejects.toThrow(CHECK);
      await publishWith(", sequence = 1, manifest_json = '{}', signature = 'sig', expires_at = 'later'");
      await expect(sql("UPDATE dataset_releases SET status = 'deprecated' WHERE id = $1", id), 'deprecated without deprecated_at').rejects.toThrow(CHECK);
    });

    it('names, roles and sequences are checked: unique per channel, JSON role lists, positive channel sequences', async () => {
      const insert = (name: string, roles: string, extra = '', values = '') =>
        sql(`INSERT INTO dataset_releases (name, channel, min_app_version, required_roles, created_at, created_by${extra}) VALUES ($1, 'stable', '1.0.0', $2, 'now', 'test'${values})`, name, roles);
      await expect(insert('r', '["text"]')).rejects.toThrow(UNIQUE);
      await expect(insert('', '["text"]')).rejects.toThrow(CHECK);
      await expect(insert('x', '{"text":1}')).rejects.toThrow(CHECK);
      await expect(insert('y', 'not json'), 'text that is not JSON fails its cast').rejects.toThrow(/invalid input syntax for type json/);
      await expect(insert('z', '["text"]', ', profile', ", 'no-such-profile'")).rejects.toThrow(FK);
      await expect(sql("INSERT INTO channel_sequences (channel, sequence) VALUES ('stable', 0)")).rejects.toThrow(CHECK);
      await expect(sql("INSERT INTO release_profiles (name, roles, updated_at) VALUES ('p', '\"text\"', 'now')")).rejects.toThrow(CHECK);
      const signed = ', status, published_at, sequence, manifest_json, signature, expires_at';
      await insert('s1', '["text"]', signed, ", 'published', 'now', 7, '{}', 'sig', 'later'");
      await expect(insert('s2', '["text"]', signed, ", 'published', 'now', 7, '{}', 'sig', 'later'"), 'one sequence per channel').rejects.toThrow(UNIQUE);
    });

    it('keeps the registry id and the change counter: no update, delete or truncate', async () => {
      const registryId = await t.store.registryId();
      expect(registryId).toMatch(/^[0-9a-f]{32}$/);
      for (const statement of ["UPDATE registry_identity SET registry_id = repeat('0', 32)", 'DELETE FROM registry_identity', 'TRUNCATE registry_identity']) {
        await expect(sql(statement), statement).rejects.toThrow(/the registry id never changes/);
      }
      for (const statement of ['DELETE FROM registry_changes', 'TRUNCATE registry_changes']) {
        await expect(sql(statement), statement).rejects.toThrow(/the change counter is never removed/);
      }
      await expect(sql('TRUNCATE audit_log'), 'truncate skips row triggers, not this one').rejects.toThrow(/append-only/);
      expect(await t.store.registryId()).toBe(registryId);
    });

    it('moves the change counter for writes that bypass the store, and for one in another schema’s session', async () => {
      const counter = async () => Number((await sql('SELECT generation FROM registry_changes')).rows[0].generation);
      const before = await counter();
      await sql("INSERT INTO release_profiles (name, roles, updated_at) VALUES ('p', '[]', 'now')");
      expect(await counter()).toBe(before + 1);
      await sql(`SET search_path = pg_catalog; UPDATE ${t.schema.name}.release_profiles SET description = 'x'`);
      expect(await counter(), 'the trigger bumps its own schema’s counter, whatever the session’s search_path').toBe(before + 2);
      await sql('UPDATE release_profiles SET description = $1 WHERE false', 'y');
      expect(await counter(), 'a statement that changes no row moves nothing').toBe(before + 2);
    });
  });
});
