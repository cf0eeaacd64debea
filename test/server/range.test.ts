/**
 * GET/HEAD /v1/packs/{id}/download against RFC 9110 §13-14, byte for byte over raw sockets: exact
 * request headers in, every status line, header and body byte checked out. Includes a fuzz loop of
 * odd Range headers and a file-descriptor count across many abandoned downloads.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildRandomPack,
  buildTemplatePack,
  type BuiltPack,
  newKey,
  openFds,
  rawGet,
  type RawResponse,
  sha256,
  startRegistry,
  tempDir,
  type TestRegistry,
  until,
  upload,
} from './helpers.js';

let reg: TestRegistry;
let small: BuiltPack;
let older: BuiltPack;
let big: BuiltPack;
let bytes: Buffer;
let size: number;
let path: string;
let etag: string;

beforeAll(async () => {
  const key = newKey();
  const work = tempDir('iqp-range-packs-');
  reg = await startRegistry({ keys: [key] });
  [older, small, big] = await Promise.all([
    buildTemplatePack(work, key, { authored: { package_id: 'range.pack', version: '1.0.0' } }),
    buildTemplatePack(work, key, { authored: { package_id: 'range.pack', version: '1.1.0' } }),
    buildRandomPack(work, key, { mib: 6, package_id: 'range.big', version: '1.0.0' }),
  ]);
  for (const p of [older, small, big]) expect((await upload(reg.url, reg.publisher, p.path)).status).toBe(201);
  bytes = readFileSync(small.path);
  size = bytes.length;
  path = `/v1/packs/range.pack/download?version=1.1.0`;
  etag = `"${small.sha256}"`;
  expect(size).toBeGreaterThan(1000);
});

afterAll(async () => {
  await reg?.close();
});

const get = (headers: readonly (string | Buffer)[] = [], method = 'GET', p = path) => rawGet(reg.url, p, headers, method);

function expectFull(r: RawResponse, what = ''): void {
  expect(r.status, what).toBe(200);
  expect(r.headers['content-range'], what).toBeUndefined();
  expect(r.headers['content-length'], what).toBe(String(size));
  expect(r.body.equals(bytes), `${what}: the whole pack`).toBe(true);
}

function expectPartial(r: RawResponse, start: number, end: number, what = ''): void {
  expect(r.status, `${what}: ${r.body.toString('latin1').slice(0, 200)}`).toBe(206);
  expect(r.headers['content-range'], what).toBe(`bytes ${start}-${end}/${size}`);
  expect(r.headers['content-length'], what).toBe(String(end - start + 1));
  expect(r.headers['content-type'], what).toBe('application/vnd.iqp.pack+zstd');
  expect(r.headers['etag'], what).toBe(etag);
  expect(r.body.equals(bytes.subarray(start, end + 1)), `${what}: bytes ${start}-${end}`).toBe(true);
}

function expectUnsatisfiable(r: RawResponse, what = ''): void {
  expect(r.status, what).toBe(416);
  expect(r.headers['content-range'], what).toBe(`bytes */${size}`);
  expect(r.headers['content-type'], what).toMatch(/^application\/json/);
  expect(JSON.parse(r.body.toString('utf8')).error.code, what).toBe('IQP_E_RANGE_NOT_SATISFIABLE');
}

describe('full responses', () => {
  it('GET ?version= is 200 with the exact bytes, a strong sha256 ETag and immutable caching', async () => {
    const r = await get();
    expectFull(r);
    expect(r.headers).toMatchObject({
      'accept-ranges': 'bytes',
      etag,
      'cache-control': 'public, max-age=31536000, immutable',
      'content-type': 'application/vnd.iqp.pack+zstd',
      'content-disposition': 'attachment; filename="range.pack-1.1.0.iqp"',
      'x-iqp-version': '1.1.0',
      'x-iqp-sha256': small.sha256,
    });
    expect(Date.parse(r.headers['last-modified']!)).not.toBeNaN();
    expect(sha256(r.body)).toBe(small.sha256);
  });

  it('GET without a version serves the newest with revalidation caching (no-cache)', async () => {
    const r = await get([], 'GET', '/v1/packs/range.pack/download');
    expectFull(r);
    expect(r.headers['cache-control']).toBe('public, no-cache');
    expect(r.headers['x-iqp-version']).toBe('1.1.0');
    const old = await get([], 'GET', '/v1/packs/range.pack/download?version=1.0.0');
    expect(old.status).toBe(200);
    expect(old.body.equals(readFileSync(older.path))).toBe(true);
    expect(old.headers['etag']).toBe(`"${older.sha256}"`);
  });

  it('HEAD gives the same headers and no body', async () => {
    const full = await get();
    const head = await get([], 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    const { date: _a, ...headHeaders } = head.headers;
    const { date: _b, ...getHeaders } = full.headers;
    expect(headHeaders).toEqual(getHeaders);
    const ranged = await get(['Range: bytes=10-19'], 'HEAD');
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 10-19/${size}`);
    expect(ranged.headers['content-length']).toBe('10');
    expect(ranged.body.length).toBe(0);
  });
});

