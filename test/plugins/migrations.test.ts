/**
 * Plugins' migrations: one transaction each with its ledger row, only the plugin's own names,
 * forward only (a changed or dropped migration refuses the plugin), and restores that carry
 * plugin tables pass the backup's schema check.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBackup, restoreBackup } from '../../server/backup.js';
import { databasePath } from '../../server/config.js';
import { migrateDataDir } from '../../server/datadir.js';
import type { PluginManifest } from '../../server/plugins/api.js';
import { applyPluginMigrations, pendingMigrations } from '../../server/plugins/migrations.js';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';

const NOW = () => '2026-01-01T00:00:00.000Z';

async function registry(): Promise<{ dataDir: string; db: SqlitePluginDatabase }> {
  const dataDir = tempDir('iqp-plugin-migrations-');
  await migrateDataDir(dataDir);
  return { dataDir, db: new SqlitePluginDatabase(databasePath(dataDir)) };
}

const manifest = (migrations: PluginManifest['migrations']): PluginManifest => ({ id: 'notes', version: '1.0.0', host: '^1.0.0', migrations });
const M1 = { id: '0001-notes', sqlite: 'CREATE TABLE notes_items (id INTEGER PRIMARY KEY, body TEXT NOT NULL) STRICT;' };
const M2 = { id: '0002-index', sqlite: 'CREATE INDEX notes_items_by_body ON notes_items (body);' };

const tables = (db: SqlitePluginDatabase) => db.db.prepare("SELECT name FROM sqlite_master WHERE name LIKE 'notes%' OR name = 'accounts' ORDER BY name").pluck().all();
const ledger = (db: SqlitePluginDatabase) => db.db.prepare('SELECT plugin_id, migration_id FROM plugin_migrations ORDER BY migration_id').all();

describe('plugin migrations', () => {
  it('apply in order once, each recorded in the ledger', async () => {
    const { db } = await registry();
    expect(await applyPluginMigrations(db, manifest([M1]), NOW)).toEqual(['0001-notes']);
    expect(await applyPluginMigrations(db, manifest([M1, M2]), NOW)).toEqual(['0002-index']);
    expect(await applyPluginMigrations(db, manifest([M1, M2]), NOW)).toEqual([]);
    expect(tables(db)).toEqual(['notes_items', 'notes_items_by_body']);
    expect(ledger(db)).toEqual([
      { plugin_id: 'notes', migration_id: '0001-notes' },
      { plugin_id: 'notes', migration_id: '0002-index' },
    ]);
    db.close();
  });

  it('refuse a migration that creates or changes what is not named <id>_…, rolling it back', async () => {
    const { db } = await registry();
    for (const sqlite of [
      'CREATE TABLE notes_ok (id INTEGER); CREATE TABLE accounts (id INTEGER);',
      'CREATE TABLE notes_ok (id INTEGER); CREATE INDEX notes_on_tokens ON tokens (name);',
      'CREATE TABLE notes_ok (id INTEGER); DROP TABLE channel_sequences;',
    ]) {
      const err = await applyPluginMigrations(db, manifest([{ id: '0001-x', sqlite }]), NOW).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'IQP_E_PLUGIN_MIGRATION' });
      // A dropped core table takes its triggers with it: those are named too.
      expect((err as Error).message).toMatch(/touched what is not the plugin's \((created table accounts|created index notes_on_tokens|dropped table channel_sequences)[,)]/);
      expect(tables(db)).toEqual([]);
      expect(ledger(db)).toEqual([]);
    }
    expect(db.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'channel_sequences'").pluck().get()).toBe(1);
    db.close();
  });

  it('refuse a script that ends or nests transactions itself, before running any of it; the fixed script then applies', async () => {
    const { db } = await registry();
    for (const [sqlite, what] of [
      ['CREATE TABLE notes_a (x INTEGER); COMMIT; CREATE TABLE notes_b (x INTEGER', 'COMMIT'],
      ['CREATE TABLE notes_a (x INTEGER); /* done */ end transaction;', 'END'],
      ["CREATE TABLE notes_a (x TEXT DEFAULT ';'); -- then\nROLLBACK;", 'ROLLBACK'],
      ['BEGIN; CREATE TABLE notes_a (x INTEGER); COMMIT;', 'BEGIN'],
      ['SAVEPOINT s; CREATE TABLE notes_a (x INTEGER); RELEASE s;', 'SAVEPOINT'],
      ['CREATE TABLE notes_a (x INTEGER);\n  Release s', 'RELEASE'],
    ] as const) {
      const err = await applyPluginMigrations(db, manifest([{ id: '0001-notes', sqlite }]), NOW).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'IQP_E_PLUGIN_MIGRATION', message: expect.stringContaining(`migration 0001-notes holds ${what}`) });
      expect(tables(db)).toEqual([]);
      expect(ledger(db)).toEqual([]);
    }
    expect(await applyPluginMigrations(db, manifest([M1]), NOW)).toEqual(['0001-notes']);
    db.close();
  });

  it('take transaction words inside literals, comments, identifiers and a trigger body for what they are', async () => {
    const { db } = await registry();
    const sqlite = `CREATE TABLE notes_items (id INTEGER PRIMARY KEY, body TEXT NOT NULL, "commit" TEXT DEFAULT 'x; COMMIT; y', [end;] TEXT, \`begin;\` TEXT);
      -- COMMIT;
      /* ROLLBACK; */
      CREATE TRIGGER notes_items_check BEFORE INSERT ON notes_items
      WHEN CASE WHEN new.body = '' THEN 1 ELSE 0 END
      BEGIN
        SELECT RAISE(ROLLBACK, 'empty; END; COMMIT');
        UPDATE notes_items SET body = CASE WHEN body = 'a' THEN 'b' ELSE body END;
      END;
      CREATE TEMP TRIGGER IF NOT EXISTS notes_items_temp AFTER DELETE ON notes_items BEGIN SELECT 1; END`;
    expect(await applyPluginMigrations(db, manifest([{ id: '0001-notes', sqlite }]), NOW)).toEqual(['0001-notes']);
    expect(tables(db)).toEqual(['notes_items', 'notes_items_check']);
    db.close();
  });

  it('a script that ended its transaction anyway is reported as such, not as rolled back', async () => {
    const { db } = await registry();
    const err = await db.transaction(async () => db.execScript('CREATE TABLE notes_a (x INTEGER); COMMIT; CREATE TABLE notes_b (x INTEGER')).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/ended the transaction it runs in itself .*what ran before that stayed committed, then failed: incomplete input/);
    expect(tables(db)).toEqual(['notes_a']);
    db.close();
  });

  it('refuse a plugin whose applied migration changed or is no longer listed (forward only)', async () => {
    const { db } = await registry();
    await applyPluginMigrations(db, manifest([M1, M2]), NOW);
    const changed = manifest([{ ...M1, sqlite: `${M1.sqlite} -- edited` }, M2]);
    await expect(pendingMigrations(db, changed)).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_MIGRATION', message: expect.stringMatching(/0001-notes changed since it was applied/) });
    await expect(pendingMigrations(db, manifest([M1]))).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_MIGRATION', message: expect.stringMatching(/0002-index was applied .* no longer lists it/) });
    db.close();
  });

  it('a backup carries plugin tables and the ledger, and its restore passes the schema check', async () => {
    const { dataDir, db } = await registry();
    await applyPluginMigrations(db, manifest([M1, M2]), NOW);
    await db.run('INSERT INTO notes_items (body) VALUES (?)', ['kept']);
    db.close();
    const out = join(tempDir('iqp-plugin-backup-'), 'registry.iqpbackup');
    await createBackup(dataDir, out);
    const restored = join(tempDir('iqp-plugin-restore-'), 'data');
    await restoreBackup(out, restored, { force: false });
    const back = new SqlitePluginDatabase(databasePath(restored));
    expect(await back.all('SELECT body FROM notes_items')).toEqual([{ body: 'kept' }]);
    expect(ledger(back)).toHaveLength(2);
    back.close();
  });
});
