/**
 * Hostile uploads: zstd bombs signed by an unregistered key and by a registered one, content over
 * the registry's limit, and the registry's event loop while a large pack is verified. tmp/ is
 * measured while the upload is verified, each time a /v1/health answer arrives, and after.
 */
import { readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerConfig } from '../../server/config.js';
import {
  blobFiles,
  buildTemplatePack,
  type BuiltPack,
  call,
  expectError,
  newKey,
  packRows,
  type Reply,
  startRegistry,
  tempDir,
  type TestKey,
  type TestRegistry,
  tmpFiles,
  until,
  upload,
} from '../server/helpers.js';
import { zeroBomb } from './crafted-packs.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

let registered: TestKey;
let stranger: TestKey;
let template: BuiltPack;

beforeAll(async () => {
  registered = newKey();
  stranger = newKey();
  template = await buildTemplatePack(tempDir('iqp-hostile-upload-'), registered, { authored: { package_id: 'hostile.bomb', version: '1.0.0' } });
});

function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    try {
      total += entry.isDirectory() ? treeBytes(path) : statSync(path).size;
    } catch {
      // removed while we looked
    }
  }
  return total;
}

interface Watched {
  readonly reply: Reply;
  /** /v1/health answers that arrived after the whole body was sent and before the upload's answer. */
  readonly healthAnswers: number;
  /** The largest tmp/ seen at any of those answers and right after the upload's. */
  readonly maxTmpBytes: number;
  /** The longest a /v1/health request took, and the time from the last body byte sent to the upload's answer. */
  readonly slowestHealthMs: number;
  readonly verifyMs: number;
}

/**
 * Sends `body` as one upload; once the last byte is handed to the socket, asks /v1/health again
 * each time the previous answer arrives, measuring tmp/ at each, until the upload is answered.
 */
function uploadWatching(reg: TestRegistry, body: Buffer): Promise<Watched> {
  const url = new URL('/v1/admin/packs', reg.url);
  const tmp = join(reg.dataDir, 'tmp');
  let maxTmpBytes = 0;
  let healthAnswers = 0;
  let answered = false;
  let slowestHealthMs = 0;
  let sentAt = 0;
  let verifyMs = 0;
  const health = async (): Promise<void> => {
    while (!answered) {
      const asked = performance.now();
      const r = await call(reg.url, '/v1/health');
      expect(r.status).toBe(200);
      slowestHealthMs = Math.max(slowestHealthMs, performance.now() - asked);
      if (answered) return;
      healthAnswers += 1;
      maxTmpBytes = Math.max(maxTmpBytes, treeBytes(tmp));
    }
  };
  return new Promise((resolve, reject) => {
    let polling: Promise<void> = Promise.resolve();
    const req = request(
      url,
      { method: 'PUT', headers: { authorization: `Bearer ${reg.publisher}`, 'content-type': 'application/octet-stream', 'content-length': String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          answered = true;
          verifyMs = performance.now() - sentAt;
          maxTmpBytes = Math.max(maxTmpBytes, treeBytes(tmp));
          const bytes = Buffer.concat(chunks);
          const headers = new Headers(Object.entries(res.headers).map(([k, v]) => [k, String(v)]));
          const reply: Reply = { status: res.statusCode!, headers, body: bytes, json: () => JSON.parse(bytes.toString('utf8')) };
          polling.then(() => resolve({ reply, healthAnswers, maxTmpBytes, slowestHealthMs, verifyMs }), reject);
        });
      },
    );
    req.on('error', reject);
    req.end(body, () => {
      sentAt = performance.now();
      polling = health();
    });
  });
}

async function expectNothingLeft(reg: TestRegistry): Promise<void> {
  expect(await until(() => tmpFiles(reg.dataDir).length === 0, 5000), `tmp/ holds ${tmpFiles(reg.dataDir).join(', ')}`).toBe(true);
  expect(blobFiles(reg.dataDir)).toEqual([]);
  expect(packRows(reg.dataDir)).toEqual([]);
}

async function withReg(config: Partial<ServerConfig>, fn: (reg: TestRegistry) => Promise<void>): Promise<void> {
  const reg = await startRegistry({ keys: [registered], config });
  try {
    await fn(reg);
  } finally {
    await reg.close();
  }
}

