/**
 * Plugins' migrations on PostgreSQL, as on SQLite (migrations.test.ts): one transaction each with
 * its ledger row, only the plugin's own names (told from pg_catalog), forward only; and several
 * servers starting at once apply each migration once.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { PluginManifest } from '../../server/plugins/api.js';
import { applyPluginMigrations, pendingMigrations } from '../../server/plugins/migrations.js';
import { PgPluginDatabase } from '../../server/plugins/pg-db.js';
import { applyPgMigrations } from '../../server/stores/postgres/schema.js';
import { describePg, freshSchema, type TestSchema } from '../postgres/harness.js';

const NOW = () => '2026-01-01T00:00:00.000Z';
const manifest = (migrations: PluginManifest['migrations']): PluginManifest => ({ id: 'notes', version: '1.0.0', host: '^1.0.0', migrations });
const M1 = { id: '0001-notes', sqlite: 'CREATE TABLE notes_items (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT;', postgres: 'CREATE TABLE notes_items (id bigint PRIMARY KEY, body text NOT NULL);' };
const M2 = { id: '0002-index', sqlite: 'CREATE INDEX notes_items_by_body ON notes_items (body);', postgres: 'CREATE INDEX notes_items_by_body ON notes_items (body);' };

describePg('plugin migrations on PostgreSQL', () => {
  let schema: TestSchema;
  let db: PgPluginDatabase;

  beforeEach(async () => {
    schema = await freshSchema();
    db = new PgPluginDatabase(schema.options());
    await applyPgMigrations(db.pool);
  });
  afterEach(async () => {
    await db.close();
    await schema.drop();
  });

  const tables = async () => (await schema.sql("SELECT relname AS name FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND (relname LIKE 'notes%' OR relname = 'accounts') ORDER BY relname")).rows.map((r) => r.name);
  const ledger = async () => (await schema.sql('SELECT plugin_id, migration_id, checksum FROM plugin_migrations ORDER BY migration_id')).rows;
  /** Applying `postgres` as migration `id` is refused with a message holding `says`, and leaves no table and no ledger row. */
  const expectRefused = async (id: string, postgres: string, says: string) => {
    const err = await applyPluginMigrations(db, manifest([{ id, sqlite: '', postgres }]), NOW).catch((e: unknown) => e);
    expect(err, postgres).toMatchObject({ code: 'IQP_E_PLUGIN_MIGRATION', message: expect.stringContaining(says) });
    expect(await tables()).toEqual([]);
    expect(await ledger()).toEqual([]);
  };

  it('apply in order once, each recorded with the checksum of its postgres script', async () => {
    expect(await applyPluginMigrations(db, manifest([M1]), NOW)).toEqual(['0001-notes']);
    expect(await applyPluginMigrations(db, manifest([M1, M2]), NOW)).toEqual(['0002-index']);
    expect(await applyPluginMigrations(db, manifest([M1, M2]), NOW)).toEqual([]);
    expect(await tables()).toEqual(['notes_items', 'notes_items_by_body', 'notes_items_pkey']);
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(await ledger()).toEqual([
      { plugin_id: 'notes', migration_id: '0001-notes', checksum: sha(M1.postgres) },
      { plugin_id: 'notes', migration_id: '0002-index', checksum: sha(M2.postgres) },
    ]);
  });

  it('refuse a migration that creates, changes or drops what is not named <id>_…, rolling it back whole', async () => {
    for (const [postgres, touched] of [
      ['CREATE TABLE accounts (id integer);', 'created table accounts'],
      ['CREATE INDEX notes_on_tokens ON tokens (name);', 'created index notes_on_tokens'],
      ['DROP TABLE channel_sequences;', 'dropped table channel_sequences'],
      ['ALTER TABLE tokens ADD COLUMN notes_flag integer;', 'changed table tokens'],
      ['CREATE SEQUENCE counter;', 'created sequence counter'],
      ['CREATE VIEW recent AS SELECT 1 AS one;', 'created view recent'],
      ['CREATE FUNCTION helper() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;', 'created function helper()'],
      ['CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;', 'changed function audit_log_append_only()'],
      ['CREATE FUNCTION notes_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; CREATE TRIGGER notes_t BEFORE INSERT ON packs FOR EACH ROW EXECUTE FUNCTION notes_f();', 'created trigger notes_t'],
      ['CREATE TYPE mood AS ENUM (\'ok\');', 'created type mood'],
    ] as const) {
      await expectRefused('0001-x', `CREATE TABLE notes_ok (id integer); ${postgres}`, `touched what is not the plugin's (${touched}`);
    }
    expect((await schema.sql("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'channel_sequences' AND relnamespace = current_schema()::regnamespace")).rows[0].n).toBe(1);
    // The core's trigger function is still the one refusing changes to the audit log.
    await expect(schema.sql("INSERT INTO audit_log (at, actor, action, target) VALUES ('x', 'x', 'x', 'x'); DELETE FROM audit_log")).rejects.toThrow(/append-only/);
  });

  it('a plugin may make triggers, functions and sequences of its own', async () => {
    const postgres = `CREATE TABLE notes_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
      CREATE FUNCTION notes_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.body := trim(NEW.body); RETURN NEW; END $$;
      CREATE TRIGGER notes_items_touch BEFORE INSERT ON notes_items FOR EACH ROW EXECUTE FUNCTION notes_touch();
      CREATE SEQUENCE notes_numbers;`;
    expect(await applyPluginMigrations(db, manifest([{ id: '0001-notes', sqlite: '', postgres }]), NOW)).toEqual(['0001-notes']);
    await db.run('INSERT INTO notes_items (body) VALUES (?)', ['  hi  ']);
    expect(await db.all('SELECT id, body FROM notes_items')).toEqual([{ id: 1, body: 'hi' }]);
  });

  it('refuse a script that ends or nests transactions itself, before running any of it; bodies and literals are not statements', async () => {
    for (const [postgres, what] of [
      ['CREATE TABLE notes_a (x integer); COMMIT; CREATE TABLE notes_b (x integer);', 'COMMIT'],
      ['CREATE TABLE notes_a (x integer); /* done */ end;', 'END'],
      ["CREATE TABLE notes_a (x text DEFAULT ';'); -- then\nROLLBACK;", 'ROLLBACK'],
      ['START TRANSACTION; CREATE TABLE notes_a (x integer);', 'START'],
      ['CREATE TABLE notes_a (x integer);\n  Abort', 'ABORT'],
      ['SAVEPOINT s; CREATE TABLE notes_a (x integer); RELEASE s;', 'SAVEPOINT'],
    ] as const) {
      await expectRefused('0001-notes', postgres, `migration 0001-notes holds ${what}`);
    }
    const postgres = `CREATE TABLE notes_items (id bigint PRIMARY KEY, "commit" text DEFAULT 'x; COMMIT; y', body text);
      -- COMMIT;
      CREATE FUNCTION notes_touch() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN NEW.body := 'x; END; COMMIT'; RETURN NEW; END $body$;
      CREATE FUNCTION notes_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN count(*) > 0 THEN count(*) ELSE 0 END FROM notes_items; END;`;
    expect(await applyPluginMigrations(db, manifest([{ id: '0001-notes', sqlite: '', postgres }]), NOW)).toEqual(['0001-notes']);
    expect(await tables()).toEqual(['notes_items', 'notes_items_pkey']);
  });

  it('a migration that fails rolls back whole and leaves the ledger as it was', async () => {
    const err = await applyPluginMigrations(db, manifest([M1, { id: '0002-bad', sqlite: '', postgres: 'CREATE TABLE notes_more (id integer); CREATE TABLE notes_more (id integer);' }]), NOW).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IQP_E_PLUGIN_MIGRATION', message: expect.stringMatching(/0002-bad failed and was rolled back: .*already exists/) });
    expect(await tables()).toEqual(['notes_items', 'notes_items_pkey']);
    expect((await ledger()).map((r) => r.migration_id)).toEqual(['0001-notes']);
  });

  it('refuse a plugin whose applied migration changed or is no longer listed, or that has no postgres script', async () => {
    await applyPluginMigrations(db, manifest([M1, M2]), NOW);
    await expect(pendingMigrations(db, manifest([{ ...M1, postgres: `${M1.postgres} -- edited` }, M2]))).rejects.toMatchObject({
      code: 'IQP_E_PLUGIN_MIGRATION',
      message: expect.stringMatching(/0001-notes changed since it was applied/),
    });
    // The SQLite script is not what ran here: editing it changes nothing on PostgreSQL.
    expect(await pendingMigrations(db, manifest([{ ...M1, sqlite: `${M1.sqlite} -- edited` }, M2]))).toEqual([]);
    await expect(pendingMigrations(db, manifest([M1]))).rejects.toMatchObject({ message: expect.stringMatching(/0002-index was applied .* no longer lists it/) });
    await expect(pendingMigrations(db, manifest([M1, M2, { id: '0003-sqlite-only', sqlite: 'SELECT 1;' }]))).rejects.toMatchObject({
      code: 'IQP_E_PLUGIN_MIGRATION',
      message: expect.stringMatching(/0003-sqlite-only has no "postgres" script, and this registry's database is PostgreSQL/),
    });
  });

  it('three servers starting at once apply each migration once, waiting on the migration lock', async () => {
    const servers = [0, 1, 2].map(() => new PgPluginDatabase(schema.options({ poolSize: 2 })));
    try {
      // What the host does: the lock, then the ledger read again and what is pending applied.
      const start = async (s: PgPluginDatabase) => {
        const unlock = await s.lockMigrations();
        try {
          return await applyPluginMigrations(s, manifest([M1, M2]), NOW);
        } finally {
          await unlock();
        }
      };
      const applied = await Promise.all(servers.map(start));
      expect(applied.flat().sort()).toEqual(['0001-notes', '0002-index']);
      expect((await ledger()).map((r) => r.migration_id)).toEqual(['0001-notes', '0002-index']);
      // The lock is given back: a later server takes it at once.
      const unlock = await db.lockMigrations();
      await unlock();
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });
});
