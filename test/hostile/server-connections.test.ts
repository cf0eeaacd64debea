/**
 * Slow and idle clients cannot hold the registry: headers and request bodies have deadlines, an
 * upload is cut only when it stops sending, refused uploads lose their connection, and uploads and
 * connections are capped. Timeouts are set small here and every wait is on the socket closing.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobFiles, buildTemplatePack, type BuiltPack, call, newKey, openRequest, packRows, startRegistry, tempDir, type TestKey, type TestRegistry, tmpFiles, until, upload } from '../server/helpers.js';
import { head, slowClient } from './server-sockets.js';

let key: TestKey;
let pack: BuiltPack;
let packBytes: Buffer;

beforeAll(async () => {
  key = newKey();
  pack = await buildTemplatePack(tempDir('iqp-hostile-conn-'), key, { authored: { package_id: 'slow.pack', version: '1.0.0' } });
  packBytes = readFileSync(pack.path);
});

function nothingWritten(reg: TestRegistry): void {
  expect(tmpFiles(reg.dataDir), 'no staged upload left').toEqual([]);
  expect(blobFiles(reg.dataDir), 'no blob').toEqual([]);
  expect(packRows(reg.dataDir), 'no row').toEqual([]);
}

function expectTimedOut(r: Awaited<ReturnType<typeof slowClient>['closed']>, what: string): void {
  expect(r, `${what}: an answer before the close`).not.toBeNull();
  expect(r!.status, what).toBe(408);
  expect(r!.headers['connection'], what).toBe('close');
  expect(r!.headers['content-type'], what).toMatch(/^application\/json/);
  expect(JSON.parse(r!.body.toString('utf8')).error.code, what).toBe('IQP_E_REQUEST_TIMEOUT');
}

describe('deadlines', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ keys: [key], config: { headersTimeoutMs: 300, requestTimeoutMs: 400, uploadIdleTimeoutMs: 1500 } });
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('a client that sends its headers slowly is cut at headers_timeout_ms with 408 IQP_E_REQUEST_TIMEOUT', async () => {
    const c = slowClient(reg.url, 'GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ', { everyMs: 20 });
    expectTimedOut(await c.closed, 'slow headers');
  });

  it('a body trickled to any route that is not an upload is cut at request_timeout_ms', async () => {
    const huge = 100 * 1024 * 1024;
    for (const [line, headers, body] of [
      ['POST /v1/admin/keys HTTP/1.1', { Authorization: `Bearer ${reg.admin}`, 'Content-Type': 'application/json', 'Content-Length': huge }],
      ['POST /v1/admin/packs/slow.pack/1.0.0/deprecate HTTP/1.1', { Authorization: `Bearer ${reg.publisher}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }, Buffer.from('ffffff\r\n')],
      // Answered at once from the cache or the route; the body that follows must not keep the socket.
      ['GET /v1/keys HTTP/1.1', { 'Content-Length': huge }],
    ] as const) {
      const c = slowClient(reg.url, head(reg.url, line, headers), { everyMs: 20, ...(body ? { body } : {}) });
      const r = await c.closed;
      if (line.startsWith('GET')) expect(r?.status, line).toBe(200);
      else expectTimedOut(r, line);
    }
    expect(reg.logs.filter((l) => l['level'] === 'error'), 'a slow client is not a server fault').toEqual([]);
    nothingWritten(reg);
  });

  it('an upload that stops sending is cut at upload_idle_timeout_ms, leaving nothing behind', async () => {
    const c = slowClient(
      reg.url,
      head(reg.url, 'PUT /v1/admin/packs HTTP/1.1', { Authorization: `Bearer ${reg.publisher}`, 'Content-Type': 'application/octet-stream', 'Content-Length': packBytes.length }),
      { everyMs: 0 },
    );
    c.socket.write(packBytes.subarray(0, Math.floor(packBytes.length / 2)));
    expectTimedOut(await c.closed, 'stalled upload');
    expect(await until(() => tmpFiles(reg.dataDir).length === 0, 5000)).toBe(true);
    nothingWritten(reg);
  });

  it('an upload that keeps sending is never cut, though it outlives the request timeout', async () => {
    const uploading = slowClient(
      reg.url,
      head(reg.url, 'PUT /v1/admin/packs HTTP/1.1', { Authorization: `Bearer ${reg.publisher}`, 'Content-Type': 'application/octet-stream', 'Content-Length': packBytes.length, Connection: 'close' }),
      { everyMs: 20, body: packBytes },
    );
    // A request started after the upload, cut by the request timeout: once it is gone, the upload
    // has been running longer than request_timeout_ms.
    const marker = slowClient(reg.url, head(reg.url, 'POST /v1/admin/keys HTTP/1.1', { Authorization: `Bearer ${reg.admin}`, 'Content-Type': 'application/json', 'Content-Length': 100_000 }), { everyMs: 20 });
    expectTimedOut(await marker.closed, 'marker');
    expect(uploading.socket.destroyed, 'the upload still has its connection').toBe(false);
    const sent = uploading.sent();
    expect(sent).toBeLessThan(packBytes.length);
    uploading.finish(packBytes.subarray(sent));
    const r = await uploading.closed;
    expect(r?.status, r?.body.toString('utf8')).toBe(201);
    expect(packRows(reg.dataDir).map((p) => p.sha256)).toEqual([pack.sha256]);
  });
});

describe('refused uploads and caps', () => {
  it('an upload refused for its token (401, 403) ends the connection instead of reading a trickled body', async () => {
    const reg = await startRegistry({ keys: [key] });
    try {
      for (const token of [null, 'iqp_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']) {
        const c = slowClient(
          reg.url,
          head(reg.url, 'PUT /v1/admin/packs HTTP/1.1', { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/octet-stream', 'Content-Length': 100 * 1024 * 1024 }),
          { everyMs: 20 },
        );
        // The default request timeout is a minute: this close is the refusal's.
        const r = await c.closed;
        expect(r?.status).toBe(401);
        expect(r?.headers['connection']).toBe('close');
        expect(JSON.parse(r!.body.toString('utf8')).error.code).toBe('IQP_E_UNAUTHORIZED');
      }
      nothingWritten(reg);
    } finally {
      await reg.close();
    }
  });

  it('past max_concurrent_uploads an upload is refused with 503 IQP_E_BUSY and Retry-After, then accepted once a slot is free', async () => {
    const reg = await startRegistry({ keys: [key], config: { maxConcurrentUploads: 1 } });
    try {
      const first = slowClient(
        reg.url,
        head(reg.url, 'PUT /v1/admin/packs HTTP/1.1', { Authorization: `Bearer ${reg.publisher}`, 'Content-Type': 'application/octet-stream', 'Content-Length': packBytes.length, Connection: 'close' }),
        { everyMs: 0 },
      );
      first.socket.write(packBytes.subarray(0, 100));
      expect(await until(() => tmpFiles(reg.dataDir).some((f) => f.startsWith('upload-')), 5000), 'the first upload is being staged').toBe(true);
      const staged = tmpFiles(reg.dataDir);

      const { socket, response } = openRequest(
        reg.url,
        head(reg.url, 'PUT /v1/admin/packs HTTP/1.1', { Authorization: `Bearer ${reg.publisher}`, 'Content-Type': 'application/octet-stream', 'Content-Length': packBytes.length }),
      );
      const busy = await response;
      socket.destroy();
      expect(busy.status).toBe(503);
      expect(JSON.parse(busy.body.toString('utf8')).error.code).toBe('IQP_E_BUSY');
      expect(busy.headers['retry-after']).toMatch(/^\d+$/);
      expect(busy.headers['connection']).toBe('close');
      expect(tmpFiles(reg.dataDir), 'only the first upload is staged').toEqual(staged);
      expect(packRows(reg.dataDir)).toEqual([]);

      first.finish(packBytes.subarray(100));
      expect((await first.closed)?.status).toBe(201);
      const other = await buildTemplatePack(tempDir('iqp-hostile-conn-'), key, { authored: { package_id: 'slow.pack', version: '2.0.0' } });
      expect((await upload(reg.url, reg.publisher, other.path)).status, 'the slot was given back').toBe(201);
    } finally {
      await reg.close();
    }
  });

  it('past max_connections a new connection is closed at once; the ones open keep working', async () => {
    const reg = await startRegistry({ config: { maxConnections: 2 } });
    try {
      const held = [openRequest(reg.url, head(reg.url, 'GET /v1/health HTTP/1.1')), openRequest(reg.url, head(reg.url, 'GET /v1/health HTTP/1.1'))];
      for (const h of held) expect((await h.response).status).toBe(200);
      const third = slowClient(reg.url, head(reg.url, 'GET /v1/health HTTP/1.1'), { everyMs: 0 });
      expect(await third.closed, 'dropped without an answer').toBeNull();
      held[0]!.socket.destroy();
      expect(await until(async () => (await new Promise<number>((r) => reg.running.server.getConnections((_e, n) => r(n)))) < 2, 5000)).toBe(true);
      expect((await call(reg.url, '/v1/health')).status).toBe(200);
      held[1]!.socket.destroy();
    } finally {
      await reg.close();
    }
  });
});
