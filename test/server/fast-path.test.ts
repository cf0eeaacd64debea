/**
 * The fast path (server/http/fast-path.ts) answers cached JSON and pack downloads before Express.
 * It must answer byte for byte as the Express routes do: every case here is asked in a form only
 * Express takes (an extra query parameter, or a cold cache) and in the plain form the fast path
 * takes, and the two responses must be identical but for the Date header; the metrics must count
 * each request once, under the same route.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildRandomPack, buildTemplatePack, type BuiltPack, call, newKey, rawGet, type RawResponse, startRegistry, tempDir, type TestRegistry, upload } from './helpers.js';

let reg: TestRegistry;
let small: BuiltPack;
let big: BuiltPack;

beforeAll(async () => {
  const key = newKey();
  const work = tempDir('iqp-fast-path-packs-');
  reg = await startRegistry({ keys: [key] });
  [small, big] = await Promise.all([
    buildTemplatePack(work, key, { authored: { package_id: 'fast.pack', version: '1.0.0' } }),
    // Over 2 MiB: the multi-chunk sender, across chunk boundaries.
    buildRandomPack(work, key, { mib: 3, package_id: 'fast.big', version: '2.0.0' }),
  ]);
  for (const p of [small, big]) expect((await upload(reg.url, reg.publisher, p.path)).status).toBe(201);
});

afterAll(async () => {
  await reg?.close();
});

/** Status line, headers (Date left out) and body, as received. */
function shape(r: RawResponse): { head: string[]; body: Buffer } {
  const end = r.raw.indexOf('\r\n\r\n');
  const head = r.raw
    .subarray(0, end)
    .toString('latin1')
    .split('\r\n')
    .filter((l) => !/^date:/i.test(l));
  return { head, body: r.body };
}

