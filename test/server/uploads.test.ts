/**
 * PUT /v1/admin/packs with bad input and faults: every pack of the bad-pack corpus is refused with
 * the code `iqp verify` gives it, and no refused or interrupted upload leaves a blob, a temp file
 * or a row behind. Plus keys, media types, size limits, repeats, conflicts and races.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { DEFAULT_LIMITS } from '../../src/pack/format.js';
import { verifyPackFile } from '../../src/pack/verify.js';
import {
  blobFiles,
  buildRandomPack,
  buildTemplatePack,
  type BuiltPack,
  call,
  expectError,
  fixtureKey,
  FIXTURES,
  newKey,
  openRequest,
  packRows,
  registerKey,
  type Reply,
  startRegistry,
  streamUpload,
  tempDir,
  type TestKey,
  type TestRegistry,
  tmpFiles,
  until,
  upload,
  withRegistry,
} from './helpers.js';

interface BadCase {
  readonly file: string;
  readonly expect: ErrorCode;
  readonly why: string;
}

const BAD = join(FIXTURES, 'bad');
const GOOD = join(FIXTURES, 'good');
const corpus = JSON.parse(readFileSync(join(BAD, 'index.json'), 'utf8')) as BadCase[];

let work: string;
let corpusKey: TestKey;
let key: TestKey;

beforeAll(async () => {
  work = tempDir('iqp-upload-packs-');
  corpusKey = await fixtureKey('corpus');
  key = newKey();
});

/** What a data dir holds that an upload could have added to. */
function snapshot(reg: TestRegistry) {
  return { blobs: blobFiles(reg.dataDir), rows: packRows(reg.dataDir) };
}

/** Asserts a refused upload: the status of `code`, JSON error with that code, and nothing written. */
async function expectRefused(reg: TestRegistry, reply: Reply, code: ErrorCode, before: ReturnType<typeof snapshot>, what = ''): Promise<void> {
  expectError(reply, code, what);
  expect(reply.status).toBeGreaterThanOrEqual(400);
  expect(reply.status).toBeLessThan(500);
  expect(await until(() => tmpFiles(reg.dataDir).length === 0, 2000), `${what}: tmp/ holds ${tmpFiles(reg.dataDir).join(', ')}`).toBe(true);
  expect(snapshot(reg), `${what}: blobs or rows changed`).toEqual(before);
}

describe('the bad-pack corpus, uploaded with a valid publisher token', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry({ keys: [corpusKey] });
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('has cases to upload', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(50);
  });

  it.for(corpus)('$file → $expect, nothing stored', async (entry) => {
    // The code `iqp verify --pubkey corpus.pub` answers, from the same library call; it equals
    // index.json's expect whenever the committed corpus is current (test/e2e/bad-corpus.test.ts).
    const verifyCode = await verifyPackFile(join(BAD, entry.file), { trustedKeys: [corpusKey.secret], limits: DEFAULT_LIMITS }).then(
      () => 'accepted',
      (err: { code?: string }) => err.code,
    );
    const before = snapshot(reg);
    const r = await upload(reg.url, reg.publisher, join(BAD, entry.file));
    await expectRefused(reg, r, verifyCode as ErrorCode, before, `${entry.file} (${entry.why}; index.json expects ${entry.expect})`);
  });

  it('stores nothing for any of them, and still accepts every good pack', async () => {
    expect(blobFiles(reg.dataDir)).toEqual([]);
    expect(packRows(reg.dataDir)).toEqual([]);
    const ids = new Set<string>();
    for (const file of readdirSync(GOOD).filter((f) => f.endsWith('.iqp')).sort()) {
      const r = await upload(reg.url, reg.publisher, join(GOOD, file));
      expect(r.status, `${file}: ${r.body.toString()}`).toBe(201);
      ids.add(r.json().package_id);
    }
    expect(packRows(reg.dataDir).map((p) => p.package_id).sort()).toEqual([...ids].sort());
    expect(blobFiles(reg.dataDir)).toHaveLength(ids.size);
    const audit = (await call(reg.url, '/v1/admin/audit?limit=500', { token: reg.admin })).json().entries;
    expect(audit.filter((e: { action: string }) => e.action === 'pack.publish'), 'refused uploads leave no audit entry').toHaveLength(ids.size);
  });
});

describe('keys', () => {
  it('refuses a pack signed by a key the registry does not know: 422 IQP_E_SIG_UNTRUSTED_KEY', async () => {
    await withRegistry({ keys: [key] }, async (reg) => {
      const stranger = await buildTemplatePack(work, newKey(), { authored: { package_id: 'stranger.pack', version: '1.0.0' } });
      const r = await upload(reg.url, reg.publisher, stranger.path);
      await expectRefused(reg, r, 'IQP_E_SIG_UNTRUSTED_KEY', { blobs: [], rows: [] });
      expect(r.status).toBe(422);
      expect((await call(reg.url, '/v1/packs/stranger.pack')).status).toBe(404);
    });
  });

  it('refuses every upload while no publisher key is registered: IQP_E_NO_PUBLISHER_KEYS', async () => {
    await withRegistry({}, async (reg) => {
      const pack = await buildTemplatePack(work, key, { authored: { package_id: 'nokeys.pack', version: '1.0.0' } });
      const r = await upload(reg.url, reg.publisher, pack.path);
      await expectRefused(reg, r, 'IQP_E_NO_PUBLISHER_KEYS', { blobs: [], rows: [] });
      // The same connection still works: the refused body was read to the end.
      const after = await call(reg.url, '/v1/health');
      expect(after.status).toBe(200);
    });
  });
});