describe('single ranges', () => {
  it('serves the first byte, a middle span, an open end and a suffix', async () => {
    expectPartial(await get(['Range: bytes=0-0']), 0, 0, 'bytes=0-0');
    expectPartial(await get(['Range: bytes=10-99']), 10, 99, 'bytes=10-99');
    expectPartial(await get(['Range: bytes=100-']), 100, size - 1, 'bytes=100-');
    expectPartial(await get(['Range: bytes=-50']), size - 50, size - 1, 'bytes=-50');
    expectPartial(await get([`Range: bytes=${size - 1}-${size - 1}`]), size - 1, size - 1, 'last byte');
    expectPartial(await get([`Range: bytes=0-${size - 1}`]), 0, size - 1, 'everything, as a range');
  });

  it('clamps a suffix longer than the file and an end beyond it', async () => {
    expectPartial(await get([`Range: bytes=-${size + 100}`]), 0, size - 1, 'long suffix');
    expectPartial(await get([`Range: bytes=5-${size + 1000}`]), 5, size - 1, 'end beyond size');
    expectPartial(await get(['Range: bytes=7-99999999999999999999999']), 7, size - 1, 'end beyond any integer');
  });

  it('accepts the unit in any case and whitespace around the spec', async () => {
    expectPartial(await get(['Range: BYTES=0-3']), 0, 3, 'upper-case unit');
    expectPartial(await get(['Range: bytes = 2-4 ']), 2, 4, 'spaces');
  });

  it('answers 416 with Content-Range: bytes */size when nothing of the range exists', async () => {
    expectUnsatisfiable(await get([`Range: bytes=${size}-`]), 'bytes=size-');
    expectUnsatisfiable(await get([`Range: bytes=${size + 10}-${size + 20}`]), 'past the end');
    expectUnsatisfiable(await get(['Range: bytes=-0']), 'bytes=-0');
    const head = await get([`Range: bytes=${size}-`], 'HEAD');
    expect(head.status).toBe(416);
    expect(head.headers['content-range']).toBe(`bytes */${size}`);
    expect(head.body.length).toBe(0);
  });

  it('serves a multi-range request as the whole file (200)', async () => {
    expectFull(await get(['Range: bytes=0-1,5-6']), 'two ranges');
    expectFull(await get(['Range: bytes=0-0,-1']), 'range and suffix');
    expectFull(await get(['Range: bytes=0-10, 5-15']), 'overlapping');
  });

  it('ignores what it cannot parse (200), as RFC 9110 §14.2 allows', async () => {
    for (const h of ['Range: bytes=abc', 'Range: items=0-5', 'Range: bytes=5-2', 'Range: bytes=-', 'Range: bytes 0-5', 'Range: =0-5']) expectFull(await get([h]), h);
  });
});

