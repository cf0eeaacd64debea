/**
 * Three registries on one PostgreSQL database and one S3-compatible bucket (s3rver), as three
 * machines behind a load balancer run them, each with a data directory of its own: what one writes
 * reaches what the others answer, through PostgreSQL's notifications; a registry whose
 * notification connection is killed reconnects and drops its caches; a pack published through one
 * is served by the others from the bucket; and an account's sign-in limit holds across them.
 */
import { afterEach, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { describePg, freshSchema, type TestSchema } from '../postgres/harness.js';
import { buildTemplatePack, call, iqpOnData, newKey, registerKey, sha256, tempDir, until, upload } from './helpers.js';
import { s3rverForFile } from './s3rver.js';

const s3 = s3rverForFile();

/** A URL that puts the registry in the test's own schema, its connections named `name` (pg_stat_activity). */
function urlFor(schema: TestSchema, name: string): string {
  return schema.url({ application_name: name });
}

describePg('three registries on one PostgreSQL', () => {
  let schema: TestSchema;
  const running: RunningServer[] = [];
  /** Each server's data directory, in the order of `running`. */
  const dirs: string[] = [];
  afterEach(async () => {
    for (const s of running.splice(0)) await s.close();
    dirs.length = 0;
    await schema?.drop();
  });

  async function three(): Promise<[RunningServer, RunningServer, RunningServer]> {
    schema = await freshSchema();
    const bucket = await s3.newBucket();
    // Started one after another; the stores' own tests start them at once.
    for (const name of ['a', 'b', 'c']) {
      const databaseUrl = urlFor(schema, `${schema.name}-${name}`);
      const dataDir = tempDir('iqp-multi-');
      dirs.push(dataDir);
      // Each machine's own server.json: the auth plugin, with a sign-in limit of 3 per address and account.
      for (const args of [['plugins', 'enable', 'auth'], ['plugins', 'config', 'auth', '--set', 'rate_limits={"per_email_ip":{"points":3,"duration_s":900}}']]) {
        // The machine's settings name the database, so its data directory holds no registry.sqlite.
        const r = await iqpOnData(dataDir, args, { IQP_DATABASE_URL: databaseUrl });
        expect(r.code, r.stderr).toBe(0);
      }
      const config = serverConfig({ dataDir, host: '127.0.0.1', port: 0, databaseUrl, databasePoolSize: 3, blobStore: 's3', s3Endpoint: s3.endpoint, s3Bucket: bucket, s3ForcePathStyle: true, s3Checksums: 'when_required' });
      running.push(await startServer(config, () => {}, { validateResponses: true }));
    }
    return running as [RunningServer, RunningServer, RunningServer];
  }

  /** The package ids `server` lists as available, asked twice so the second answer comes from its cache when it has one. */
  async function available(server: RunningServer): Promise<string[]> {
    await call(server.url, '/v1/packs/available');
    return (await call(server.url, '/v1/packs/available')).json<{ packs: { package_id: string }[] }>().packs.map((p) => p.package_id);
  }

  it('sees a publish on one in the others within a second, a deprecation on another in the first, and recovers from a killed notification connection', async () => {
    const [a, b, c] = await three();
    const admin = (await a.registry.services.tokens.create('admin', 'ops', 'test')).token;
    const publisher = (await a.registry.services.tokens.create('publisher', 'ci', 'test')).token;
    const key = newKey();
    await registerKey(a.url, admin, key);
    for (const s of [a, b, c]) expect(await available(s)).toEqual([]);

    const pack = await buildTemplatePack(tempDir('iqp-multi-packs-'), key, { authored: { package_id: 'multi.text', version: '1.0.0' } });
    expect((await upload(a.url, publisher, pack.path)).status).toBe(201);
    expect(await available(a), 'at once where it was published').toEqual(['multi.text']);
    for (const s of [b, c]) expect(await until(async () => (await available(s)).length === 1, 1000), 'within a second elsewhere').toBe(true);

    // A deprecation through B, while A holds the pack's versions in its cache.
    for (let i = 0; i < 2; i++) expect((await call(a.url, '/v1/packs/multi.text')).status).toBe(200);
    expect((await call(b.url, '/v1/admin/packs/multi.text/1.0.0/deprecate', { method: 'POST', token: admin, json: { message: 'withdrawn' } })).status).toBe(200);
    const status = async () => (await call(a.url, '/v1/packs/multi.text')).json<{ versions: { status: string }[] }>().versions[0]!.status;
    expect(await until(async () => (await status()) === 'deprecated', 1000)).toBe(true);

    // Every connection of A killed, its notification connection among them (a network blip, a
    // database failover): A reconnects, and moves its counter, so every cache it had is dropped.
    const before = a.stores.meta.generation();
    const killed = await schema.sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`${schema.name}-a`]);
    expect(killed.rows.length).toBeGreaterThan(0);
    expect(await until(() => a.stores.meta.generation() > before, 10_000), 'a reconnected listener drops every cache').toBe(true);
    expect((await call(c.url, '/v1/admin/packs/multi.text/1.0.0/deprecate', { method: 'POST', token: admin, json: { message: '' } })).status).toBe(200);
    for (const s of [a, b, c]) expect(await until(async () => (await available(s)).length === 1, 1000)).toBe(true);
  });

  it('serves a pack published through one from the bucket on the others, and holds a sign-in limit across all three', async () => {
    const [a, b, c] = await three();
    const admin = (await a.registry.services.tokens.create('admin', 'ops', 'test')).token;
    const publisher = (await a.registry.services.tokens.create('publisher', 'ci', 'test')).token;
    const key = newKey();
    await registerKey(a.url, admin, key);
    const pack = await buildTemplatePack(tempDir('iqp-multi-packs-'), key, { authored: { package_id: 'shared.text', version: '1.0.0' } });
    expect((await upload(a.url, publisher, pack.path)).status).toBe(201);
    for (const s of [b, c]) {
      const got = await call(s.url, '/v1/packs/shared.text/download?version=1.0.0');
      expect([got.status, sha256(got.body)]).toEqual([200, pack.sha256]);
    }

    // An operator on A's machine makes the account: it lands in PostgreSQL, where all three find it.
    const created = await iqpOnData(dirs[0]!, ['users', 'create', 'ann@example.org'], { IQP_DATABASE_URL: urlFor(schema, `${schema.name}-cli`), IQP_USER_PASSWORD: 'x7#kq2Lm-river-stone' });
    expect(created.code, created.stderr).toBe(0);
    const login = (s: RunningServer) => call(s.url, '/v1/auth/login', { method: 'POST', json: { email: 'ann@example.org', password: 'wrong password, again' } });
    // Three tries across three servers spend the limit; the fourth, on any of them, is refused.
    for (const s of [a, b, c]) expect((await login(s)).status).toBe(401);
    const refused = await login(a);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
