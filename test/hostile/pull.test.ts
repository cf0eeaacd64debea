/**
 * `iqp pull` against a malicious registry: hand-made listings, manifests and bodies from a plain
 * HTTP server, and the real bin/iqp. Every refusal leaves nothing behind: no file outside --out,
 * no .part and no pack inside it; and the pull runs with a heap too small to buffer a large answer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listTree, type RunResult, tempDir } from '../e2e/helpers.js';
import { drip, fakeRegistry, HEAP_MB, manifestAnswer, pull, pump, sendJson } from './pull-registry.js';

const ID = 'demo.pack';
const MiB = 1024 * 1024;
const FILE = randomBytes(4096);
const SHA = createHash('sha256').update(FILE).digest('hex');
const OUT = 'a/b/c/out';
/** For tests that run the CLI once per case. */
const LOOP_TIMEOUT_MS = 180_000;

/** A work folder with --out nested deep enough that `../` in a file name stays inside it, and a file to keep. */
function layout(): { work: string; out: string; before: string[] } {
  const work = tempDir('iqp-pull-hostile-');
  mkdirSync(join(work, 'a', 'b', 'c'), { recursive: true });
  writeFileSync(join(work, 'a', 'keep.txt'), 'keep');
  return { work, out: join(work, OUT), before: outside(work) };
}

const outside = (work: string) => listTree(work).filter((p) => !p.startsWith(`${OUT}/`));
const inside = (out: string) => (existsSync(out) ? listTree(out) : []);
const sizeOf = (path: string) => (existsSync(path) ? statSync(path).size : -1);

function expectError(r: RunResult, code: string, exit: number): void {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.json().error?.code, r.stdout + r.stderr).toBe(code);
  expect(r.code).toBe(exit);
}

const summary = (version: unknown) => ({
  version,
  status: 'published',
  deprecated_message: null,
  published_at: '2026-01-01T00:00:00Z',
  min_app_version: '1.0.0',
  size_bytes: FILE.length,
  sha256: SHA,
  signer_key_id: '0123456789ABCDEF',
  manifest_url: '/x',
  download_url: '/x',
});

describe('listed versions that are not semver', () => {
  it('are ignored, so a version such as ../../../x never becomes a path', async () => {
    // --out is four folders deep: these climb out of it but stay inside the test's folder.
    for (const versions of [['../../../x'], ['../../../../y', '1.0.0/../../z', 'v1.0.0', '1.0.0 ', '01.0.0', '99999999999999999999.0.0', '1.0.0\u0000', 7, null]]) {
      const { work, out, before } = layout();
      // Were a version taken, its download would stop half-way and leave its .part wherever the name points.
      const registry = await fakeRegistry((req, res, r) => {
        const url = req.url!;
        if (url === `/v1/packs/${ID}`) return sendJson(res, { package_id: ID, versions: versions.map(summary) });
        if (url === '/v1/keys') return sendJson(res, { keys: [] });
        if (url.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, 'x', { size_bytes: FILE.length, sha256: SHA }));
        if (r.hits.filter((h) => h.includes('/download')).length === 1) {
          res.writeHead(200, { 'content-length': String(FILE.length) });
          return pump(res, r, FILE, 1000, 'cut');
        }
        sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'gone' } }, 404);
      });
      const r = await pull(registry, [ID, '--out', OUT], work);
      expect(outside(work)).toEqual(before);
      expect(inside(out)).toEqual([]);
      expect(registry.hits).toEqual([`GET /v1/packs/${ID}`]);
      expectError(r, 'IQP_E_NOT_FOUND', 3);
      expect(r.json().error.details).toMatchObject({ package_id: ID, ignored_versions: versions.length });
    }
  }, LOOP_TIMEOUT_MS);
});

