/**
 * Links in answers (download_url, manifest_url) come from public_url, or, when it is unset, from
 * the request's Host (and X-Forwarded-Proto from a trusted proxy). Those headers are validated:
 * anything but a host name or IP literal with an optional port is 400 IQP_E_INVALID_HOST, never
 * echoed, never cached, and refused before anything is written.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobFiles, buildTemplatePack, type BuiltPack, call, newKey, packRows, rawRequest, startRegistry, tempDir, type TestKey, type TestRegistry, upload } from '../server/helpers.js';

let key: TestKey;
let reg: TestRegistry;
let pack: BuiltPack;

const LINK_ROUTES = ['/v1/packs/host.pack/1.0.0/manifest', '/v1/packs/host.pack', '/v1/packs/available?app_version=1.0.0'];
const BAD_HOSTS = ['"><script>alert(1)</script>', 'evil.example/path?', 'a b', 'user@evil.example', 'host:99999', 'host:8x', '[::1', '[::1]x', 'exa_mple..com', '-bad.example', `${'a'.repeat(64)}.example`, '%2e%2e'];
const GOOD_HOSTS = ['registry.example.com', 'registry.example.com:8080', 'localhost', '10.1.2.3:80', '[::1]:8686', '[2001:db8::1]', 'Registry.Example.COM.'];

function get(path: string, hostLine: string, extra: string[] = []): ReturnType<typeof rawRequest> {
  return rawRequest(reg.url, [`GET ${path} HTTP/1.1`, `Host: ${hostLine}`, ...extra].join('\r\n'));
}

beforeAll(async () => {
  key = newKey();
  // The test talks over loopback, which this registry trusts as a proxy (trust_proxy: loopback).
  reg = await startRegistry({ keys: [key], config: { trustProxy: ['loopback'] } });
  pack = await buildTemplatePack(tempDir('iqp-hostile-host-'), key, { authored: { package_id: 'host.pack', version: '1.0.0' } });
  expect((await upload(reg.url, reg.publisher, pack.path)).status).toBe(201);
});

afterAll(async () => {
  await reg?.close();
});

describe('without public_url', () => {
  it('a Host that is not host[:port] is 400 IQP_E_INVALID_HOST and is not echoed', async () => {
    for (const path of LINK_ROUTES) {
      for (const host of BAD_HOSTS) {
        const r = await get(path, host);
        expect(r.status, `${path} Host: ${host}`).toBe(400);
        expect(JSON.parse(r.body.toString('utf8')).error.code).toBe('IQP_E_INVALID_HOST');
        expect(r.body.toString('utf8'), 'not echoed').not.toContain(host);
        // A good request right after is answered for its own host, not from anything the bad one left.
        const good = await get(path, 'ok.example');
        expect(good.status).toBe(200);
        expect(good.body.toString('utf8')).not.toContain('<script');
      }
    }
  });

  it('a host name or IP literal with an optional port makes the links', async () => {
    for (const host of GOOD_HOSTS) {
      const r = await get('/v1/packs/host.pack/1.0.0/manifest', host);
      expect(r.status, host).toBe(200);
      expect(JSON.parse(r.body.toString('utf8')).download_url).toBe(`http://${host}/v1/packs/host.pack/download?version=1.0.0`);
    }
  });

  it('X-Forwarded-Proto from a trusted proxy must be http or https', async () => {
    for (const proto of ['javascript', 'https://evil.example/#', 'ftp']) {
      const r = await get('/v1/packs/host.pack/1.0.0/manifest', 'ok.example', [`X-Forwarded-Proto: ${proto}`]);
      expect(r.status, proto).toBe(400);
      expect(JSON.parse(r.body.toString('utf8')).error.code).toBe('IQP_E_INVALID_HOST');
    }
    const r = await get('/v1/packs/host.pack/1.0.0/manifest', 'ok.example', ['X-Forwarded-Proto: https, http']);
    expect(JSON.parse(r.body.toString('utf8')).download_url).toMatch(/^https:\/\/ok\.example\//);
  });

  it('X-Forwarded-Proto is not believed from a peer trust_proxy does not name (by default, none)', async () => {
    for (const trustProxy of [undefined, false, ['10.0.0.0/8', '::2']] as const) {
      const other = await startRegistry({ keys: [key], ...(trustProxy === undefined ? {} : { config: { trustProxy } }) });
      try {
        expect((await upload(other.url, other.publisher, pack.path)).status).toBe(201);
        for (const proto of ['https', 'javascript']) {
          const r = await rawRequest(other.url, ['GET /v1/packs/host.pack/1.0.0/manifest HTTP/1.1', 'Host: ok.example', `X-Forwarded-Proto: ${proto}`].join('\r\n'));
          expect(r.status, `${JSON.stringify(trustProxy)} ${proto}`).toBe(200);
          expect(JSON.parse(r.body.toString('utf8')).download_url, JSON.stringify(trustProxy)).toMatch(/^http:\/\/ok\.example\//);
        }
      } finally {
        await other.close();
      }
    }
  });

  it('a hop count or an address list naming the peer trusts it', async () => {
    for (const trustProxy of [1, ['127.0.0.1'], ['10.0.0.0/8', '127.0.0.0/8']] as const) {
      const other = await startRegistry({ keys: [key], config: { trustProxy } });
      try {
        expect((await upload(other.url, other.publisher, pack.path)).status).toBe(201);
        const r = await rawRequest(other.url, ['GET /v1/packs/host.pack/1.0.0/manifest HTTP/1.1', 'Host: ok.example', 'X-Forwarded-Proto: https'].join('\r\n'));
        expect(JSON.parse(r.body.toString('utf8')).download_url, JSON.stringify(trustProxy)).toMatch(/^https:\/\/ok\.example\//);
      } finally {
        await other.close();
      }
    }
  });

  it('publishing or deprecating with a bad Host writes nothing', async () => {
    const other = await startRegistry({ keys: [key] });
    try {
      const bytes = readFileSync(pack.path);
      const put = await rawRequest(
        other.url,
        ['PUT /v1/admin/packs HTTP/1.1', 'Host: "><b>', `Authorization: Bearer ${other.publisher}`, 'Content-Type: application/octet-stream', `Content-Length: ${bytes.length}`].join('\r\n'),
        bytes,
      );
      expect(put.status).toBe(400);
      expect(JSON.parse(put.body.toString('utf8')).error.code).toBe('IQP_E_INVALID_HOST');
      expect(packRows(other.dataDir)).toEqual([]);
      expect(blobFiles(other.dataDir)).toEqual([]);

      expect((await upload(other.url, other.publisher, pack.path)).status).toBe(201);
      const body = Buffer.from(JSON.stringify({ message: 'gone' }));
      const dep = await rawRequest(
        other.url,
        ['POST /v1/admin/packs/host.pack/1.0.0/deprecate HTTP/1.1', 'Host: "><b>', `Authorization: Bearer ${other.publisher}`, 'Content-Type: application/json', `Content-Length: ${body.length}`].join('\r\n'),
        body,
      );
      expect(dep.status).toBe(400);
      expect((await call(other.url, '/v1/packs/host.pack/1.0.0/manifest')).json().status, 'not deprecated').toBe('published');
    } finally {
      await other.close();
    }
  });
});

describe('with public_url', () => {
  it('links come from public_url whatever the Host says', async () => {
    const other = await startRegistry({ keys: [key], config: { publicUrl: 'https://cdn.example.com/registry' } });
    try {
      expect((await upload(other.url, other.publisher, pack.path)).status).toBe(201);
      const r = await rawRequest(other.url, ['GET /v1/packs/host.pack/1.0.0/manifest HTTP/1.1', 'Host: "><script>'].join('\r\n'));
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body.toString('utf8')).download_url).toBe('https://cdn.example.com/registry/v1/packs/host.pack/download?version=1.0.0');
    } finally {
      await other.close();
    }
  });
});