describe('conditional requests', () => {
  it('If-Range with the current strong ETag applies the range; any other validator sends the whole pack', async () => {
    expectPartial(await get(['Range: bytes=0-9', `If-Range: ${etag}`]), 0, 9, 'matching If-Range');
    expectFull(await get(['Range: bytes=0-9', `If-Range: "${older.sha256}"`]), 'other ETag');
    expectFull(await get(['Range: bytes=0-9', `If-Range: W/${etag}`]), 'weak ETag');
    expectFull(await get(['Range: bytes=0-9', 'If-Range: "garbage'], 'GET'), 'broken ETag');
    const lastModified = (await get([], 'HEAD')).headers['last-modified']!;
    expectPartial(await get(['Range: bytes=0-9', `If-Range: ${lastModified}`]), 0, 9, 'matching date');
    expectFull(await get(['Range: bytes=0-9', 'If-Range: Mon, 01 Jan 2001 00:00:00 GMT']), 'older date');
    expectFull(await get([`If-Range: ${etag}`]), 'If-Range without Range');
  });

  it('If-Range that fails turns an unsatisfiable range into the whole pack', async () => {
    expectFull(await get([`Range: bytes=${size}-`, 'If-Range: "other"']), 'failed If-Range');
  });

  it('If-None-Match with the ETag answers 304 without a body, before looking at Range', async () => {
    for (const inm of [etag, `W/${etag}`, `"x", ${etag}`, '*']) {
      const r = await get([`If-None-Match: ${inm}`, 'Range: bytes=0-9']);
      expect(r.status, inm).toBe(304);
      expect(r.body.length, inm).toBe(0);
      expect(r.headers['etag']).toBe(etag);
      expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    expectFull(await get([`If-None-Match: "${older.sha256}"`]), 'other ETag');
  });
});

describe('fuzzed Range headers', () => {
  const VALUE_BYTES = [9, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
  const int = (max: number) => Math.floor(Math.random() * max);
  const num = () =>
    pick([() => String(int(size * 2)), () => String(int(20)), () => '9'.repeat(1 + int(40)), () => `-${int(100)}`, () => '0'.repeat(int(30)) + String(int(size)), () => '1e3', () => '0x10', () => ' ', () => '+5'])();
  const spec = () => pick([() => `${num()}-${num()}`, () => `${num()}-`, () => `-${num()}`, () => '-', () => num(), () => `${num()}--${num()}`])();

  /** Header values the HTTP parser accepts (no CR, LF or other controls), but otherwise anything. */
  function oddValue(): Buffer {
    const kind = int(10);
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => pick(VALUE_BYTES)));
    switch (kind) {
      case 0:
        return random(1 + int(80));
      case 1:
        return Buffer.concat([Buffer.from('bytes='), random(1 + int(30))]);
      case 2:
        return Buffer.from(`bytes=${spec()}`);
      case 3:
        return Buffer.from(`bytes=${Array.from({ length: 1 + int(300) }, spec).join(pick([',', ', ', ',,', ' ,\t']))}`);
      case 4:
        return Buffer.from(`bytes=${','.repeat(int(2000))}${spec()}${','.repeat(int(50))}`);
      case 5:
        return Buffer.from(`${pick(['bytes', 'BYTES', 'Bytes', 'byte', 'bits', '', 'bytes bytes'])}${pick(['=', ' = ', '\t=\t', '==', ':'])}${spec()}`, 'latin1');
      case 6:
        return Buffer.from(pick(['bytes=０-５', 'bytes=٠-٩', 'bytes=1-２', 'bytes=−5', 'bytes=0–5', 'bytes=-𝟓', 'bytes=0-5\u00a0', 'بايت=0-5']), 'utf8');
      case 7:
        return Buffer.from(`bytes=${pick(['', ' ', '\t'])}${int(size + 10)}${pick(['', ' ', '\t'])}-${pick(['', ' '])}${int(size + 10)}${pick(['', ' ', '\t'])}`);
      case 8:
        return Buffer.from(`bytes=${pick(['-', ''])}${'9'.repeat(15 + int(400))}${pick(['-', '-0', '', '-9'])}`);
      default:
        // Around the end of the file, where satisfiable turns unsatisfiable.
        return Buffer.from(pick([`bytes=${size - 3 + int(6)}-`, `bytes=${size - 3 + int(6)}-${size + int(3)}`, `bytes=-${int(3)}`, `bytes=${int(size + 5)}-${int(size + 5)}`]));
    }
  }

  /** What RFC 9110 says for one well-formed single range (BigInt, so huge numbers are exact); null for anything else. */
  function oracle(value: string): { start: number; end: number } | 'unsatisfiable' | null {
    const m = /^bytes=(?:(\d+)-(\d*)|-(\d+))$/.exec(value);
    if (!m) return null;
    const n = BigInt(size);
    if (m[3] !== undefined) {
      const suffix = BigInt(m[3]);
      if (suffix === 0n) return 'unsatisfiable';
      return { start: Number(suffix >= n ? 0n : n - suffix), end: size - 1 };
    }
    const first = BigInt(m[1]!);
    const last = m[2] === '' ? n - 1n : BigInt(m[2]!);
    if (last < first) return null; // invalid: to be ignored
    if (first >= n) return 'unsatisfiable';
    return { start: Number(first), end: Number(last < n ? last : n - 1n) };
  }

  it('never answers 5xx: always a correct 200, 206 or 416 (600 requests)', { timeout: 60_000 }, async () => {
    const seen = { 200: 0, 206: 0, 416: 0 } as Record<number, number>;
    for (let i = 0; i < 600; i += 1) {
      const value = oddValue();
      const lines: Buffer[] = [Buffer.concat([Buffer.from('Range: '), value])];
      if (i % 25 === 0) lines.push(Buffer.from(`Range: bytes=${int(10)}-${int(10)}`)); // a repeated field
      const what = `Range: ${JSON.stringify(value.toString('latin1'))}`;
      const r = await get(lines);
      expect([200, 206, 416], `${what} → ${r.status} ${r.body.toString('latin1').slice(0, 200)}`).toContain(r.status);
      seen[r.status] = (seen[r.status] ?? 0) + 1;
      if (r.status === 200) expectFull(r, what);
      else if (r.status === 416) expectUnsatisfiable(r, what);
      else {
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.headers['content-range'] ?? '');
        expect(m, what).not.toBeNull();
        expectPartial(r, Number(m![1]), Number(m![2]), what);
      }
      // Where the RFC fixes the answer, a 206 or 416 must be that answer (200 = ignored, always allowed).
      const expected = lines.length === 1 ? oracle(value.toString('latin1').trim()) : null;
      if (expected !== null && r.status !== 200) {
        if (expected === 'unsatisfiable') expect(r.status, what).toBe(416);
        else expect(r.headers['content-range'], what).toBe(`bytes ${expected.start}-${expected.end}/${size}`);
      }
      if (expected === null && r.status === 416) expect(value.toString('latin1'), `${what}: 416 for a header the RFC would ignore`).toMatch(/^\s*bytes\s*=/i);
    }
    expect(seen[206], 'some fuzzed ranges were served').toBeGreaterThan(20);
    expect(seen[416], 'some fuzzed ranges were unsatisfiable').toBeGreaterThan(5);
    expect(reg.logs.filter((l) => l['level'] === 'error')).toEqual([]);
  });
});

