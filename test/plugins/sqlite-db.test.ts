/** The embedded plugins' database passes the PluginDatabase conformance suite. */
import { join } from 'node:path';
import { SqlitePluginDatabase } from '../../server/plugins/sqlite-db.js';
import { tempDir } from '../e2e/helpers.js';
import { pluginDatabaseConformance } from './database-conformance.js';

pluginDatabaseConformance('SqlitePluginDatabase', {
  async open() {
    const db = new SqlitePluginDatabase(join(tempDir('iqp-plugin-db-'), 'registry.sqlite'));
    db.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY) STRICT');
    return { db, close: async () => db.close() };
  },
});
