/**
 * The sync plugin on PostgreSQL, through the real binary: pushes of one account that overlap (its
 * devices, or its requests spread over several servers) each get their own seqs. A push reads the
 * account's head and writes it back at its end; two that read the same head must not both build on
 * it, so the second waits for the first and is retried, never answered 500.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { describePg } from '../postgres/harness.js';
import { pgServersPerTest } from '../postgres/servers.js';
import { type ChildServer, call, iqpOnData, tempDir } from '../server/helpers.js';

const PASSWORD = 'x7#kq2Lm-river-stone';
const pg = pgServersPerTest();

describePg('sync on PostgreSQL', () => {
  it('overlapping pushes of one account, through two servers, all apply with distinct seqs and pull back whole', { timeout: 90_000 }, async () => {
    const schema = await pg.schema();
    // Two machines of one deployment: one database, one auth secret.
    const env = { IQP_DATABASE_URL: schema.url(), IQP_AUTH_SECRET: randomBytes(32).toString('base64') };
    const dirs = [tempDir('iqp-sync-pg-'), tempDir('iqp-sync-pg-')];
    for (const dir of dirs) {
      for (const id of ['auth', 'sync']) expect((await iqpOnData(dir, ['plugins', 'enable', id, '--required'], env)).code).toBe(0);
      expect((await iqpOnData(dir, ['plugins', 'config', 'auth', '--set', 'secret={"$env":"IQP_AUTH_SECRET"}', '--set', 'rate_limits={"per_ip":{"points":100000,"duration_s":60},"per_email_ip":{"points":100000,"duration_s":60},"mail_per_email":{"points":10,"duration_s":60}}'], env)).code).toBe(0);
      expect((await iqpOnData(dir, ['plugins', 'config', 'sync', '--set', 'rate_limits={"push_per_user":{"points":100000,"duration_s":60},"pull_per_user":{"points":100000,"duration_s":60}}'], env)).code).toBe(0);
    }
    const created = await iqpOnData(dirs[0]!, ['users', 'create', 'ann@example.org'], { ...env, IQP_USER_PASSWORD: PASSWORD });
    expect(created.code, created.stderr).toBe(0);
    const servers: ChildServer[] = [];
    for (const dir of dirs) {
      servers.push(await pg.start(dir, env, ['--workers', '1']));
    }
    const login = await call(servers[0]!.url, '/v1/auth/login', { method: 'POST', json: { email: 'ann@example.org', password: PASSWORD } });
    expect(login.status, login.body.toString()).toBe(200);
    const token = (JSON.parse(login.body.toString()) as { access_token: string }).access_token;

    // 4 devices × 5 rounds, every round's pushes sent at once, alternating between the servers.
    const DEVICES = 4;
    const ROUNDS = 5;
    const seqs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const answers = await Promise.all(
        Array.from({ length: DEVICES }, (_, d) => {
          const mutations = Array.from({ length: 10 }, (_, i) => ({ mutation_id: `r${round}-m${i}`, entity: 'note', entity_id: `d${d}-r${round}-${i}`, op: 'upsert', payload: { text: `${d}/${round}/${i}` } }));
          return call(servers[d % 2]!.url, '/v1/sync/push', { method: 'POST', token, json: { device_id: `ann-device-${d}`, schema_version: 1, mutations } });
        }),
      );
      for (const a of answers) {
        expect(a.status, a.body.toString()).toBe(200);
        const body = JSON.parse(a.body.toString()) as { results: { status: string; seq: number }[] };
        for (const r of body.results) {
          expect(r.status).toBe('applied');
          seqs.push(r.seq);
        }
      }
    }
    expect(seqs).toHaveLength(DEVICES * ROUNDS * 10);
    expect(new Set(seqs).size, 'no two mutations share a seq').toBe(seqs.length);

    const pulled = new Set<string>();
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const r = await call(servers[1]!.url, '/v1/sync/pull', { method: 'POST', token, json: { device_id: 'ann-reader', cursor, limit: 50 } });
      expect(r.status, r.body.toString()).toBe(200);
      const body = JSON.parse(r.body.toString()) as { changes: { entity_id: string }[]; cursor: string; has_more: boolean };
      for (const c of body.changes) pulled.add(c.entity_id);
      cursor = body.cursor;
      if (!body.has_more) break;
    }
    expect(pulled.size).toBe(DEVICES * ROUNDS * 10);
  });
});
