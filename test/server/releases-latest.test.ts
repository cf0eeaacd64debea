/**
 * Which release an app gets (GET /v1/releases/latest) across app versions and channels, as
 * releases are published, deprecated and re-signed; and the admin listing's keyset paging while
 * releases keep being created. startServer on 127.0.0.1:0 over a real SQLite file.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../src/pack/minisign.js';
import { verifyReleaseManifest } from '../../src/pack/release-manifest.js';
import { type BuiltPack, call, collectPages, expectError, newKey, tempDir, type TestKey, type TestRegistry } from './helpers.js';
import {
  api,
  buildReleasePack,
  createRelease,
  deprecateRelease,
  draftWith,
  publishRelease,
  type ReleaseJson,
  type ReleaseRegistry,
  startReleaseRegistry,
  uploadPack,
} from './release-helpers.js';

// Every test gets a fresh registry (the pack is built once), so each passes alone and in any order.

describe('GET /v1/releases/latest', () => {
  let packKey: TestKey;
  let built: BuiltPack;
  let reg: ReleaseRegistry;
  let ids: Record<string, number>;

  /** The release name latest answers for this query, or 404. */
  async function latest(query: string): Promise<string | 404> {
    const r = await call(reg.url, `/v1/releases/latest?${query}`);
    if (r.status === 404) {
      expectError(r, 'IQP_E_NOT_FOUND');
      return 404;
    }
    expect(r.status, r.body.toString()).toBe(200);
    const body = r.json();
    const { manifest } = verifyReleaseManifest(body.manifest_json, body.signature, [parsePublicKey(reg.releaseKey.publicKeyFile)]);
    expect(manifest).toMatchObject({ release_id: body.release_id, channel: body.channel, sequence: body.sequence, min_app_version: body.min_app_version });
    return body.name;
  }

  beforeAll(async () => {
    packKey = newKey();
    built = await buildReleasePack(tempDir('iqp-latest-packs-'), packKey, 'latest.text', '1.0.0');
  });
  beforeEach(async () => {
    reg = await startReleaseRegistry({ packKey });
    const pack = await uploadPack(reg, built);
    ids = {};
    // Published in this order: sequences stable 1..4, beta 1.
    for (const [name, channel, min] of [
      ['s-1.0', 'stable', '1.0.0'],
      ['s-2.0', 'stable', '2.0.0'],
      ['b-1.0', 'beta', '1.0.0'],
      ['s-2.5', 'stable', '2.5.0'],
      ['s-3.0-beta', 'stable', '3.0.0-beta.2'],
    ] as const) {
      const r = await draftWith(reg, name, { text: pack }, { channel, min_app_version: min });
      await publishRelease(reg, r.id);
      ids[name] = r.id;
    }
    await draftWith(reg, 's-draft', { text: pack }, { min_app_version: '1.0.0' });
  });
  afterEach(() => reg?.close());

  it('gives each app version the newest release it can use, with min_app_version boundaries equal, below and above', async () => {
    const cases: [string, string | 404][] = [
      ['0.9.9', 404],
      ['1.0.0', 's-1.0'],
      ['1.9.9', 's-1.0'],
      ['2.0.0', 's-2.0'],
      ['2.4.99', 's-2.0'],
      ['2.5.0', 's-2.5'],
      ['3.0.0-beta.1', 's-2.5'],
      ['3.0.0-beta.2', 's-3.0-beta'],
      ['3.0.0', 's-3.0-beta'],
      ['10.0.0', 's-3.0-beta'],
    ];
    for (const [app, want] of cases) expect(await latest(`channel=stable&app_version=${app}`), `app ${app}`).toBe(want);
    expect(await latest('channel=stable'), 'without app_version: the newest').toBe('s-3.0-beta');
    expect(await latest(''), 'the default channel is stable').toBe('s-3.0-beta');
  });

  it('treats pre-release app versions by semver precedence', async () => {
    expect(await latest('app_version=1.0.0-rc.1')).toBe(404);
    expect(await latest('app_version=2.0.0-alpha')).toBe('s-1.0');
    expect(await latest('app_version=2.5.0-rc.1')).toBe('s-2.0');
    expect(await latest('app_version=2.5.1-rc.1')).toBe('s-2.5');
  });

  it('keeps channels apart', async () => {
    expect(await latest('channel=beta&app_version=10.0.0')).toBe('b-1.0');
    expect(await latest('channel=beta&app_version=0.1.0')).toBe(404);
    expect(await latest('channel=nightly')).toBe(404);
    const beta = (await call(reg.url, '/v1/releases/latest?channel=beta')).json();
    expect([beta.channel, beta.sequence]).toEqual(['beta', 1]);
    const stable = (await call(reg.url, '/v1/releases/latest?channel=stable')).json();
    expect([stable.channel, stable.sequence]).toEqual(['stable', 4]);
  });

  it('leaves deprecated releases out at once, and a re-signed older release becomes the latest', async () => {
    await deprecateRelease(reg, ids['s-3.0-beta']!);
    expect(await latest('app_version=10.0.0')).toBe('s-2.5');
    await deprecateRelease(reg, ids['s-2.5']!);
    expect(await latest('app_version=10.0.0')).toBe('s-2.0');
    expect(await latest('app_version=2.5.0')).toBe('s-2.0');
    const resigned = await publishRelease(reg, ids['s-1.0']!, 'resign');
    expect(resigned.sequence).toBe(5);
    expect(await latest('app_version=10.0.0'), 're-signed with the highest sequence').toBe('s-1.0');
    expect(await latest('app_version=1.0.0')).toBe('s-1.0');
    expect((await call(reg.url, '/v1/releases/latest?app_version=10.0.0')).json().sequence).toBe(5);
    expect(await latest('channel=beta'), 'the other channel is untouched').toBe('b-1.0');
  });

  it('refuses an unknown channel and a malformed app_version', async () => {
    for (const q of ['channel=nope', 'channel=STABLE', 'channel=']) expectError(await call(reg.url, `/v1/releases/latest?${q}`), 'IQP_E_CHANNEL_UNKNOWN', q);
    for (const q of ['app_version=1.0', 'app_version=v1.0.0', 'app_version=latest', 'channel=beta&app_version=1.0.0.0']) {
      expectError(await call(reg.url, `/v1/releases/latest?${q}`), 'IQP_E_INVALID_VERSION', q);
    }
  });
});

