/**
 * A plugin owns the schema objects named `<id>_…`; the core's own objects must never be some
 * plugin's. So every prefix the core's names start with is a reserved plugin id, on both
 * databases, and a manifest claiming one is refused before any of its code or SQL runs.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkManifest, RESERVED_PLUGIN_IDS } from '../../server/plugins/manifest.js';
import { PostgresMetadataStore } from '../../server/stores/postgres/metadata.js';
import { iqp, tempDir } from '../e2e/helpers.js';
import { describePg, freshSchema, type TestSchema } from '../postgres/harness.js';
import { fixturePlugin } from './helpers.js';

/** The part of each name before its first underscore, for names that have one. */
const prefixes = (names: readonly string[]) => new Set(names.filter((n) => n.includes('_')).map((n) => n.slice(0, n.indexOf('_'))));

describe('reserved plugin ids', () => {
  it('cover every prefix of the core’s tables, indexes and triggers on SQLite', async () => {
    const dir = tempDir('iqp-reserved-');
    const r = await iqp(['server', 'migrate', '--data', dir], { cwd: dir });
    expect(r.code).toBe(0);
    const db = new Database(join(dir, 'registry.sqlite'), { readonly: true });
    const rows = db.prepare("SELECT name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").all() as { name: string; tbl_name: string }[];
    db.close();
    const seen = prefixes(rows.flatMap((row) => [row.name, row.tbl_name]));
    expect(seen.size).toBeGreaterThan(5);
    for (const p of seen) expect(RESERVED_PLUGIN_IDS, `core prefix ${p}`).toContain(p);
  });

  it('refuse a manifest with a reserved id, naming why, before looking at its entry', () => {
    const dir = tempDir('iqp-reserved-plugin-');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.js'), 'export default {};\n');
    const manifest = (id: string) => ({ id, version: '1.0.0', host: '^1.0.0', entry: './index.js', migrations: [{ id: '0001', sqlite: 'DROP TABLE audit_log;' }] });
    expect(() => checkManifest(manifest('audit'), dir, 'iqp-plugin.json')).toThrow(expect.objectContaining({ code: 'IQP_E_PLUGIN_INVALID', message: expect.stringContaining('"audit" is reserved') }));
    expect(checkManifest(manifest('audits'), dir, 'iqp-plugin.json').id).toBe('audits');
  });

  it('`iqp plugins enable` refuses such a plugin and writes nothing: no server.json, the audit log untouched', async () => {
    const dir = tempDir('iqp-reserved-enable-');
    expect((await iqp(['server', 'migrate', '--data', dir], { cwd: dir })).code).toBe(0);
    const r = await iqp(['plugins', 'enable', fixturePlugin('reserved-id'), '--data', dir], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('IQP_E_PLUGIN_INVALID');
    expect(r.stderr).toContain('"audit" is reserved');
    expect(existsSync(join(dir, 'server.json'))).toBe(false);
    const db = new Database(join(dir, 'registry.sqlite'), { readonly: true });
    const columns = (db.prepare('PRAGMA table_info(audit_log)').all() as { name: string }[]).map((c) => c.name);
    db.close();
    expect(columns).toContain('at');
  });
});

describePg('reserved plugin ids on PostgreSQL', () => {
  let schema: TestSchema;
  beforeEach(async () => {
    schema = await freshSchema();
  });
  afterEach(async () => {
    await schema.drop();
  });

  it('cover every prefix of the core’s relations, triggers and functions', async () => {
    const meta = new PostgresMetadataStore(schema.options());
    await meta.migrate();
    await meta.close();
    const names = [
      ...(await schema.sql('SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1', [schema.name])).rows,
      ...(await schema.sql('SELECT t.tgname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal', [schema.name])).rows,
      ...(await schema.sql('SELECT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1', [schema.name])).rows,
    ].map((r) => r.name as string);
    const seen = prefixes(names);
    expect(seen.size).toBeGreaterThan(5);
    for (const p of seen) expect(RESERVED_PLUGIN_IDS, `core prefix ${p}`).toContain(p);
  });
});