describe('sizes', () => {
  it('refuses an announced size over the limit before downloading a byte: IQP_E_RESPONSE_TOO_LARGE', async () => {
    const cases = [
      { size: 1e12, args: [] as string[] },
      { size: 40 * MiB, args: ['--max-size', String(MiB)] },
    ];
    for (const { size, args } of cases) {
      const { work, out, before } = layout();
      const registry = await fakeRegistry((req, res, r) => {
        if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: size, sha256: SHA }));
        if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
        if (req.url!.includes('/download') && r.hits.filter((h) => h.includes('/download')).length === 1) {
          // An endless body, cut after 32 MiB so that a client that reads it fails too, with its part left.
          res.writeHead(200);
          return pump(res, r, randomBytes(MiB), 32 * MiB, 'cut');
        }
        sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'gone' } }, 404);
      });
      const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT, ...args], work);
      expectError(r, 'IQP_E_RESPONSE_TOO_LARGE', 3);
      expect(registry.hits.filter((h) => h.includes('/download'))).toEqual([]);
      expect(registry.sent()).toBe(0);
      expect(outside(work)).toEqual(before);
      expect(inside(out)).toEqual([]);
    }
  }, LOOP_TIMEOUT_MS);

  it('stops reading a body the moment it passes the announced size, and deletes the part', async () => {
    for (const headers of [{}, { 'content-length': String(1e12) }]) {
      const { work, out, before } = layout();
      const registry = await fakeRegistry((req, res, r) => {
        if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: FILE.length, sha256: SHA }));
        if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
        res.writeHead(200, headers);
        pump(res, r, FILE, 256 * MiB, 'end');
      });
      const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work);
      expectError(r, 'IQP_E_DOWNLOAD_MISMATCH', 1);
      // What the sockets buffer, not what the body would have been.
      expect(registry.sent()).toBeLessThan(32 * MiB);
      expect(outside(work)).toEqual(before);
      expect(inside(out)).toEqual([]);
    }
  }, LOOP_TIMEOUT_MS);
});

