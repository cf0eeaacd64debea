/** The PostgreSQL metadata store against the shared store contract, in a schema of its own per test. */
import { metadataStoreConformance } from '../../../test/server/store-conformance.js';
import { describePg, freshSchema } from '../../../test/postgres/harness.js';
import { PostgresMetadataStore } from './metadata.js';

describePg('PostgreSQL', () => {
  metadataStoreConformance('PostgresMetadataStore', async () => {
    const schema = await freshSchema();
    const open = () => new PostgresMetadataStore(schema.options());
    return {
      store: open(),
      reopen: async () => open(),
      tamperAudit: {
        // Straight SQL on a connection of its own: what an operator with psql could try.
        update: (id) => schema.sql("UPDATE audit_log SET actor = 'someone else' WHERE id = $1", [id]),
        delete: (id) => schema.sql('DELETE FROM audit_log WHERE id = $1', [id]),
      },
      cleanup: () => schema.drop(),
    };
  });
});