describe('abandoned downloads', () => {
  /** Sends a GET for the big pack and hangs up: at once, after the head, or after some body bytes. */
  function abandon(mode: 'immediately' | 'first-bytes' | 'half', range?: string): Promise<number> {
    const u = new URL(reg.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port), u.hostname);
      let received = 0;
      socket.on('error', reject);
      socket.on('close', () => resolve(received));
      socket.on('data', (d: Buffer) => {
        received += d.length;
        if (mode === 'first-bytes' || (mode === 'half' && received > big.size_bytes / 2)) socket.destroy();
      });
      socket.write(`GET /v1/packs/range.big/download?version=1.0.0 HTTP/1.1\r\nHost: x\r\n${range ? `Range: ${range}\r\n` : ''}\r\n`);
      if (mode === 'immediately') setImmediate(() => socket.destroy());
    });
  }

  it('leaks no file descriptor when clients hang up mid-download (60 aborted downloads of a 6 MiB pack)', async () => {
    expect(big.size_bytes).toBeGreaterThan(6 * 1024 * 1024);
    // Warm up: one complete download, so lazily opened descriptors are already counted; the
    // baseline is taken once the server has closed that response, not after a guessed delay.
    const served = new Promise<void>((resolve) => reg.running.server.once('request', (_req: IncomingMessage, res: ServerResponse) => res.once('close', resolve)));
    const whole = await get([], 'GET', '/v1/packs/range.big/download?version=1.0.0');
    expect(sha256(whole.body)).toBe(big.sha256);
    await served;
    const baseline = openFds();
    // Node closes a forgotten FileHandle when it is garbage-collected (and warns): that would hide a
    // leak from the count, so the warning counts as a leak too.
    const closedByGc: string[] = [];
    const onWarning = (w: Error) => {
      if (/garbage collection/i.test(w.message)) closedByGc.push(w.message);
    };
    process.on('warning', onWarning);

    const modes = ['immediately', 'first-bytes', 'half'] as const;
    for (let round = 0; round < 4; round += 1) {
      await Promise.all(
        Array.from({ length: 15 }, (_, i) => abandon(modes[i % 3]!, i % 4 === 0 ? `bytes=${randomBytes(2).readUInt16BE(0)}-` : undefined)),
      );
    }
    const settled = await until(() => openFds() <= baseline, 10_000);
    expect(settled, `open descriptors: ${openFds()} now, ${baseline} before`).toBe(true);
    process.off('warning', onWarning);
    expect(closedByGc, 'file handles left for the garbage collector to close').toEqual([]);

    const after = await get([], 'GET', '/v1/packs/range.big/download?version=1.0.0');
    expect(sha256(after.body), 'the server still serves the pack whole').toBe(big.sha256);
    expect(reg.logs.filter((l) => l['level'] === 'error'), 'hang-ups are not server errors').toEqual([]);
  });
});
