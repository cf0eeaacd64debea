/**
 * `iqp server migrate-store`, the real binary: an embedded registry (registry.sqlite and blobs/,
 * with the auth and sync plugins) moved to PostgreSQL (a schema owned by a role that is not a
 * superuser) and an S3-compatible bucket (s3rver), then served from there by `iqp server start`
 * as it was before; the moves of only the blobs or only the database; every refusal with its code
 * and nothing written; a dry run; a copy interrupted by the bucket and by a value the database
 * refuses, each finished by running it again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { databasePath } from '../../server/config.js';
import { applyMigrations } from '../../server/stores/sqlite/schema.js';
import { authHarness, FIXTURE_PLUGINS, post } from '../auth/support.js';
import { describePg } from '../postgres/harness.js';
import { faultyFront, populateSource, registryAnswers, type TargetDatabase, targetDatabase, targetEnv } from './migrate-store-helpers.js';
import { buildTemplatePack, type BuiltPack, call, childServerPerTest, iqpOnData, listTree, newKey, sha256, startRegistry, tempDir, upload } from './helpers.js';
import { s3rverForFile } from './s3rver.js';
import { iqp } from '../e2e/helpers.js';

// Dropped after each test, once its server has stopped (after-hooks run last-registered first).
const targets: TargetDatabase[] = [];
afterEach(async () => {
  for (const t of targets.splice(0)) await t.drop();
});
const servers = childServerPerTest();
const s3 = s3rverForFile();

async function freshDatabase(): Promise<TargetDatabase> {
  const t = await targetDatabase();
  targets.push(t);
  return t;
}

/** A fresh database and bucket, and the settings that name both. */
async function freshTargets(): Promise<{ database: TargetDatabase; bucket: string; env: Record<string, string> }> {
  const database = await freshDatabase();
  const bucket = await s3.newBucket();
  return { database, bucket, env: targetEnv({ database: database.url, bucket, endpoint: s3.endpoint }) };
}

const migrate = (dataDir: string, env: Record<string, string>, ...args: string[]) => iqpOnData(dataDir, ['server', 'migrate-store', '--json', ...args], env);

/** Every file of the data directory a move must leave as it was (not the lock, staged uploads or SQLite's shared-memory files), by content. */
function sourceFiles(dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const path of listTree(dataDir)) {
    if (/^(lock\.(json|sqlite)|tmp\/)|-(wal|shm)$/.test(path)) continue;
    out[path] = createHash('sha256').update(readFileSync(join(dataDir, path))).digest('hex');
  }
  return out;
}

