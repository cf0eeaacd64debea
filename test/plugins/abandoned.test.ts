/**
 * A plugin the host gives up on (its start() timed out) loses the plugins' database: the
 * transaction it holds is rolled back, so the core and the other plugins can write again, and what
 * it still tries later (through ctx.db, or the tx of that transaction) fails instead of running.
 */
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databasePath, serverConfig } from '../../server/config.js';
import type { PluginDatabase } from '../../server/plugins/api.js';
import { pluginAudit } from '../../server/plugins/audit.js';
import { PluginHost } from '../../server/plugins/host.js';
import { PgPluginDatabase } from '../../server/plugins/pg-db.js';
import { writeServerFile } from '../../server/plugins/server-file.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { PostgresMetadataStore } from '../../server/stores/postgres/metadata.js';
import { tempDir } from '../e2e/helpers.js';
import { describePg, freshSchema, type TestSchema } from '../postgres/harness.js';
import { call } from '../server/http-client.js';
import { fixturePlugin, HELLO } from './helpers.js';

declare global {
  var abandoned: {
    gate: Promise<void>;
    release: () => void;
    db?: PluginDatabase;
    late?: unknown;
    audit?: (entry: { action: string; actor: string; target: string }) => Promise<void>;
    limit?: { consume(key: string): Promise<unknown>; reset(key: string): Promise<void> };
  };
}

/**
 * txhang: start() updates its row in a transaction, then waits (past its start timeout) for the
 * test's gate before using the transaction's tx again; it keeps its ctx.db for the test.
 */
function txhang(): string {
  const dir = join(tempDir('iqp-plugin-txhang-'), 'txhang');
  mkdirSync(dir);
  const table = 'CREATE TABLE txhang_t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL); INSERT INTO txhang_t VALUES (1, 0);';
  const manifest = { id: 'txhang', version: '1.0.0', host: '^1.0.0', entry: './index.js', migrations: [{ id: '0001', sqlite: table, postgres: table }] };
  writeFileSync(join(dir, 'iqp-plugin.json'), JSON.stringify(manifest));
  writeFileSync(
    join(dir, 'index.js'),
    `export default { manifest: ${JSON.stringify(manifest)}, async register() {},
  async start(ctx) {
    globalThis.abandoned.db = ctx.db;
    globalThis.abandoned.audit = (entry) => ctx.audit(entry);
    globalThis.abandoned.limit = ctx.rateLimit({ name: 'late', points: 5, durationS: 60 });
    await ctx.db.transaction(async (tx) => {
      await tx.run('UPDATE txhang_t SET x = 1 WHERE id = 1');
      await globalThis.abandoned.gate;
      try {
        await tx.run('UPDATE txhang_t SET x = 2 WHERE id = 1');
        globalThis.abandoned.late = 'ran';
      } catch (err) {
        globalThis.abandoned.late = err;
      }
    });
  },
};\n`,
  );
  return dir;
}

beforeEach(() => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  globalThis.abandoned = { gate, release };
});

/** What the abandoned start() meets once let go: its tx, and its ctx.db, refuse. */
async function expectLockedOut(): Promise<void> {
  globalThis.abandoned.release();
  await expect.poll(() => globalThis.abandoned.late).toBeDefined();
  expect(globalThis.abandoned.late).toBeInstanceOf(Error);
  expect(String(globalThis.abandoned.late)).toMatch(/used after the transaction ended/);
  await expect(globalThis.abandoned.db!.run('UPDATE txhang_t SET x = 3 WHERE id = 1')).rejects.toMatchObject({
    code: 'IQP_E_PLUGIN_UNAVAILABLE',
    message: expect.stringMatching(/Plugin txhang was left out .*did not finish within 1000 ms/),
  });
  await expect(globalThis.abandoned.db!.transaction(async () => 1)).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_UNAVAILABLE' });
  // Its audit entries and rate-limit counts are writes to the same database: refused the same way.
  await expect(globalThis.abandoned.audit!({ action: 'late', actor: 'system', target: 'txhang' })).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_UNAVAILABLE' });
  await expect(globalThis.abandoned.limit!.consume('k')).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_UNAVAILABLE' });
  await expect(globalThis.abandoned.limit!.reset('k')).rejects.toMatchObject({ code: 'IQP_E_PLUGIN_UNAVAILABLE' });
}

describe('a plugin whose start() timed out inside a transaction (SQLite)', () => {
  let running: RunningServer | null = null;
  afterEach(async () => {
    globalThis.abandoned.release();
    await running?.close();
    running = null;
  });

  it('has it rolled back: the core and other plugins write at once, and its later database calls fail', { timeout: 20_000 }, async () => {
    const dataDir = tempDir('iqp-plugins-abandoned-');
    writeServerFile(dataDir, {
      plugins: {
        hello: { enabled: true, source: fixturePlugin(HELLO.fixture), required: false, config: HELLO.config },
        txhang: { enabled: true, source: txhang(), required: false, start_timeout_ms: 1000, config: {} },
      },
    });
    running = await startServer(serverConfig({ dataDir, host: '127.0.0.1', port: 0 }), () => undefined);
    expect(running.plugins!.status().failed).toMatchObject([{ id: 'txhang', code: 'IQP_E_PLUGIN_START' }]);

    // The core's own connection (iqp token create writes so) and another plugin's write.
    await running.registry.services.tokens.create('admin', 'ops', 'test');
    expect((await call(running.url, '/v1/hello/greet', { method: 'POST', json: { name: 'Ada' } })).status).toBe(200);

    await expectLockedOut();
    const db = new Database(databasePath(dataDir), { readonly: true });
    try {
      expect(db.prepare('SELECT x FROM txhang_t').pluck().all()).toEqual([0]);
    } finally {
      db.close();
    }
  });
});

describePg('a plugin whose start() timed out inside a transaction (PostgreSQL)', () => {
  let schema: TestSchema;
  let db: PgPluginDatabase;
  let host: PluginHost | null = null;
  beforeEach(async () => {
    schema = await freshSchema();
    const meta = new PostgresMetadataStore(schema.options());
    await meta.migrate();
    await meta.close();
    db = new PgPluginDatabase(schema.options());
  });
  afterEach(async () => {
    globalThis.abandoned.release();
    await host?.stop();
    host = null;
    await db.close();
    await schema.drop();
  });

  it('has its connection ended: the row it locked is free at once, and its later database calls fail', { timeout: 20_000 }, async () => {
    const dataDir = tempDir('iqp-pg-plugins-abandoned-');
    writeServerFile(dataDir, { plugins: { txhang: { enabled: true, source: txhang(), required: false, start_timeout_ms: 1000, config: {} } } });
    host = await PluginHost.start({ dataDir, mode: 'command', db, log: () => undefined, audit: pluginAudit(db) });
    expect(host.status().failed).toEqual([{ id: 'txhang', code: 'IQP_E_PLUGIN_START', message: expect.any(String) }]);

    // Another session writing the row the abandoned transaction updated: no lock left to wait for.
    await schema.sql("SET lock_timeout = '3s'; UPDATE txhang_t SET x = 5 WHERE id = 1");
    await expectLockedOut();
    expect((await schema.sql('SELECT x FROM txhang_t')).rows).toEqual([{ x: 5 }]);
  });
});
