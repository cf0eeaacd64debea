/**
 * The JSON cache cannot be grown by junk: it is keyed by route and the parameters the route reads
 * (a junk query parameter changes neither the key nor the answer), and it is capped in bytes
 * (json_cache_bytes), which /v1/metrics reports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTemplatePack, call, newKey, rawGet, type RawResponse, startRegistry, tempDir, type TestKey, type TestRegistry, upload } from '../server/helpers.js';

const CAP = 64 * 1024;
let key: TestKey;
let reg: TestRegistry;

beforeAll(async () => {
  key = newKey();
  reg = await startRegistry({ keys: [key], config: { jsonCacheBytes: CAP, trustProxy: ['loopback'] } });
  const pack = await buildTemplatePack(tempDir('iqp-hostile-cache-'), key, { authored: { package_id: 'cache.pack', version: '1.0.0' } });
  expect((await upload(reg.url, reg.publisher, pack.path)).status).toBe(201);
});

afterAll(async () => {
  await reg?.close();
});

async function gauges(r: TestRegistry): Promise<{ bytes: number; entries: number }> {
  const text = (await call(r.url, '/v1/metrics')).body.toString('utf8');
  const value = (name: string) => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /v1/metrics`);
    return Number(m[1]);
  };
  return { bytes: value('iqp_json_cache_bytes'), entries: value('iqp_json_cache_entries') };
}

/** Status line and headers but Date, and the body. */
function shape(r: RawResponse): { head: string[]; body: string } {
  const end = r.raw.indexOf('\r\n\r\n');
  return { head: r.raw.subarray(0, end).toString('latin1').split('\r\n').filter((l) => !/^date:/i.test(l)), body: r.body.toString('utf8') };
}

describe('junk query parameters', () => {
  it('neither change the answer nor add entries, on every cached route', async () => {
    for (const path of ['/v1/packs/cache.pack/1.0.0/manifest', '/v1/packs/cache.pack', '/v1/packs/available?app_version=1.0.0', '/v1/keys', '/v1/packs?limit=5', '/v1/channels']) {
      const plain = shape(await rawGet(reg.url, path));
      expect(plain.head[0], path).toBe('HTTP/1.1 200 OK');
      const before = await gauges(reg);
      for (let i = 0; i < 150; i++) {
        const junk = `${path}${path.includes('?') ? '&' : '?'}x=${i}&utm_source=${'z'.repeat(i)}`;
        expect(shape(await rawGet(reg.url, junk)), junk).toEqual(plain);
      }
      const after = await gauges(reg);
      expect(after, `${path}: the cache did not grow`).toEqual(before);
    }
  });

  it('a repeated parameter the route reads is still refused, not answered from the cache', async () => {
    await call(reg.url, '/v1/packs/available?type=translation');
    const r = await call(reg.url, '/v1/packs/available?type=translation&type=translation');
    expect(r.status).toBe(400);
  });
});

describe('the byte cap', () => {
  it('distinct answers never take the cache past json_cache_bytes, and each is still right', async () => {
    for (let i = 0; i < 200; i++) {
      const r = await call(reg.url, `/v1/packs/available?app_version=1.0.${i}`);
      expect(r.status).toBe(200);
      expect(r.json().app_version).toBe(`1.0.${i}`);
      const g = await gauges(reg);
      expect(g.bytes, `after ${i + 1} distinct answers`).toBeLessThanOrEqual(CAP);
    }
    const g = await gauges(reg);
    expect(g.entries).toBeGreaterThan(1);
    expect(g.entries).toBeLessThan(200);
  });

  it('an answer larger than the cap is served, and not kept', async () => {
    const small = await startRegistry({ keys: [key], config: { jsonCacheBytes: 1024 } });
    try {
      const pack = await buildTemplatePack(tempDir('iqp-hostile-cache-'), key, { authored: { package_id: 'cache.big', version: '1.0.0' } });
      expect((await upload(small.url, small.publisher, pack.path)).status).toBe(201);
      const a = await rawGet(small.url, '/v1/packs/cache.big/1.0.0/manifest');
      expect(a.status).toBe(200);
      expect(a.body.length).toBeGreaterThan(1024);
      expect(shape(await rawGet(small.url, '/v1/packs/cache.big/1.0.0/manifest'))).toEqual(shape(a));
      expect((await gauges(small)).bytes).toBe(0);
    } finally {
      await small.close();
    }
  });
});

describe('what the links are built from', () => {
  it('an answer for one forwarded protocol is never served for another', async () => {
    const path = '/v1/packs/cache.pack/1.0.0/manifest';
    const { hostname, port } = new URL(reg.url);
    const url = (r: RawResponse) => JSON.parse(r.body.toString('utf8')).download_url as string;
    expect(url(await rawGet(reg.url, path))).toMatch(/^http:\/\//);
    // The test talks to the registry over loopback, which this registry trusts as a proxy (trust_proxy).
    expect(url(await rawGet(reg.url, path, ['X-Forwarded-Proto: https']))).toBe(`https://${hostname}:${port}/v1/packs/cache.pack/download?version=1.0.0`);
    expect(url(await rawGet(reg.url, path))).toMatch(/^http:\/\//);
  });
});
