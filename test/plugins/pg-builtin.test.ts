/**
 * The built-in auth and sync plugins on PostgreSQL, over HTTP: the plugin host in server mode on a
 * PgPluginDatabase (beside the core's PostgreSQL schema and its API tokens), its routes on an
 * Express app on 127.0.0.1, and a user's life through them: sign up, verify, sign in, push, a
 * replayed push, pull, a conflict from a second device, export and import into another account.
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { Router } from 'express';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createValidator } from '../../server/http/contract.js';
import { errorHandler } from '../../server/http/errors.js';
import { createGuard } from '../../server/http/guard.js';
import { AUTH_ADMIN_V1, AUTH_V1, type PluginManifest } from '../../server/plugins/api.js';
import { pluginAudit } from '../../server/plugins/audit.js';
import { PluginHost } from '../../server/plugins/host.js';
import { readPluginManifest } from '../../server/plugins/loader.js';
import { checksum } from '../../server/plugins/migrations.js';
import { PgPluginDatabase } from '../../server/plugins/pg-db.js';
import { systemClock } from '../../server/services/clock.js';
import { TokenService } from '../../server/services/tokens.js';
import { PostgresMetadataStore } from '../../server/stores/postgres/metadata.js';
import { post } from '../auth/support.js';
import { tempDir } from '../e2e/helpers.js';
import { describePg, freshSchema, type TestSchema } from '../postgres/harness.js';

const PASSWORD = 'x7#kq2Lm-river-stone';
/** Generous limits, so nothing here meets one (they are counted all the same). */
const AUTH = { unverified_may: [], rate_limits: { per_ip: { points: 100_000, duration_s: 60 }, per_email_ip: { points: 100_000, duration_s: 60 }, mail_per_email: { points: 1000, duration_s: 60 } } };
const SYNC = { rate_limits: { push_per_user: { points: 100_000, duration_s: 60 }, pull_per_user: { points: 100_000, duration_s: 60 } } };

