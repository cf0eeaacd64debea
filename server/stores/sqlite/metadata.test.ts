/** The embedded metadata store (SQLite file) against the shared store contract. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metadataStoreConformance } from '../../../test/server/store-conformance.js';
import { SqliteMetadataStore } from './metadata.js';

metadataStoreConformance('SqliteMetadataStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'iqp-meta-'));
  const path = join(dir, 'registry.sqlite');
  const store = new SqliteMetadataStore(path);
  return {
    store,
    reopen: async () => new SqliteMetadataStore(path),
    tamperAudit: {
      // Straight SQL on a second connection: what an operator with sqlite3 could try.
      update: async (id) => withConnection(path, (s) => s.db.prepare("UPDATE audit_log SET actor = 'someone else' WHERE id = ?").run(id)),
      delete: async (id) => withConnection(path, (s) => s.db.prepare('DELETE FROM audit_log WHERE id = ?').run(id)),
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

function withConnection<T>(path: string, fn: (s: SqliteMetadataStore) => T): T {
  const s = new SqliteMetadataStore(path);
  try {
    return fn(s);
  } finally {
    s.db.close();
  }
}