/** Rows per table of the data directory's database. */
function sourceRows(dataDir: string): Record<string, number> {
  const db = new Database(databasePath(dataDir), { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").pluck().all() as string[];
    return Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT count(*) FROM "${t}"`).pluck().get() as number]));
  } finally {
    db.close();
  }
}

/** Keys in the bucket, as files in s3rver's directory. */
function bucketHolds(bucket: string, pack: BuiltPack): boolean {
  return existsSync(s3.objectFile(bucket, `packs/sha256/${pack.sha256}`));
}

/** A registry with `count` packs and nothing else, stopped: a source quick to make. */
async function smallSource(count = 2): Promise<{ dataDir: string; packs: BuiltPack[] }> {
  const key = newKey();
  const reg = await startRegistry({ keys: [key] });
  try {
    const packs: BuiltPack[] = [];
    for (let i = 0; i < count; i++) {
      const pack = await buildTemplatePack(tempDir('iqp-migrate-small-'), key, { authored: { package_id: `small.p${i}`, version: '1.0.0' } });
      expect((await upload(reg.url, reg.publisher, pack.path)).status).toBe(201);
      packs.push(pack);
    }
    return { dataDir: reg.dataDir, packs };
  } finally {
    await reg.close();
  }
}

async function expectDownloads(url: string, packs: readonly BuiltPack[]): Promise<void> {
  for (const p of packs) {
    const got = await call(url, `/v1/packs/${p.package_id}/download?version=${p.version}`);
    expect([got.status, sha256(got.body)], `${p.package_id}@${p.version}`).toEqual([200, p.sha256]);
  }
}

describePg('iqp server migrate-store', () => {
  it('moves a registry with its plugins to PostgreSQL and a bucket; the registry started there answers as before', { timeout: 120_000 }, async () => {
    const source = await populateSource();
    const { database: target, bucket, env } = await freshTargets();
    const before = sourceFiles(source.dataDir);
    const rows = sourceRows(source.dataDir);

    const r = await migrate(source.dataDir, env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr, '--json: nothing on stderr').toBe('');
    expect(r.stdout, 'the password is never printed').not.toContain(target.password);
    const out = r.json();
    const registryId = (source.answers.channels as { registry_id: string }).registry_id;
    expect(out).toMatchObject({ dry_run: false, data_dir: source.dataDir, registry_id: registryId, database: { to: expect.stringContaining(':***@') }, blobs: { referenced: 4, copied: 4, skipped: 0, bytes_copied: source.packs.reduce((n, p) => n + p.size_bytes, 0) } });
    expect(out.duration_ms).toBeGreaterThanOrEqual(0);
    const copied = Object.fromEntries((out.database.tables as { table: string; rows: number; target_rows: number }[]).map((t) => [t.table, t.rows]));
    for (const t of out.database.tables) expect(t.target_rows, t.table).toBe(t.rows);
    const { schema_migrations: _ledger, ...data } = rows;
    expect(copied).toEqual(data);
    expect(copied['auth_users'], 'plugin tables are copied').toBe(1);
    expect(copied['sync_rows']).toBe(3);
    const inTarget = await target.rows();
    for (const [table, n] of Object.entries(data)) expect(inTarget[table], table).toBe(n);
    for (const p of source.packs) expect(bucketHolds(bucket, p)).toBe(true);
    expect(sourceFiles(source.dataDir), 'the data directory is left as it was: it is the rollback').toEqual(before);
    const again = await migrate(source.dataDir, env);
    expect(again.json(), 'run again, it refuses: the move has finished').toMatchObject({ error: { code: 'IQP_E_TARGET_NOT_EMPTY', details: { same_registry: true } } });

    const server = await servers.start(source.dataDir, ['--workers', '1'], env);
    await expectDownloads(server.url, source.packs);
    expect(await registryAnswers(server.url, source.admin, source.accessToken, source.deviceId), 'the same packs, releases, registry id, audit log and synced data').toEqual(source.answers);
    expect((await call(server.url, '/v1/admin/releases', { token: source.publisher })).status, 'tokens still authenticate').toBe(200);
    expect((await call(server.url, '/v1/admin/releases', { token: source.revoked })).status, 'a revoked token stays revoked').toBe(401);
    const login = await post(`${server.url}/v1/auth/login`, { email: source.email, password: source.password, device_id: source.deviceId });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    const next = await call(server.url, '/v1/admin/releases', { method: 'POST', token: source.publisher, json: { name: '2025.4', channel: 'stable', min_app_version: '1.0.0', roles: ['text'] } });
    expect(next.status, next.body.toString('utf8')).toBe(201);
    expect(next.json<{ id: number }>().id, 'new ids come after the copied ones').toBeGreaterThan(Math.max(...source.releaseIds));
    const newest = (await call(server.url, '/v1/admin/audit?limit=1', { token: source.admin })).json<{ entries: { id: number }[] }>().entries[0]!;
    expect(newest.id).toBeGreaterThan(Math.max(...source.answers.audit.map((e) => e.id)));
  });

  it("converts a plugin's values to its PostgreSQL column types, and moves its identity past every id SQLite handed out", async () => {
    const h = await authHarness({ fixtures: { typed: {} } });
    try {
      const insert = 'INSERT INTO typed_items (flag, doc, raw, big, at) VALUES (?, ?, ?, ?, ?)';
      await h.db.run(insert, [1, '{"a": [1, 2], "b": "é"}', Buffer.from([0, 1, 255]), 2n ** 62n + 1n, '2025-01-02T03:04:05.678Z']);
      await h.db.run(insert, [0, '[]', null, null, '2025-06-01T00:00:00Z']);
      await h.db.run(insert, [1, '{}', null, null, '2025-06-01T00:00:00Z']);
      await h.db.run('DELETE FROM typed_items WHERE id = 3');
    } finally {
      await h.close();
    }
    const database = await freshDatabase();
    const r = await migrate(h.dir, targetEnv({ database: database.url }));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const rows = (await database.schema.sql("SELECT id::text, flag, doc, raw, big::text, at = '2025-01-02T03:04:05.678Z'::timestamptz AS first FROM typed_items ORDER BY id")).rows;
    expect(rows).toEqual([
      { id: '1', flag: true, doc: { a: [1, 2], b: 'é' }, raw: Buffer.from([0, 1, 255]), big: (2n ** 62n + 1n).toString(), first: true },
      { id: '2', flag: false, doc: [], raw: null, big: null, first: false },
    ]);
    const next = await database.schema.sql("INSERT INTO typed_items (flag, doc, at) VALUES (true, '{}', now()) RETURNING id::text");
    expect(next.rows[0].id, 'id 3 was handed out (and deleted) in SQLite: never again').toBe('4');
  });

  it('moves only the blobs to a bucket, keeping registry.sqlite', async () => {
    const source = await smallSource();
    const bucket = await s3.newBucket();
    const env = targetEnv({ bucket, endpoint: s3.endpoint });
    const r = await migrate(source.dataDir, env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ database: null, blobs: { referenced: 2, copied: 2, skipped: 0 } });
    const server = await servers.start(source.dataDir, ['--workers', '1'], env);
    await expectDownloads(server.url, source.packs);
    for (const p of source.packs) expect(bucketHolds(bucket, p)).toBe(true);
  });

  it('moves only the database to PostgreSQL, keeping blobs/', async () => {
    const source = await smallSource();
    const env = targetEnv({ database: (await freshDatabase()).url });
    const r = await migrate(source.dataDir, env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ blobs: null, database: { tables: expect.arrayContaining([{ table: 'packs', rows: 2, target_rows: 2 }]) } });
    const server = await servers.start(source.dataDir, ['--workers', '1'], env);
    await expectDownloads(server.url, source.packs);
  });

  it('a dry run says what would move and writes nothing', async () => {
    const source = await smallSource();
    const { database, bucket, env } = await freshTargets();
    const r = await migrate(source.dataDir, env, '--dry-run');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ dry_run: true, database: { tables: expect.arrayContaining([{ table: 'packs', rows: 2, target_rows: null }]) }, blobs: { referenced: 2, copied: 0, skipped: 0, to_copy: 2 } });
    expect(await database.rows(), 'no table made').toEqual({});
    for (const p of source.packs) expect(bucketHolds(bucket, p)).toBe(false);
  });

  it('refuses while a server holds the data directory (IQP_E_DATA_DIR_LOCKED) and writes nothing', async () => {
    const source = await smallSource();
    const { database, bucket, env } = await freshTargets();
    await servers.start(source.dataDir, ['--workers', '1']);
    const r = await migrate(source.dataDir, env);
    expect(r.code).toBe(4);
    expect(r.json()).toMatchObject({ error: { code: 'IQP_E_DATA_DIR_LOCKED' } });
    const rehearsal = await migrate(source.dataDir, env, '--dry-run');
    expect(rehearsal.code, 'a dry run reads beside the server, and says it must stop first').toBe(0);
    expect(rehearsal.json()).toMatchObject({ dry_run: true, source_in_use: expect.stringMatching(/iqp server start/) });
    expect(await database.rows()).toEqual({});
    for (const p of source.packs) expect(bucketHolds(bucket, p)).toBe(false);
  });

  it('refuses a database that already holds a registry, core or plugin rows (IQP_E_TARGET_NOT_EMPTY), and changes nothing there', async () => {
    const source = await smallSource();
    const { database, bucket, env } = await freshTargets();
    // Another registry on that database: an account (a plugin's row) and its audit entry.
    const other = tempDir('iqp-migrate-other-');
    expect((await iqpOnData(other, ['plugins', 'enable', 'auth'], { IQP_DATABASE_URL: database.url })).code).toBe(0);
    const made = await iqpOnData(other, ['users', 'create', 'bob@example.org'], { IQP_DATABASE_URL: database.url, IQP_USER_PASSWORD: 'x7#kq2Lm-river-stone' });
    expect(made.code, made.stderr).toBe(0);
    const rows = await database.rows();
    const r = await migrate(source.dataDir, env);
    expect(r.code).toBe(2);
    expect(r.json()).toMatchObject({ error: { code: 'IQP_E_TARGET_NOT_EMPTY', details: { tables: expect.arrayContaining(['audit_log', 'auth_users']) } } });
    expect(r.stdout).not.toContain(database.password);
    expect(await database.rows()).toEqual(rows);
    for (const p of source.packs) expect(bucketHolds(bucket, p)).toBe(false);
  });

  it('refuses settings that name the data directory itself, or cannot work, with IQP_E_CONFIG; and a data directory without a registry', async () => {
    const source = await smallSource(1);
    const before = sourceFiles(source.dataDir);
    for (const [env, key] of [
      [{}, undefined],
      [{ IQP_BLOB_STORE: 's3' }, 's3_bucket'],
      [{ IQP_DOWNLOAD_MODE: 'redirect', IQP_DATABASE_URL: 'postgres://127.0.0.1:1/none' }, 'download_mode'],
      [{ IQP_DATABASE_URL: 'mysql://u:secret-pw@127.0.0.1/db' }, undefined],
    ] as const) {
      const r = await migrate(source.dataDir, env);
      expect(r.code, JSON.stringify(env)).toBe(2);
      expect(r.json(), JSON.stringify(env)).toMatchObject({ error: { code: 'IQP_E_CONFIG', ...(key ? { details: { key } } : {}) } });
      expect(r.stdout).not.toContain('secret-pw');
    }
    expect(sourceFiles(source.dataDir)).toEqual(before);
    expect(existsSync(join(source.dataDir, 'lock.json'))).toBe(false);

    const parent = tempDir('iqp-migrate-none-');
    const missing = join(parent, 'data');
    const r = await iqp(['server', 'migrate-store', '--json', '--data', missing], { cwd: parent, env: { HOME: parent, ...targetEnv({ database: 'postgres://127.0.0.1:1/none' }) } });
    expect(r.code).toBe(2);
    expect(r.json()).toMatchObject({ error: { code: 'IQP_E_FILE_NOT_FOUND' } });
    expect(existsSync(missing), 'no data directory made').toBe(false);
  });

  it('refuses a data directory whose schema is older or newer than this iqp (IQP_E_CONFIG), writing nothing', async () => {
    const database = await freshDatabase();
    const old = tempDir('iqp-migrate-old-');
    const db = new Database(databasePath(old));
    applyMigrations(db, 3);
    db.close();
    const newer = (await smallSource(1)).dataDir;
    const ahead = new Database(databasePath(newer));
    ahead.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, ?)').run('from the future', new Date().toISOString());
    ahead.close();
    for (const [dir, says, hint] of [
      [old, /version 3, older/, /iqp server migrate/],
      [newer, /version 99, newer/, /iqp version that last ran/],
    ] as const) {
      const r = await migrate(dir, targetEnv({ database: database.url }));
      expect(r.code).toBe(2);
      expect(r.json()).toMatchObject({ error: { code: 'IQP_E_CONFIG', message: expect.stringMatching(says), hint: expect.stringMatching(hint) } });
    }
    expect(await database.rows()).toEqual({});
  });

  it("refuses plugins whose migrations the data directory has not all applied, or that server.json no longer names, writing nothing", async () => {
    const database = await freshDatabase();
    const env = targetEnv({ database: database.url });
    const h = await authHarness();
    await h.close();
    // The fixture plugin enabled after the registry last ran: its tables were never made.
    const file = JSON.parse(readFileSync(join(h.dir, 'server.json'), 'utf8'));
    file.plugins.typed = { enabled: true, source: join(FIXTURE_PLUGINS, 'typed'), required: false, config: {} };
    writeFileSync(join(h.dir, 'server.json'), JSON.stringify(file));
    const behind = await migrate(h.dir, env);
    expect(behind.code).toBe(2);
    expect(behind.json()).toMatchObject({ error: { code: 'IQP_E_CONFIG', details: { plugin: 'typed', pending: ['0001-items'] } } });
    // The auth plugin's tables are in the ledger, but server.json no longer names it.
    delete file.plugins.typed;
    delete file.plugins.auth;
    writeFileSync(join(h.dir, 'server.json'), JSON.stringify(file));
    const unnamed = await migrate(h.dir, env);
    expect(unnamed.code).toBe(2);
    expect(unnamed.json()).toMatchObject({ error: { code: 'IQP_E_PLUGIN_MISSING', details: { plugin: 'auth' } } });
    expect(await database.rows()).toEqual({});
  });

  it('refuses a table no migration of the target makes (IQP_E_STORE_INCOMPATIBLE) before copying anything', async () => {
    const source = await smallSource(1);
    const db = new Database(databasePath(source.dataDir));
    db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('kept by hand')");
    db.close();
    const { database, bucket, env } = await freshTargets();
    const r = await migrate(source.dataDir, env);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ error: { code: 'IQP_E_STORE_INCOMPATIBLE', details: { table: 'notes' } } });
    const rows = Object.entries(await database.rows()).filter(([, n]) => n > 0);
    expect(Object.fromEntries(rows), 'only the rows the migrations make themselves').toEqual({ registry_changes: 1, registry_identity: 1, schema_migrations: 5 });
    expect(bucketHolds(bucket, source.packs[0]!)).toBe(false);
  });

  it('a value the database refuses rolls every table back; once it is fixed, running again copies everything', async () => {
    const source = await smallSource(1);
    const db = new Database(databasePath(source.dataDir));
    // SQLite keeps any integer in this column; PostgreSQL's is 32 bits.
    db.prepare('INSERT INTO plugin_rate_limits (key, points, expire) VALUES (?, ?, ?)').run('x:y:z', 2 ** 40, Date.now());
    db.close();
    const database = await freshDatabase();
    const env = targetEnv({ database: database.url });
    const r = await migrate(source.dataDir, env);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ error: { code: 'IQP_E_STORE_INCOMPATIBLE', details: { table: 'plugin_rate_limits' } } });
    const rows = await database.rows();
    expect([rows['packs'], rows['audit_log'], rows['plugin_rate_limits']], 'tables copied before it were rolled back').toEqual([0, 0, 0]);

    const fix = new Database(databasePath(source.dataDir));
    fix.prepare('DELETE FROM plugin_rate_limits').run();
    fix.close();
    const again = await migrate(source.dataDir, env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect((await database.rows())['packs']).toBe(1);
  });

  it('an upload the bucket fails half-way stops the copy before the database; running again copies the rest and skips what landed', async () => {
    const source = await smallSource(3);
    const { database, bucket, env } = await freshTargets();
    const front = await faultyFront(s3.endpoint, 1);
    try {
      const failed = await migrate(source.dataDir, { ...env, IQP_S3_ENDPOINT: front.endpoint });
      expect(failed.code, failed.stdout + failed.stderr).toBe(3);
      expect(failed.json()).toMatchObject({ error: { code: 'IQP_E_UNAVAILABLE' } });
      expect(front.uploads).toBe(1);
    } finally {
      await front.close();
    }
    expect((await database.rows())['packs'], 'no row copied').toBe(0);
    expect(source.packs.filter((p) => bucketHolds(bucket, p))).toHaveLength(1);

    const again = await migrate(source.dataDir, env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ blobs: { referenced: 3, copied: 2, skipped: 1 } });
    const server = await servers.start(source.dataDir, ['--workers', '1'], env);
    await expectDownloads(server.url, source.packs);
  });

  it('progress goes to stderr as plain lines without a terminal, and the summary to stdout', async () => {
    const source = await smallSource(1);
    const { database, env } = await freshTargets();
    const r = await iqpOnData(source.dataDir, ['server', 'migrate-store'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/blob 1\/1/);
    expect(r.stderr).toMatch(/packs: 1 row/);
    expect(r.stdout).toMatch(/registry id [0-9a-f]{32}/);
    expect(r.stdout + r.stderr).not.toContain(database.password);
  });
});
