/**
 * `iqp server start` and the data-directory commands with `database_url`: the registry's metadata
 * in PostgreSQL (a schema of its own on the test server), the blobs in the data directory. The URL
 * carries a password (the test server trusts local connections and ignores it): it must appear in
 * no output.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describePg, freshSchema } from '../postgres/harness.js';
import { buildTemplatePack, childServerPerTest, fresh, iqpOnData, newKey, registerKey, tempDir, upload } from './helpers.js';

const PASSWORD = 'pg-s3cret-never-shown';
const servers = childServerPerTest();

/** The schema's URL with a password in it; the `options` parameter puts the registry in that schema. */
function urlFor(base: string, schema: string): string {
  const u = new URL(base);
  u.password = PASSWORD;
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.href;
}

describePg('a registry on PostgreSQL', () => {
  it('migrates, makes tokens, serves from two workers and survives a restart with every row in PostgreSQL, never printing the password', { timeout: 90_000 }, async () => {
    const schema = await freshSchema();
    try {
      const dataDir = tempDir('iqp-pg-server-');
      const env = { IQP_DATABASE_URL: urlFor(schema.options().connectionString, schema.name) };
      const seen: string[] = [];
      const run = async (args: string[]) => {
        const r = await iqpOnData(dataDir, args, env);
        seen.push(r.stdout, r.stderr);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        return r;
      };
      expect((await run(['server', 'migrate', '--json'])).json()).toMatchObject({ migrated: [1, 2, 3, 4, 5] });
      const admin = (await run(['token', 'create', '--role', 'admin', '--name', 'ops', '--json'])).json<{ token: string }>().token;
      const publisher = (await run(['token', 'create', '--role', 'publisher', '--name', 'ci', '--json'])).json<{ token: string }>().token;
      expect((await schema.sql('SELECT count(*)::int AS n FROM tokens')).rows[0].n, 'the tokens are in PostgreSQL').toBe(2);
      await run(['plugins', 'enable', 'auth']);
      const created = await iqpOnData(dataDir, ['users', 'create', 'ann@example.org', '--json'], { ...env, IQP_USER_PASSWORD: 'x7#kq2Lm-river-stone' });
      expect(created.code, created.stderr).toBe(0);
      expect((await schema.sql('SELECT email FROM auth_users')).rows, 'the accounts are in PostgreSQL too').toEqual([{ email: 'ann@example.org' }]);

      const server = await servers.start(dataDir, ['--workers', '2'], env);
      expect(server.info).toMatchObject({ migrated: [], database: expect.stringContaining('***') });
      const key = newKey();
      await registerKey(server.url, admin, key);
      const pack = await buildTemplatePack(tempDir('iqp-pg-packs-'), key, { authored: { package_id: 'pg.text', version: '1.0.0' } });
      expect((await upload(server.url, publisher, pack.path)).status).toBe(201);
      for (let i = 0; i < 4; i++) expect(JSON.parse((await fresh(server.url, '/v1/packs/available')).body).packs.map((p: { package_id: string }) => p.package_id), 'every worker lists it').toEqual(['pg.text']);
      for (let i = 0; i < 2; i++) {
        const login = await fresh(server.url, '/v1/auth/login', { method: 'POST', json: { email: 'ann@example.org', password: 'x7#kq2Lm-river-stone' } });
        expect(login.status, `each worker signs ann in: ${login.body}`).toBe(200);
      }
      expect(existsSync(join(dataDir, 'registry.sqlite')), 'no SQLite file in the data directory').toBe(false);
      expect((await schema.sql('SELECT package_id, version, sha256 FROM packs')).rows).toEqual([{ package_id: 'pg.text', version: '1.0.0', sha256: pack.sha256 }]);
      server.child.kill('SIGTERM');
      await server.exited;
      seen.push(server.stderr(), JSON.stringify(server.info));

      const again = await servers.start(dataDir, ['--workers', '1'], env);
      const download = await fresh(again.url, '/v1/packs/pg.text/download', { method: 'HEAD' });
      expect(download.status, 'the pack is served after a restart').toBe(200);
      seen.push(again.stderr(), JSON.stringify(again.info));
      expect(seen.join('\n')).not.toContain(PASSWORD);
    } finally {
      await schema.drop();
    }
  });

  it('refuses server backup and restore, which would copy a data directory holding none of the metadata', async () => {
    const dataDir = tempDir('iqp-pg-backup-');
    const env = { IQP_DATABASE_URL: `postgres://iqp:${PASSWORD}@127.0.0.1:1/iqp` };
    for (const args of [['server', 'backup', '--out', 'b.tar'], ['server', 'restore', 'b.tar']]) {
      const r = await iqpOnData(dataDir, [...args, '--json'], env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.json().error).toMatchObject({ code: 'IQP_E_CONFIG', message: expect.stringContaining('pg_dump') });
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
  });

  it('refuses a database_url that is not a postgres:// URL without repeating it', async () => {
    const dataDir = tempDir('iqp-pg-bad-');
    const r = await iqpOnData(dataDir, ['server', 'migrate', '--json'], { IQP_DATABASE_URL: `mysql://root:${PASSWORD}@db/iqp` });
    expect(r.code).toBe(2);
    expect(r.json()).toMatchObject({ error: { code: 'IQP_E_CONFIG' } });
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });
});