function expectSame(viaExpress: RawResponse, fast: RawResponse, what: string): void {
  const a = shape(viaExpress);
  const b = shape(fast);
  expect(b.head, what).toEqual(a.head);
  expect(b.body.equals(a.body), `${what}: same body (${a.body.length} vs ${b.body.length} bytes)`).toBe(true);
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function metricsText(): Promise<string> {
  return (await call(reg.url, '/v1/metrics')).body.toString('utf8');
}

describe('pack downloads', () => {
  const cases: [string, string[]][] = [
    ['the whole pack', []],
    ['the first byte', ['Range: bytes=0-0']],
    ['an open-ended range', ['Range: bytes=100-']],
    ['a suffix', ['Range: bytes=-10']],
    ['a multi-range (served whole)', ['Range: bytes=0-1,5-6']],
    ['a range beyond the end (416)', ['Range: bytes=999999999-']],
    ['If-None-Match with the ETag (304)', ['If-None-Match: "{etag}"']],
    ['If-Range with another validator (whole)', ['Range: bytes=0-10', 'If-Range: "other"']],
    ['If-Range with the ETag (partial)', ['Range: bytes=0-10', 'If-Range: "{etag}"']],
    ['a range across chunk boundaries', ['Range: bytes=1048000-2100000']],
  ];

  for (const method of ['GET', 'HEAD']) {
    for (const [what, lines] of cases) {
      it(`${method} ${what}: the same answer both ways, and the fast one reads no database`, async () => {
        for (const [pack, path] of [
          [small, `/v1/packs/fast.pack/download?version=1.0.0`],
          [small, `/v1/packs/fast.pack/download`],
          [big, `/v1/packs/fast.big/download?version=2.0.0`],
        ] as const) {
          const headers = lines.map((l) => l.replace('{etag}', pack.sha256));
          const expressPath = `${path}${path.includes('?') ? '&' : '?'}via=express`;
          // The first plain request resolves the record through Express; from then on it is fast.
          await rawGet(reg.url, path, [], 'HEAD');
          const resolve = vi.spyOn(reg.running.registry.services.packs, 'resolve');
          try {
            const fast = await rawGet(reg.url, path, headers, method);
            const resolvedFast = resolve.mock.calls.length;
            const viaExpress = await rawGet(reg.url, expressPath, headers, method);
            expectSame(viaExpress, fast, `${method} ${path} ${headers.join(' ')}`);
            // A 416 is handed to Express by the fast path too (errors come from one place).
            if (fast.status !== 416) expect(resolvedFast, 'the plain form never reached the route').toBe(0);
            expect(resolve.mock.calls.length, 'the other form went through the route').toBeGreaterThan(resolvedFast);
          } finally {
            resolve.mockRestore();
          }
        }
      });
    }
  }

  it('counts fast downloads in the request and byte metrics, once each', async () => {
    const path = `/v1/packs/fast.big/download?version=2.0.0`;
    await rawGet(reg.url, path, [], 'HEAD');
    const labels = 'method="GET",route="/v1/packs/:id/download",status="206"';
    const before = await metricsText();
    for (let i = 0; i < 3; i++) expect((await rawGet(reg.url, path, ['Range: bytes=10-1048585'])).status).toBe(206);
    const after = await metricsText();
    expect(metric(after, 'iqp_http_requests_total', labels) - metric(before, 'iqp_http_requests_total', labels)).toBe(3);
    const bytes = (t: string) => Number(/^iqp_download_bytes_total (\d+)/m.exec(t)?.[1] ?? 0);
    expect(bytes(after) - bytes(before)).toBe(3 * 1048576);
  });
});

describe('cached JSON', () => {
  const paths = ['/v1/packs/available', '/v1/packs/available?app_version=1.0.0', '/v1/packs/fast.pack', '/v1/packs/fast.big/2.0.0/manifest', '/v1/keys', '/v1/packs?limit=1'];

  for (const path of paths) {
    it(`${path}: the cached answer (fast) is the computed one (Express), for GET, HEAD and If-None-Match`, async () => {
      // A write empties the cache, so the next request is computed by the route.
      expect((await call(reg.url, '/v1/admin/packs/fast.pack/1.0.0/deprecate', { method: 'POST', token: reg.admin, json: { message: '' } })).status).toBe(200);
      const computed = await rawGet(reg.url, path);
      expect(computed.status).toBe(200);
      expectSame(computed, await rawGet(reg.url, path), `GET ${path}`);
      const etag = computed.headers['etag']!;
      for (const [method, lines] of [
        ['HEAD', []],
        ['GET', [`If-None-Match: ${etag}`]],
        ['GET', ['If-None-Match: "other"']],
      ] as const) {
        expect((await call(reg.url, '/v1/admin/packs/fast.pack/1.0.0/deprecate', { method: 'POST', token: reg.admin, json: { message: '' } })).status).toBe(200);
        await rawGet(reg.url, '/v1/health'); // not cached: a request in between changes nothing
        const first = await rawGet(reg.url, path, [...lines], method);
        expectSame(first, await rawGet(reg.url, path, [...lines], method), `${method} ${path} ${lines.join(' ')}`);
      }
    });
  }

  it('counts cached answers under their route', async () => {
    const labels = 'method="GET",route="/v1/packs/available",status="200"';
    await rawGet(reg.url, '/v1/packs/available');
    const before = await metricsText();
    for (let i = 0; i < 4; i++) await rawGet(reg.url, '/v1/packs/available');
    expect(metric(await metricsText(), 'iqp_http_requests_total', labels) - metric(before, 'iqp_http_requests_total', labels)).toBe(4);
  });
});

describe('faults', () => {
  it('a pack whose blob has gone answers the same 5xx on the plain URL as on any other, counted once', async () => {
    const key = newKey();
    const other = await startRegistry({ keys: [key] });
    try {
      const pack = await buildTemplatePack(tempDir('iqp-fast-path-gone-'), key, { authored: { package_id: 'fast.gone', version: '1.0.0' } });
      expect((await upload(other.url, other.publisher, pack.path)).status).toBe(201);
      const path = '/v1/packs/fast.gone/download?version=1.0.0';
      expect((await rawGet(other.url, path)).status).toBe(200); // the record is now resolved: the fast path takes the plain URL
      rmSync(join(other.dataDir, 'blobs', 'sha256', pack.sha256.slice(0, 2), pack.sha256));
      // Every GET answered 503, whatever its route label (Express labels errors from inside a router without the mount path).
      const count = async () =>
        (await call(other.url, '/v1/metrics')).body
          .toString('utf8')
          .split('\n')
          .filter((l) => l.startsWith('iqp_http_requests_total{method="GET",') && l.includes('status="503"'))
          .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      const before = await count();
      const plain = await rawGet(other.url, path);
      const viaExpress = await rawGet(other.url, `${path}&via=express`);
      expect(plain.status).toBe(503);
      expectSame(viaExpress, plain, 'missing blob');
      expect((await count()) - before).toBe(2);
    } finally {
      await other.close();
    }
  });
});