describe('JSON answers', () => {
  const huge = Buffer.from(`${JSON.stringify(summary('1.0.0'))},`.repeat(2000));
  const hugeTotal = 100 * MiB;

  it(`caps a listing streamed without Content-Length (the pull runs in a ${HEAP_MB} MiB heap)`, async () => {
    const { work, out, before } = layout();
    const registry = await fakeRegistry((_req, res, r) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"package_id":"${ID}","versions":[`);
      pump(res, r, huge, hugeTotal, 'end');
    });
    const r = await pull(registry, [ID, '--out', OUT], work);
    expectError(r, 'IQP_E_RESPONSE_TOO_LARGE', 3);
    expect(r.json().error.details).toMatchObject({ limit: 64 * MiB });
    expect(registry.hits).toEqual([`GET /v1/packs/${ID}`]);
    expect(registry.sent()).toBeLessThan(hugeTotal);
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([]);
  });

  it('refuses a manifest whose Content-Length is over the cap without reading it', async () => {
    const { work, out, before } = layout();
    const registry = await fakeRegistry((_req, res, r) => {
      // 600 MB announced, 1 MiB sent, then nothing: only a client that believes the header gets past this.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(600_000_000) });
      res.write('{"package_id":"demo.pack","files":[');
      pump(res, r, huge, MiB, 'end');
    });
    const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work, 30_000);
    expectError(r, 'IQP_E_RESPONSE_TOO_LARGE', 3);
    expect(r.json().error.details).toMatchObject({ limit: 64 * MiB, content_length: 600_000_000 });
    expect(registry.hits).toEqual([`GET /v1/packs/${ID}/1.0.0/manifest`]);
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([]);
  });
});

describe('a JSON answer that never ends', () => {
  it('is cut at json_timeout_ms however steadily it drips, retried, then IQP_E_NETWORK with nothing written', async () => {
    const { work, out, before } = layout();
    const registry = await fakeRegistry((_req, res, r) => drip(res, r, `{"package_id":"${ID}"`));
    // Without a deadline the pull would outlive this process timeout (the gap between chunks is 5 ms).
    const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work, 20_000, { IQP_JSON_TIMEOUT_MS: '200' });
    expectError(r, 'IQP_E_NETWORK', 3);
    expect(r.json().error.message).toContain('json_timeout_ms');
    expect(r.json().error.details).toMatchObject({ attempts: 5 });
    expect(registry.hits).toEqual(Array(5).fill(`GET /v1/packs/${ID}/1.0.0/manifest`));
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([]);
  });
});

describe('resuming', () => {
  const part = (out: string) => join(out, `.${ID}-1.0.0.iqp.part`);

  it('does not trust a Content-Range other than the bytes asked for: starts once from zero, then deletes the part', async () => {
    const answers = [
      { 'content-range': `bytes 500-${FILE.length - 1}/${FILE.length}` },
      { 'content-range': `bytes 1000-${FILE.length - 1}/${FILE.length * 2}` },
      { 'content-range': `bytes 1000-2047/${FILE.length}` },
      { 'content-range': `bytes */${FILE.length}` },
      {},
    ];
    for (const headers of answers) {
      const { work, out, before } = layout();
      mkdirSync(out);
      writeFileSync(part(out), FILE.subarray(0, 1000));
      const registry = await fakeRegistry((req, res, r) => {
        if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: FILE.length, sha256: SHA }));
        if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
        res.writeHead(206, { ...headers, etag: `"${SHA}"` });
        pump(res, r, FILE.subarray(500), FILE.length - 500, 'end');
      });
      const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work);
      expect(inside(out), JSON.stringify(headers) + r.stdout + r.stderr + registry.hits.join('\n')).toEqual([]);
      expect(outside(work)).toEqual(before);
      expectError(r, 'IQP_E_REGISTRY', 3);
      expect(r.json().error.message, JSON.stringify(headers)).toContain('Content-Range');
      expect(registry.hits.filter((h) => h.includes('/download'))).toEqual([
        `GET /v1/packs/${ID}/download?version=1.0.0 range=bytes=1000-`,
        `GET /v1/packs/${ID}/download?version=1.0.0`,
      ]);
    }
  }, LOOP_TIMEOUT_MS);

  it('asks for the rest when a body sent without Content-Length ends short, keeping what arrived', async () => {
    const { work, out } = layout();
    const half = FILE.length / 2;
    const registry = await fakeRegistry((req, res, r) => {
      if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: FILE.length, sha256: SHA }));
      if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
      if (!req.headers.range) {
        // Chunked, and ended cleanly after half the file: as a proxy that lost its upstream may.
        res.writeHead(200, { etag: `"${SHA}"` });
        r.count(half);
        return res.end(FILE.subarray(0, half));
      }
      res.writeHead(206, { 'content-range': `bytes ${half}-${FILE.length - 1}/${FILE.length}`, 'content-length': String(FILE.length - half), etag: `"${SHA}"` });
      r.count(FILE.length - half);
      res.end(FILE.subarray(half));
    });
    const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work);
    expect(registry.hits.filter((h) => h.includes('/download')), r.stdout + r.stderr).toEqual([
      `GET /v1/packs/${ID}/download?version=1.0.0`,
      `GET /v1/packs/${ID}/download?version=1.0.0 range=bytes=${half}-`,
    ]);
    // Every byte arrived and matched the announced SHA-256; the bytes are no pack, so the pack check refuses them.
    expectError(r, 'IQP_E_PACK_COMPRESSION', 1);
    expect(registry.sent()).toBe(FILE.length);
    expect(inside(out)).toEqual([]);
  });

  it('gives up after the usual attempts when every answer starts from zero and stops before the furthest point reached', async () => {
    const { work, out, before } = layout();
    // Were the retry count reset each time the part's size changed, this would go on for ever: the
    // registry stops after 40 downloads only so that a client caught in it ends, with another error.
    const registry = await fakeRegistry((req, res, r) => {
      if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: FILE.length, sha256: SHA }));
      if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
      const n = r.hits.filter((h) => h.includes('/download')).length;
      if (n > 40) return sendJson(res, { error: { code: 'IQP_E_NOT_FOUND', message: 'gone' } }, 404);
      // The whole file announced, 2 then 1 then 2… bytes of it sent, and the connection cut once they are in the part.
      const bytes = n % 2 === 1 ? 2 : 1;
      res.writeHead(200, { 'content-length': String(FILE.length), etag: `"${SHA}"` });
      res.write(FILE.subarray(0, bytes));
      r.count(bytes);
      // Cut once the client has written them to the part: on the event of that write, not after a wait.
      // The folder is watched before the part is looked at, so a write in between is not missed.
      mkdirSync(out, { recursive: true });
      const watcher = watch(out, () => cutWhenWritten());
      const cutWhenWritten = (): void => {
        if (res.destroyed || sizeOf(part(out)) !== bytes) return;
        watcher.close();
        res.socket?.end();
      };
      res.on('close', () => watcher.close());
      cutWhenWritten();
    });
    const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work);
    expectError(r, 'IQP_E_NETWORK', 3);
    expect(r.json().error.details).toMatchObject({ attempts: 5 });
    expect(registry.hits.filter((h) => h.includes('/download'))).toHaveLength(5);
    // As after any network failure, the part stays to resume from: the last answer's two bytes.
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([`.${ID}-1.0.0.iqp.part`]);
    expect(readFileSync(part(out)).equals(FILE.subarray(0, 2))).toBe(true);
  });

  it('checks the bytes, not the ETag: a registry that ignores If-Range and sends another file fails, and the part goes', async () => {
    const { work, out, before } = layout();
    mkdirSync(out);
    writeFileSync(part(out), FILE.subarray(0, 1000));
    const other = randomBytes(FILE.length);
    const registry = await fakeRegistry((req, res, r) => {
      if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: FILE.length, sha256: SHA }));
      if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
      const from = req.headers.range ? 1000 : 0;
      res.writeHead(from ? 206 : 200, { etag: `"${SHA}"`, ...(from ? { 'content-range': `bytes ${from}-${FILE.length - 1}/${FILE.length}` } : {}) });
      pump(res, r, other.subarray(from), FILE.length - from, 'end');
    });
    const r = await pull(registry, [`${ID}@1.0.0`, '--out', OUT], work);
    expectError(r, 'IQP_E_DOWNLOAD_MISMATCH', 1);
    expect(registry.hits.filter((h) => h.includes('/download'))).toHaveLength(2);
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([]);
  });
});

describe('redirects', () => {
  it('are not followed for the listing: IQP_E_REGISTRY, and the other host hears nothing', async () => {
    const elsewhere = await fakeRegistry((_req, res) => res.writeHead(200).end(FILE));
    const { work, out, before } = layout();
    const registry = await fakeRegistry((_req, res) => res.writeHead(302, { location: `${elsewhere.url}/file` }).end());
    const r = await pull(registry, [ID, '--out', OUT], work);
    expectError(r, 'IQP_E_REGISTRY', 3);
    expect(r.json().error.message).toContain('HTTP 302');
    expect(elsewhere.hits).toEqual([]);
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([]);
  });

  it('are followed for the download (object storage, a CDN), but other bytes there fail the sha256 check and nothing is kept', async () => {
    const other = randomBytes(FILE.length);
    const auth: (string | undefined)[] = [];
    const elsewhere = await fakeRegistry((req, res) => {
      auth.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': String(other.length) }).end(other);
    });
    const { work, out, before } = layout();
    const registry = await fakeRegistry((req, res) => {
      if (req.url === `/v1/packs/${ID}`) return sendJson(res, { package_id: ID, versions: [summary('1.0.0')] });
      if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: FILE.length, sha256: SHA }));
      if (req.url === '/v1/keys') return sendJson(res, { keys: [] });
      res.writeHead(302, { location: `${elsewhere.url}/bucket/sha256/${SHA}` }).end();
    });
    const r = await pull(registry, [ID, '--out', OUT], work);
    expectError(r, 'IQP_E_DOWNLOAD_MISMATCH', 1);
    expect(elsewhere.hits).toEqual([`GET /bucket/sha256/${SHA}`]);
    expect(auth, 'no token goes to another host').toEqual([undefined]);
    expect(outside(work)).toEqual(before);
    expect(inside(out)).toEqual([]);
  });
});