describe('GET /v1/admin/releases paging', () => {
  let reg: TestRegistry;
  const names = (list: ReleaseJson[]) => list.map((r) => r.name);

  beforeEach(async () => {
    reg = await startReleaseRegistry();
    for (let i = 1; i <= 9; i += 1) await createRelease(reg, { name: `r${i}`, channel: i % 3 === 0 ? 'beta' : 'stable', roles: ['text'] });
  });
  afterEach(() => reg?.close());

  it('pages newest first with next_cursor and has_more, the same pages every time', async () => {
    const all = await collectPages<ReleaseJson>(reg.url, '/v1/admin/releases?limit=4', 'releases', reg.publisher);
    expect(names(all)).toEqual(['r9', 'r8', 'r7', 'r6', 'r5', 'r4', 'r3', 'r2', 'r1']);
    const first = (await api(reg, 'GET', '/v1/admin/releases?limit=4')).json();
    expect(first.paging).toEqual({ limit: 4, has_more: true, next_cursor: expect.any(String) });
    expect((await api(reg, 'GET', '/v1/admin/releases?limit=4')).json()).toEqual(first);
    const last = (await api(reg, 'GET', `/v1/admin/releases?limit=4&cursor=${encodeURIComponent(first.paging.next_cursor)}`)).json();
    expect(names(last.releases)).toEqual(['r5', 'r4', 'r3', 'r2']);
    const whole = (await api(reg, 'GET', '/v1/admin/releases?limit=9')).json();
    expect(whole.paging).toEqual({ limit: 9, has_more: false, next_cursor: null });
    expect(names(await collectPages(reg.url, '/v1/admin/releases?channel=beta&limit=2', 'releases', reg.publisher))).toEqual(['r9', 'r6', 'r3']);
    expect(names(await collectPages(reg.url, '/v1/admin/releases?channel=stable&status=draft&limit=5', 'releases', reg.publisher))).toHaveLength(6);
  });

  it('stays stable while releases are created between page fetches: no duplicates, no skips', async () => {
    const before = names(await collectPages<ReleaseJson>(reg.url, '/v1/admin/releases?limit=100', 'releases', reg.publisher));
    const seen: string[] = [];
    let cursor: string | null = null;
    let n = 0;
    do {
      const page: any = (await api(reg, 'GET', `/v1/admin/releases?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json();
      seen.push(...names(page.releases));
      cursor = page.paging.next_cursor;
      await createRelease(reg, { name: `between-${(n += 1)}`, roles: ['text'] });
    } while (cursor);
    expect(seen).toEqual(before);
  });

  it('refuses a malformed limit, cursor or status (the schema), a foreign cursor (the store), and an unknown channel', async () => {
    for (const q of ['cursor=', 'limit=0', 'limit=501', 'limit=abc', 'status=gone']) {
      expectError(await api(reg, 'GET', `/v1/admin/releases?${q}`), 'IQP_E_INVALID_REQUEST', q);
    }
    for (const q of ['cursor=garbage', `cursor=${Buffer.from('{"k":"x"}').toString('base64url')}`]) {
      expectError(await api(reg, 'GET', `/v1/admin/releases?${q}`), 'IQP_E_USAGE', q);
    }
    expectError(await api(reg, 'GET', '/v1/admin/releases?channel=nope'), 'IQP_E_CHANNEL_UNKNOWN');
  });
});
