/**
 * The audit log as an operator reads it: `iqp audit` with the admin token from the environment,
 * filtered by token id (whatever the token's name), action, target and time, paging through the
 * API; and GET /v1/admin/audit?actor=token:<id> itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iqp, listTree, tempDir } from './helpers.js';
import { buildTemplatePack, call, newKey, startRegistry, type TestRegistry, upload } from '../server/helpers.js';

let reg: TestRegistry;
let publisherId: string;
const ESC = '\u001b';

beforeAll(async () => {
  const key = newKey();
  reg = await startRegistry({ keys: [key] });
  publisherId = /^iqp_([0-9a-f]{12})_/.exec(reg.publisher)![1]!;
  const pack = await buildTemplatePack(tempDir(), key);
  expect((await upload(reg.url, reg.publisher, pack.path)).status).toBe(201);
  const meta = reg.running.stores.meta;
  // A token whose name would paint the terminal red, and entries at times the tests choose.
  await reg.running.registry.services.tokens.create('publisher', `red ${ESC}[31mteam`, 'test');
  await meta.appendAudit({ at: '2020-01-01T00:00:00.000Z', actor: 'cli:token', action: 'old.thing', target: 'x', details: null });
  await meta.appendAudit({ at: new Date(Date.now() - 3_600_000).toISOString(), actor: 'cli:token', action: 'recent.thing', target: 'x', details: null });
  for (let i = 0; i < 1200; i++) await meta.appendAudit({ at: '2021-06-01T00:00:00.000Z', actor: 'cli:bulk', action: `bulk.${i % 2 ? 'odd' : 'even'}`, target: `n:${i}`, details: { i } });
}, 120_000);

afterAll(async () => {
  await reg?.close();
});

const admin = () => ({ IQP_TOKEN: reg.admin, IQP_REGISTRY: reg.url });

describe('the audit log', () => {
  it('GET /v1/admin/audit?actor=token:<id> finds what the token did, and the exact actor still matches', async () => {
    const byId = (await call(reg.url, `/v1/admin/audit?actor=token:${publisherId}`, { token: reg.admin })).json();
    expect(byId.entries.map((e: { action: string }) => e.action)).toEqual(['pack.publish']);
    const actor = byId.entries[0].actor as string;
    expect(actor).toBe(`token:${publisherId}(test-publisher)`);
    const exact = (await call(reg.url, `/v1/admin/audit?actor=${encodeURIComponent(actor)}`, { token: reg.admin })).json();
    expect(exact.entries).toEqual(byId.entries);
    // A prefix of an id is not the token: nothing.
    const partial = (await call(reg.url, `/v1/admin/audit?actor=token:${publisherId.slice(0, 6)}`, { token: reg.admin })).json();
    expect(partial.entries).toEqual([]);
  });

  it('iqp audit --actor <token id> shows the token’s entries, with the admin token from IQP_TOKEN', async () => {
    const cwd = tempDir();
    for (const actor of [publisherId, `token:${publisherId}`]) {
      const r = await iqp(['audit', '--actor', actor, '--json'], { cwd, env: admin() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const doc = r.json();
      expect(doc.entries.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([['pack.publish', `token:${publisherId}(test-publisher)`]]);
      expect(doc.has_more).toBe(false);
    }
    const human = await iqp(['audit', '--actor', publisherId], { cwd, env: admin() });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`token:${publisherId}\\(test-publisher\\)  pack\\.publish  `));
    expect(listTree(cwd)).toEqual([]);
  });

  it('filters by action (exact or a family), target and time, and pages through every entry once', async () => {
    const cwd = tempDir();
    const all = (await iqp(['audit', '--action', 'bulk.*', '--limit', '10000', '--json'], { cwd, env: admin() })).json();
    expect(all.entries).toHaveLength(1200);
    expect(all.has_more).toBe(false);
    const ids = all.entries.map((e: { id: number }) => e.id);
    expect(new Set(ids).size).toBe(1200);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);

    const some = (await iqp(['audit', '--action', 'bulk.*', '--limit', '700', '--json'], { cwd, env: admin() })).json();
    expect(some.entries).toEqual(all.entries.slice(0, 700));
    expect(some.has_more).toBe(true);

    const odd = (await iqp(['audit', '--action', 'bulk.odd', '--limit', '10000', '--json'], { cwd, env: admin() })).json();
    expect(odd.entries).toHaveLength(600);
    const one = (await iqp(['audit', '--target', 'n:7', '--json'], { cwd, env: admin() })).json();
    expect(one.entries.map((e: { details: unknown }) => e.details)).toEqual([{ i: 7 }]);

    const since = (await iqp(['audit', '--actor', 'cli:token', '--since', '2021-01-01', '--json'], { cwd, env: admin() })).json();
    expect(since.entries.map((e: { action: string }) => e.action)).toEqual(['recent.thing']);
    const before = (await iqp(['audit', '--actor', 'cli:token', '--json'], { cwd, env: admin() })).json();
    expect(before.entries.map((e: { action: string }) => e.action)).toEqual(['recent.thing', 'old.thing']);
    const lastDay = (await iqp(['audit', '--actor', 'cli:token', '--since', '24h', '--action', 'recent.thing', '--json'], { cwd, env: admin() })).json();
    expect(lastDay.entries.map((e: { action: string }) => e.action)).toEqual(['recent.thing']);
    const older = (await iqp(['audit', '--since', '2020-01-01T00:00:00Z', '--action', 'old.thing', '--json'], { cwd, env: admin() })).json();
    expect(older.entries).toHaveLength(1);
  }, 60_000);

  it('shows untrusted text without its control characters acting on the terminal', async () => {
    const r = await iqp(['audit', '--action', 'token.create'], { cwd: tempDir(), env: admin() });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('red \\u001b[31mteam');
    expect(r.stdout).not.toContain(ESC);
  });

  it('refuses bad filters and tokens that may not read it, writing nothing', async () => {
    const cwd = tempDir();
    const cases: [string[], Record<string, string>, string, number][] = [
      [['audit', '--since', 'yesterday'], admin(), 'IQP_E_USAGE', 2],
      [['audit', '--limit', '0'], admin(), 'IQP_E_USAGE', 2],
      [['audit', '--limit', '10001'], admin(), 'IQP_E_USAGE', 2],
      [['audit'], { IQP_REGISTRY: reg.url }, 'IQP_E_TOKEN_REQUIRED', 2],
      [['audit'], { IQP_REGISTRY: reg.url, IQP_TOKEN: reg.publisher }, 'IQP_E_FORBIDDEN', 3],
    ];
    for (const [args, env, code, exit] of cases) {
      const r = await iqp([...args, '--json'], { cwd, env });
      expect(r.json().error.code, args.join(' ')).toBe(code);
      expect(r.code, args.join(' ')).toBe(exit);
      expect(r.stderr).toBe('');
    }
    const api = await call(reg.url, '/v1/admin/audit?since=garbage', { token: reg.admin });
    expect(api.status).toBe(400);
    expect(api.json().error).toMatchObject({ code: 'IQP_E_INVALID_REQUEST', details: { field: 'query.since' } });
    expect(listTree(cwd)).toEqual([]);
  });
});