describe('key purposes', () => {
  it('a key registered to sign releases is not trusted for packs', async () => {
    await withRegistry({}, async (reg) => {
      const add = await call(reg.url, '/v1/admin/keys', { method: 'POST', token: reg.admin, json: { public_key: key.publicKeyFile, purpose: 'release' } });
      expect(add.status).toBe(201);
      const pack = await buildTemplatePack(work, key, { authored: { package_id: 'purpose.pack', version: '1.0.0' } });
      await expectRefused(reg, await upload(reg.url, reg.publisher, pack.path), 'IQP_E_NO_PUBLISHER_KEYS', { blobs: [], rows: [] }, 'only a release key');
      await registerKey(reg.url, reg.admin, newKey());
      await expectRefused(reg, await upload(reg.url, reg.publisher, pack.path), 'IQP_E_SIG_UNTRUSTED_KEY', { blobs: [], rows: [] }, 'a release key and another pack key');
    });
  });
});

describe('request shape and size limits', () => {
  let reg: TestRegistry;
  let pack: BuiltPack;
  let big: BuiltPack;
  const MAX = 64 * 1024;

  beforeAll(async () => {
    reg = await startRegistry({ keys: [key], config: { maxUploadBytes: MAX } });
    [pack, big] = await Promise.all([
      buildTemplatePack(work, key, { authored: { package_id: 'shape.pack', version: '1.0.0' } }),
      buildRandomPack(work, key, { mib: 1, package_id: 'shape.big', version: '1.0.0' }),
    ]);
    expect(pack.size_bytes).toBeLessThan(MAX);
    expect(big.size_bytes).toBeGreaterThan(MAX);
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('refuses a Content-Type that is not a pack with 415', async () => {
    for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/gzip']) {
      const r = await upload(reg.url, reg.publisher, pack.path, { 'content-type': type });
      await expectRefused(reg, r, 'IQP_E_UNSUPPORTED_MEDIA_TYPE', { blobs: [], rows: [] }, type);
    }
  });

  it('answers 413 to a Content-Length over max_upload_bytes before any body byte is sent', async () => {
    for (const length of [MAX + 1, 10 * 1024 ** 3]) {
      const { socket, response } = openRequest(
        reg.url,
        `PUT /v1/admin/packs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reg.publisher}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`,
      );
      try {
        const r = await response;
        expect(r.status, String(length)).toBe(413);
        const doc = JSON.parse(r.body.toString('utf8'));
        expect(doc.error).toMatchObject({ code: 'IQP_E_UPLOAD_TOO_LARGE', details: { limit: MAX } });
        if (length > 64 * 1024 ** 2) expect(r.headers['connection'], 'a body too big to drain ends the connection').toBe('close');
      } finally {
        socket.destroy();
      }
    }
    expect(await until(() => tmpFiles(reg.dataDir).length === 0, 2000)).toBe(true);
    expect(snapshot(reg)).toEqual({ blobs: [], rows: [] });
  });

  it('accepts a chunked body (no Content-Length) under the limit, and answers 413 once one grows over it', async () => {
    const under = await streamUpload(reg.url, reg.publisher, readFileSync(pack.path), { contentLength: false, chunk: 1024 });
    expect(under).toMatchObject({ status: 201 });
    const before = snapshot(reg);
    const over = await streamUpload(reg.url, reg.publisher, readFileSync(big.path), { contentLength: false, chunk: 16 * 1024 });
    expect(over).toMatchObject({ status: 413 });
    expect(JSON.parse((over as { body: string }).body).error.code).toBe('IQP_E_UPLOAD_TOO_LARGE');
    expect(await until(() => tmpFiles(reg.dataDir).length === 0, 2000)).toBe(true);
    expect(snapshot(reg)).toEqual(before);
  });

  it('accepts the pack media types, with parameters', async () => {
    const r = await upload(reg.url, reg.publisher, pack.path, { 'content-type': 'Application/Vnd.Iqp.Pack+Zstd; charset=binary' });
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.json().result).toBe('identical');
    expect((await upload(reg.url, reg.publisher, pack.path, { 'content-type': 'application/zstd' })).status).toBe(200);
  });
});

