/**
 * Two registries serving one data directory, as the workers of `iqp server start --workers N` do:
 * each has its own database connection and its own caches (cached JSON answers, resolved packs),
 * so a write through one must reach what the other answers on its very next request, through the
 * store's change counter rather than any in-process callback.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serverConfig } from '../../server/config.js';
import { type RunningServer, startServer } from '../../server/start.js';
import { call, registerKey, newKey } from './helpers.js';
import { api, attach, createRelease, publishPack, publishRelease, type ReleaseRegistry, startReleaseRegistry } from './release-helpers.js';

describe('two registries on one data directory', () => {
  let a: ReleaseRegistry;
  let b: RunningServer;

  beforeEach(async () => {
    a = await startReleaseRegistry();
    b = await startServer(serverConfig({ dataDir: a.dataDir, host: '127.0.0.1', port: 0 }), () => {}, { lock: false, validateResponses: true });
  });
  afterEach(async () => {
    await b.close();
    await a.close();
  });

  /** The versions B lists as available for `id`, asked twice so the second answer comes from B's cache when it has one. */
  async function availableOnB(id: string): Promise<string[]> {
    let versions: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await call(b.url, '/v1/packs/available');
      expect(r.status).toBe(200);
      versions = r.json<{ packs: { package_id: string; version: string }[] }>().packs.filter((p) => p.package_id === id).map((p) => p.version);
    }
    return versions;
  }

  /** The version and sha256 B's download of the newest `id` serves, asked twice for the same reason. */
  async function latestOnB(id: string): Promise<{ version: unknown; sha256: unknown }> {
    let served = { version: undefined as unknown, sha256: undefined as unknown };
    for (let i = 0; i < 2; i++) {
      const r = await call(b.url, `/v1/packs/${id}/download`, { method: 'HEAD' });
      expect(r.status).toBe(200);
      served = { version: r.headers.get('x-iqp-version'), sha256: r.headers.get('x-iqp-sha256') };
    }
    return served;
  }

  it('sees packs published and deprecated through the other at once, in listings and in downloads of the newest version', async () => {
    expect(await availableOnB('shared.text')).toEqual([]);
    const first = await publishPack(a, 'shared.text', '1.0.0');
    expect(await availableOnB('shared.text')).toEqual(['1.0.0']);
    expect(await latestOnB('shared.text')).toEqual({ version: '1.0.0', sha256: first.sha256 });

    const second = await publishPack(a, 'shared.text', '1.1.0');
    expect(await availableOnB('shared.text'), 'the newest version of each pack').toEqual(['1.1.0']);
    expect(await latestOnB('shared.text')).toEqual({ version: '1.1.0', sha256: second.sha256 });

    // The other way round: a deprecation through B, while A has both answers cached.
    for (let i = 0; i < 2; i++) expect((await call(a.url, '/v1/packs/shared.text')).status).toBe(200);
    const dep = await call(b.url, '/v1/admin/packs/shared.text/1.1.0/deprecate', { method: 'POST', token: a.admin, json: { message: 'withdrawn' } });
    expect(dep.status, dep.body.toString('utf8')).toBe(200);
    const versions = (await call(a.url, '/v1/packs/shared.text')).json<{ versions: { version: string; status: string }[] }>().versions;
    expect(versions.find((v) => v.version === '1.1.0')?.status).toBe('deprecated');
    expect(await latestOnB('shared.text')).toEqual({ version: '1.0.0', sha256: first.sha256 });
  });

  it('sees keys and releases changed through the other at once', async () => {
    const keysOnB = async () => {
      await call(b.url, '/v1/keys');
      return (await call(b.url, '/v1/keys')).json<{ keys: { key_id: string }[] }>().keys.map((k) => k.key_id).sort();
    };
    const before = await keysOnB();
    const added = newKey();
    await registerKey(a.url, a.admin, added);
    expect(await keysOnB()).toEqual([...before, added.keyId].sort());

    const latestOnB = async () => {
      await call(b.url, '/v1/releases/latest?channel=stable');
      return call(b.url, '/v1/releases/latest?channel=stable');
    };
    expect((await latestOnB()).status).toBe(404);
    await publishPack(a, 'shared.text', '1.0.0');
    const draft = await createRelease(a, { name: 'first', roles: ['text'] });
    await attach(a, draft.id, 'text', 'shared.text', '1.0.0');
    await publishRelease(a, draft.id);
    const latest = await latestOnB();
    expect(latest.status).toBe(200);
    expect(latest.json<{ release_id: number }>().release_id).toBe(draft.id);

    const gone = await api(a, 'POST', `/v1/admin/releases/${draft.id}/deprecate`, { message: 'withdrawn' });
    expect(gone.status, gone.body.toString('utf8')).toBe(200);
    expect((await latestOnB()).status).toBe(404);
  });
});
