/** The embedded plugins' database passes the PluginDatabase conformance suite, and runs transactions one at a time. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';
import { pluginDatabaseConformance } from './database-conformance.js';

function open(): SqlitePluginDatabase {
  const db = new SqlitePluginDatabase(join(tempDir('iqp-plugin-db-'), 'registry.sqlite'));
  db.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY) STRICT; CREATE TABLE kinds (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB) STRICT');
  return db;
}

pluginDatabaseConformance('SqlitePluginDatabase', {
  async open() {
    const db = open();
    return { db, close: async () => db.close() };
  },
  textWithNul: 'round-trips',
});

describe('SqlitePluginDatabase', () => {
  it('runs two concurrent transactions one after the other: the second begins once the first committed', async () => {
    const db = open();
    try {
      const events: string[] = [];
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = db.transaction(async (tx) => {
        events.push('first begins');
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'first']);
        await held;
        events.push('first commits');
      });
      const second = db.transaction(async (tx) => {
        events.push('second begins');
        const seen = await tx.all('SELECT v FROM t');
        events.push(`second sees ${seen.length}`);
        await tx.run('INSERT INTO t (id, v) VALUES (?, ?)', [2, 'second']);
      });
      // Let the second try to run while the first is open; it must wait.
      for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
      expect(events).toEqual(['first begins']);
      release();
      await Promise.all([first, second]);
      expect(events).toEqual(['first begins', 'first commits', 'second begins', 'second sees 1']);
    } finally {
      db.close();
    }
  });
});