describe('repeats, conflicts and races', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    // The races need all eight uploads received at once (past max_concurrent_uploads they get 503).
    reg = await startRegistry({ keys: [key], config: { maxConcurrentUploads: 8 } });
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('an identical re-upload is 200 "identical" and changes nothing', async () => {
    const pack = await buildTemplatePack(work, key, { authored: { package_id: 'repeat.pack', version: '1.0.0' } });
    const first = await upload(reg.url, reg.publisher, pack.path);
    expect(first.status).toBe(201);
    expect(first.json()).toMatchObject({ result: 'created', package_id: 'repeat.pack', version: '1.0.0', sha256: pack.sha256, size_bytes: pack.size_bytes });
    const before = snapshot(reg);
    const again = await upload(reg.url, reg.publisher, pack.path);
    expect(again.status).toBe(200);
    expect(again.json()).toMatchObject({ result: 'identical', sha256: pack.sha256, published_at: first.json().published_at });
    expect(snapshot(reg)).toEqual(before);
    expect(tmpFiles(reg.dataDir)).toEqual([]);
    const audit = (await call(reg.url, `/v1/admin/audit?target=${encodeURIComponent('repeat.pack@1.0.0')}`, { token: reg.admin })).json().entries;
    expect(audit.map((e: { action: string }) => e.action)).toEqual(['pack.publish']);
  });

  it('other bytes under a published version: 409 IQP_E_VERSION_EXISTS, and the refused blob is not kept', async () => {
    const original = await buildTemplatePack(work, key, { authored: { package_id: 'conflict.pack', version: '1.0.0' } });
    const rebuilt = await buildTemplatePack(work, key, { authored: { package_id: 'conflict.pack', version: '1.0.0' }, created_at: new Date('2025-06-01T00:00:00Z') });
    expect(rebuilt.sha256).not.toBe(original.sha256);
    expect((await upload(reg.url, reg.publisher, original.path)).status).toBe(201);
    const before = snapshot(reg);
    const r = await upload(reg.url, reg.publisher, rebuilt.path);
    await expectRefused(reg, r, 'IQP_E_VERSION_EXISTS', before);
    expect(r.json().error.details).toEqual({ package_id: 'conflict.pack', version: '1.0.0', sha256: original.sha256 });
    expect(blobFiles(reg.dataDir)).not.toContain(rebuilt.sha256);
  });

  it('concurrent uploads of one pack: exactly one 201, the others 200', async () => {
    const pack = await buildTemplatePack(work, key, { authored: { package_id: 'race.pack', version: '1.0.0' } });
    const replies = await Promise.all(Array.from({ length: 8 }, () => upload(reg.url, reg.publisher, pack.path)));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(replies.map((r) => r.json().published_at)).size).toBe(1);
    expect(packRows(reg.dataDir).filter((p) => p.package_id === 'race.pack')).toHaveLength(1);
    expect(blobFiles(reg.dataDir)).toContain(pack.sha256);
    expect(tmpFiles(reg.dataDir)).toEqual([]);
  });

  it('concurrent uploads of different bytes under one version: one 201, the rest 409, only the winner stored', async () => {
    const variants = await Promise.all(
      [1, 2, 3, 4].map((day) => buildTemplatePack(work, key, { authored: { package_id: 'race.conflict', version: '1.0.0' }, created_at: new Date(`2025-07-0${day}T00:00:00Z`) })),
    );
    const replies = await Promise.all(variants.map((v) => upload(reg.url, reg.publisher, v.path)));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
    for (const r of replies.filter((x) => x.status === 409)) expectError(r, 'IQP_E_VERSION_EXISTS');
    const winner = replies.find((r) => r.status === 201)!.json().sha256 as string;
    for (const v of variants) expect(blobFiles(reg.dataDir).includes(v.sha256), v.sha256).toBe(v.sha256 === winner);
    expect(tmpFiles(reg.dataDir)).toEqual([]);
  });

  it('an upload cut off by the client leaves no temp file, blob or row', async () => {
    const pack = await buildRandomPack(work, key, { mib: 2, package_id: 'cut.pack', version: '1.0.0' });
    const bytes = readFileSync(pack.path);
    const before = snapshot(reg);
    for (const fraction of [0.1, 0.5, 0.99]) {
      const { socket } = openRequest(
        reg.url,
        `PUT /v1/admin/packs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reg.publisher}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`,
      );
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.write(bytes.subarray(0, Math.floor(bytes.length * fraction)), () => resolve()));
      expect(await until(() => tmpFiles(reg.dataDir).length > 0, 2000), 'the upload was being staged').toBe(true);
      socket.destroy();
      expect(await until(() => tmpFiles(reg.dataDir).length === 0, 5000), `after ${fraction}: tmp/ holds ${tmpFiles(reg.dataDir).join(', ')}`).toBe(true);
    }
    expect(snapshot(reg)).toEqual(before);
    expect((await upload(reg.url, reg.publisher, pack.path)).status, 'the whole pack is then accepted').toBe(201);
    expect(reg.logs.filter((l) => l['level'] === 'error'), 'a client hanging up is not a server error').toEqual([]);
  });
});