describePg('built-in auth and sync on PostgreSQL', () => {
  let schema: TestSchema;
  let meta: PostgresMetadataStore;
  let db: PgPluginDatabase;
  let host: PluginHost;
  let server: ReturnType<ReturnType<typeof express>['listen']>;
  let base: string;
  let dataDir: string;
  const logs: Record<string, unknown>[] = [];

  beforeEach(async () => {
    schema = await freshSchema();
    meta = new PostgresMetadataStore(schema.options());
    await meta.migrate();
    db = new PgPluginDatabase(schema.options());
    dataDir = tempDir('iqp-pg-plugins-');
    const plugin = (config: unknown) => ({ enabled: true, source: 'builtin', required: true, config });
    writeFileSync(join(dataDir, 'server.json'), JSON.stringify({ plugins: { auth: plugin(AUTH), sync: plugin(SYNC) } }));
    const log = (line: Record<string, unknown>) => void logs.push(line);
    let running: PluginHost | null = null;
    // As server/start.ts builds it: the core's guard (API tokens, then the auth plugin's users).
    const userAuth = () => running?.service(AUTH_V1) ?? null;
    running = await PluginHost.start({
      dataDir,
      mode: 'server',
      db,
      log,
      audit: pluginAudit(db),
      mount: { ajv: createValidator(), log, guard: createGuard({ tokens: new TokenService(meta, systemClock), userAuth }), validateResponses: true },
    });
    host = running;
    const v1 = Router();
    host.mount(v1);
    const app = express();
    app.use('/v1', v1);
    app.use(errorHandler(log));
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    await host.stop();
    await db.close();
    await meta.close();
    await schema.drop();
  });

  /** Signs up, verifies with the mailed code, signs in on `deviceId`: the access token. */
  async function account(email: string, deviceId: string): Promise<string> {
    expect((await post(`${base}/auth/register`, { email, password: PASSWORD })).status).toBe(202);
    const mail = (await host.service(AUTH_ADMIN_V1)!.readOutbox()).filter((m) => m.to === email).at(-1)!;
    const code = /code is (\d{6})/.exec(mail.text)![1]!;
    expect((await post(`${base}/auth/verify-email`, { email, code })).body).toEqual({ email_verified: true });
    return signIn(email, deviceId);
  }

  async function signIn(email: string, deviceId: string): Promise<string> {
    const login = await post(`${base}/auth/login`, { email, password: PASSWORD, device_id: deviceId });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    return login.body.access_token;
  }

  const push = (token: string, deviceId: string, mutations: unknown[]) => post(`${base}/sync/push`, { device_id: deviceId, schema_version: 1, mutations }, token);
  const exportOf = async (token: string) => (await fetch(`${base}/sync/export`, { headers: { authorization: `Bearer ${token}` } })).text();
  const trailerOf = (text: string) => JSON.parse(text.trim().split('\n').at(-1)!).trailer;

  it('migrate into the ledger with their postgres scripts', async () => {
    expect(host.status().failed).toEqual([]);
    const ledger = await db.all<{ plugin_id: string; migration_id: string; checksum: string }>('SELECT plugin_id, migration_id, checksum FROM plugin_migrations ORDER BY plugin_id, migration_id');
    const expected = (['auth', 'sync'] as const).flatMap((id) => {
      const manifest: PluginManifest = readPluginManifest(id, 'builtin', dataDir);
      return (manifest.migrations ?? []).map((m) => ({ plugin_id: id, migration_id: m.id, checksum: checksum(m, 'postgres') }));
    });
    expect(ledger).toEqual(expected);
  });

  it('sign up, verify, sign in; push, replay, pull; a conflict from a second device; export and import', async () => {
    const phone = await account('ann@example.org', 'ann-phone-1');
    // Ids that sort differently by byte than by a language's collation (case, punctuation, accents).
    const ids = ['a', 'B', 'c-1', 'c1', 'é', 'Z'];
    const mutations = ids.map((id, i) => ({ mutation_id: `m${i}`, entity: i % 2 ? 'deck' : 'card', entity_id: id, op: 'upsert', payload: { front: `f${i}`, n: i } }));
    const first = await push(phone, 'ann-phone-1', mutations);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.results.map((r: { status: string; seq: number }) => [r.status, r.seq])).toEqual(ids.map((_, i) => ['applied', i + 1]));
    expect(first.body.head).toBe(ids.length);
    const replay = await push(phone, 'ann-phone-1', mutations);
    expect(replay.body).toEqual(first.body);
    const pulled = await post(`${base}/sync/pull`, { device_id: 'ann-phone-1', cursor: null }, phone);
    expect(pulled.status).toBe(200);
    expect(pulled.body.changes).toEqual(mutations.map((m, i) => ({ entity: m.entity, entity_id: m.entity_id, op: 'upsert', payload: m.payload, version: 1, seq: i + 1 })));

    // Both devices change `front` of card a from version 1: the later one wins, the conflict is kept.
    const tablet = await signIn('ann@example.org', 'ann-tablet-1');
    const mine = await push(phone, 'ann-phone-1', [{ mutation_id: 'p1', entity: 'card', entity_id: 'a', op: 'patch', payload: { front: 'phone' }, base_version: 1 }]);
    expect(mine.body.results[0]).toMatchObject({ status: 'applied', version: 2 });
    const theirs = await push(tablet, 'ann-tablet-1', [{ mutation_id: 't1', entity: 'card', entity_id: 'a', op: 'patch', payload: { front: 'tablet' }, base_version: 1 }]);
    expect(theirs.body.results[0]).toMatchObject({ status: 'conflict', version: 3 });
    const conflicts = await post(`${base}/sync/conflicts`, undefined, phone, 'GET');
    expect(conflicts.body.conflicts).toEqual([
      expect.objectContaining({ id: theirs.body.results[0].conflict_id, entity: 'card', entity_id: 'a', fields: ['front'], winner: { front: 'tablet', n: 0 }, loser: { front: 'phone', n: 0 }, status: 'open', winner_device: 'ann-tablet-1', loser_device: 'ann-phone-1' }),
    ]);

    const exported = await exportOf(phone);
    const trailer = trailerOf(exported);
    expect(trailer).toMatchObject({ format: 'iqp-sync-export/1', count: ids.length });
    const bob = await account('bob@example.org', 'bob-phone-1');
    const imported = await fetch(`${base}/sync/import?mode=replace`, { method: 'POST', headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/x-ndjson' }, body: exported });
    expect(imported.status).toBe(200);
    expect(await imported.json()).toMatchObject({ imported: ids.length, mode: 'replace', sha256: trailer.sha256 });
    expect(trailerOf(await exportOf(bob)).sha256).toBe(trailer.sha256);

    // Their audit entries are in the core's log; their counters in the core's rate-limit table.
    const actions = (await meta.listAudit(100, null)).items.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['auth.user_registered', 'auth.email_verified']));
    const limited = await db.all<{ key: string }>('SELECT key FROM plugin_rate_limits ORDER BY key');
    expect(limited.some((r) => r.key.startsWith('auth:')) && limited.some((r) => r.key.startsWith('sync:'))).toBe(true);
    expect(logs.filter((l) => l['level'] === 'error')).toEqual([]);
  });

  it('pushes from two devices at once each take their own sequence numbers, none lost or shared', async () => {
    const phone = await account('ann@example.org', 'ann-phone-1');
    const tablet = await signIn('ann@example.org', 'ann-tablet-1');
    const pushes = [];
    for (let i = 0; i < 8; i++) {
      for (const [token, device] of [[phone, 'ann-phone-1'], [tablet, 'ann-tablet-1']] as const) {
        pushes.push(push(token, device, [0, 1, 2].map((k) => ({ mutation_id: `${device}-${i}-${k}`, entity: 'card', entity_id: `${device}-${i}-${k}`, op: 'upsert', payload: { k } }))));
      }
    }
    const answers = await Promise.all(pushes);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const seqs = answers.flatMap((a) => a.body.results.map((r: { status: string; seq: number }) => (r.status === 'applied' ? r.seq : -1)));
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 48 }, (_, i) => i + 1));
    const pulled = await post(`${base}/sync/pull`, { device_id: 'ann-phone-1', cursor: null, limit: 100 }, phone);
    expect(pulled.body.changes).toHaveLength(48);
    expect(pulled.body.head).toBe(48);
  });
});