describe('a zstd bomb signed by a key the registry does not know', () => {
  it('is refused (422 IQP_E_SIG_UNTRUSTED_KEY) without its content ever reaching tmp/, even with no ratio cap to stop it', async () => {
    // A correct hash, so only the signature can refuse it; the ratio cap is lifted so it does not.
    const bomb = zeroBomb(template, stranger, 1 * GiB, { trueHash: true });
    await withReg({ maxCompressionRatio: 1_000_000 }, async (reg) => {
      const { reply, maxTmpBytes } = await uploadWatching(reg, bomb);
      expectError(reply, 'IQP_E_SIG_UNTRUSTED_KEY');
      expect(maxTmpBytes, 'tmp/ held more than the staged upload').toBeLessThanOrEqual(bomb.length + MiB);
      await expectNothingLeft(reg);
    });
  });

  it('unsigned, is refused with IQP_E_PACK_UNSIGNED, writing nothing but the staged upload', async () => {
    const bomb = zeroBomb(template, null, 256 * MiB, { trueHash: true });
    await withReg({ maxCompressionRatio: 1_000_000 }, async (reg) => {
      const { reply, maxTmpBytes } = await uploadWatching(reg, bomb);
      expectError(reply, 'IQP_E_PACK_UNSIGNED');
      expect(maxTmpBytes).toBeLessThanOrEqual(bomb.length + MiB);
      await expectNothingLeft(reg);
    });
  });
});

describe('a zstd bomb signed by a registered key', () => {
  it('is stopped by the compression-ratio cap: 413 IQP_E_CONTENT_TOO_LARGE, tmp/ stays small', async () => {
    const bomb = zeroBomb(template, registered, 1 * GiB);
    await withReg({}, async (reg) => {
      const { reply, maxTmpBytes } = await uploadWatching(reg, bomb);
      expectError(reply, 'IQP_E_CONTENT_TOO_LARGE');
      expect(reply.status).toBe(413);
      expect(reply.json().error.details.max_compression_ratio).toBe(100);
      expect(maxTmpBytes).toBeLessThanOrEqual(bomb.length + MiB);
      await expectNothingLeft(reg);
    });
  });

  it('declaring more content than max_content_bytes is refused at the header: 413 IQP_E_CONTENT_TOO_LARGE', async () => {
    const bomb = zeroBomb(template, registered, 128 * MiB, { trueHash: true });
    await withReg({ maxContentBytes: 64 * MiB, maxCompressionRatio: 1_000_000 }, async (reg) => {
      const r = await upload(reg.url, reg.publisher, bomb);
      expectError(r, 'IQP_E_CONTENT_TOO_LARGE');
      expect(r.json().error.details).toMatchObject({ entry: 'content.sqlite', size: 128 * MiB, limit: 64 * MiB });
      await expectNothingLeft(reg);
    });
  });
});

describe('the event loop while an upload is verified', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ keys: [registered], config: { maxCompressionRatio: 1_000_000 } });
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('/v1/health answers while 1 GiB of declared content is decompressed and hashed, before the upload is refused', async () => {
    // Registered key, no ratio cap: every byte is decompressed and hashed before the wrong hash shows.
    const bomb = zeroBomb(template, registered, 1 * GiB);
    const { reply, healthAnswers, maxTmpBytes, slowestHealthMs, verifyMs } = await uploadWatching(reg, bomb);
    expectError(reply, 'IQP_E_PACK_HASH_MISMATCH');
    expect(healthAnswers, 'no /v1/health answer arrived while the upload was verified').toBeGreaterThan(0);
    // Measured against the same run's verification, not a fixed time: on the event loop, one health
    // request waited for most of the verification; off it, each takes a small part of it.
    expect(slowestHealthMs, `slowest /v1/health ${slowestHealthMs.toFixed(0)} ms of ${verifyMs.toFixed(0)} ms verifying`).toBeLessThan(verifyMs / 4);
    expect(maxTmpBytes).toBeLessThanOrEqual(bomb.length + MiB);
    await expectNothingLeft(reg);
  });

  it('a real pack still publishes after it (201), and again as identical (200)', async () => {
    const first = await upload(reg.url, reg.publisher, template.path);
    expect(first.status, first.body.toString()).toBe(201);
    expect((await upload(reg.url, reg.publisher, template.path)).status).toBe(200);
    expect(packRows(reg.dataDir).map((p) => p.sha256)).toEqual([template.sha256]);
    expect(await until(() => tmpFiles(reg.dataDir).length === 0, 5000)).toBe(true);
  });
});
