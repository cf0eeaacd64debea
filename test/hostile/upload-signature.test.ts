/**
 * Uploads that carry their signature in X-Iqp-Signature (as `iqp publish` sends them): the
 * registry checks it against its pack keys as soon as manifest.json has arrived, before any of
 * content.sqlite is decompressed, and answers while the client is still sending. The pack's own
 * manifest.json.minisig must then be the same bytes. Bodies are sent piece by piece by the test,
 * which stops sending and waits for the answer.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ENTRY, packTrustedComment } from '../../src/pack/format.js';
import { sign } from '../../src/pack/minisign.js';
import { readFileChunks, readPack } from '../../src/pack/reader.js';
import { END_OF_ARCHIVE, encodeFileHeader } from '../../src/pack/tar.js';
import { iqp } from '../e2e/helpers.js';
import {
  blobFiles,
  buildRandomPack,
  buildTemplatePack,
  type BuiltPack,
  expectError,
  newKey,
  packRows,
  type Reply,
  sha256,
  startRegistry,
  tempDir,
  type TestKey,
  type TestRegistry,
  tmpFiles,
  until,
  upload,
} from '../server/helpers.js';
import { zeroBomb } from './crafted-packs.js';

const MiB = 1024 ** 2;
const PIECE = 64 * 1024;

let registered: TestKey;
let stranger: TestKey;
let dir: string;
/** A fresh registry for each test, with `registered` as its only pack key. */
let reg: TestRegistry;

beforeAll(() => {
  registered = newKey();
  stranger = newKey();
  dir = tempDir('iqp-hostile-upload-sig-');
});
beforeEach(async () => {
  reg = await startRegistry({ keys: [registered] });
});
afterEach(async () => {
  await reg?.close();
});

async function signatureOf(path: string): Promise<Buffer> {
  const contents = await readPack(readFileChunks(path));
  return Buffer.from(contents.signature!, 'utf8');
}

function header(signature: Buffer): Record<string, string> {
  return { 'x-iqp-signature': signature.toString('base64') };
}

/** Every file under `root` (paths relative to it), and their total size. */
function tree(root: string): { files: string[]; bytes: number } {
  const files: string[] = [];
  let bytes = 0;
  const walk = (d: string, prefix: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return; // removed while we looked
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
      else {
        files.push(`${prefix}${e.name}`);
        try {
          bytes += statSync(join(d, e.name)).size;
        } catch {
          // removed while we looked
        }
      }
    }
  };
  walk(root, '');
  return { files, bytes };
}

interface Held {
  readonly reply: Reply;
  /** Body bytes handed to the socket before the answer arrived. */
  readonly sent: number;
  /** tmp/ when the answer's head arrived. */
  readonly tmpAtAnswer: { files: string[]; bytes: number };
}

/**
 * PUTs `body` (declaring its whole length) one PIECE at a time, each after the previous one was
 * flushed, for at most `firstBytes`; then sends nothing more and waits for the answer. Whatever the
 * registry does, the rest of the body is never sent.
 */
function uploadHeld(body: Buffer, headers: Record<string, string>, firstBytes: number): Promise<Held> {
  const tmp = join(reg.dataDir, 'tmp');
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req: ClientRequest = request(
      new URL('/v1/admin/packs', reg.url),
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${reg.publisher}`, 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers },
      },
      (res: IncomingMessage) => {
        answered = true;
        const tmpAtAnswer = tree(tmp);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const h = new Headers(Object.entries(res.headers).map(([k, v]) => [k, String(v)]));
          req.destroy(); // the rest of the body is never sent
          resolve({ reply: { status: res.statusCode!, headers: h, body: bytes, json: () => JSON.parse(bytes.toString('utf8')) }, sent, tmpAtAnswer });
        });
      },
    );
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const next = (): void => {
      if (answered || sent >= firstBytes) return;
      const piece = body.subarray(sent, Math.min(sent + PIECE, firstBytes));
      sent += piece.length;
      req.write(piece, next);
    };
    req.flushHeaders();
    next();
  });
}

async function expectNothingStored(): Promise<void> {
  expect(await until(() => tmpFiles(reg.dataDir).length === 0, 5000), `tmp/ holds ${tmpFiles(reg.dataDir).join(', ')}`).toBe(true);
  expect(blobFiles(reg.dataDir)).toEqual([]);
  expect(packRows(reg.dataDir)).toEqual([]);
}

describe('an upload with X-Iqp-Signature', () => {
  let strangers: BuiltPack;
  let strangersBody: Buffer;

  beforeAll(async () => {
    // Random content compresses to itself: 16 MiB of body, most of it content.sqlite.
    strangers = await buildRandomPack(dir, stranger, { mib: 16, package_id: 'sig.stranger', version: '1.0.0' });
    strangersBody = readFileSync(strangers.path);
  });

  it('signed by a key the registry does not know is refused (422 IQP_E_SIG_UNTRUSTED_KEY) while most of the body is unsent', async () => {
    const held = await uploadHeld(strangersBody, header(await signatureOf(strangers.path)), 4 * PIECE);
    expectError(held.reply, 'IQP_E_SIG_UNTRUSTED_KEY');
    expect(held.sent).toBeLessThanOrEqual(4 * PIECE);
    expect(held.sent).toBeLessThan(strangersBody.length / 8);
    expect(held.tmpAtAnswer.files.filter((f) => f.endsWith(ENTRY.content))).toEqual([]);
    expect(held.tmpAtAnswer.bytes, `tmp/ held ${held.tmpAtAnswer.files.join(', ')}`).toBeLessThanOrEqual(held.sent);
    await expectNothingStored();
  }, 30_000);

  it('that does not start with manifest.json is refused (IQP_E_PACK_ENTRY_ORDER) before its content is read', async () => {
    // content.sqlite first: without a manifest to check the signature against, nothing after it may be read.
    const pack = await buildTemplatePack(dir, registered, { authored: { package_id: 'sig.order', version: '1.0.0' } });
    const content = randomBytes(16 * MiB);
    const tar = Buffer.concat([encodeFileHeader(ENTRY.content, content.length, 0), content, END_OF_ARCHIVE]);
    const body = spawnSync('zstd', ['-q', '-1', '-c'], { input: tar, maxBuffer: 64 * MiB }).stdout;
    const held = await uploadHeld(body, header(await signatureOf(pack.path)), 4 * PIECE);
    expectError(held.reply, 'IQP_E_PACK_ENTRY_ORDER');
    expect(held.sent).toBeLessThan(body.length / 8);
    expect(held.tmpAtAnswer.files.filter((f) => f.endsWith(ENTRY.content))).toEqual([]);
    await expectNothingStored();
  }, 30_000);

  it('whose signature is another pack’s, by a registered key, is refused with IQP_E_SIG_INVALID and nothing is committed', async () => {
    const pack = await buildTemplatePack(dir, registered, { authored: { package_id: 'sig.mixed', version: '1.0.0' } });
    const other = await buildTemplatePack(dir, registered, { authored: { package_id: 'sig.mixed', version: '1.0.1' } });
    const r = await upload(reg.url, reg.publisher, pack.path, header(await signatureOf(other.path)));
    expectError(r, 'IQP_E_SIG_INVALID');
    await expectNothingStored();
  });

  it('whose signature is a valid one of the same manifest, but not the bytes the pack holds, is refused with IQP_E_SIG_INVALID', async () => {
    const pack = await buildTemplatePack(dir, registered, { authored: { package_id: 'sig.resigned', version: '1.0.0' } });
    const contents = await readPack(readFileChunks(pack.path));
    const comment = packTrustedComment(pack.package_id, pack.version, sha256(contents.manifestBytes));
    const resigned = Buffer.from(sign(contents.manifestBytes, registered.secret, comment, 'signed again'), 'utf8');
    expect(resigned.equals(Buffer.from(contents.signature!, 'utf8'))).toBe(false);
    const r = await upload(reg.url, reg.publisher, pack.path, header(resigned));
    expectError(r, 'IQP_E_SIG_INVALID');
    expect(r.json().error.message).toContain('not the pack’s');
    await expectNothingStored();
  });

  it('over 4 KiB, or not base64, is refused with 400 IQP_E_USAGE before the body is read', async () => {
    const pack = await buildTemplatePack(dir, registered, { authored: { package_id: 'sig.header', version: '1.0.0' } });
    const own = await signatureOf(pack.path);
    const padded = Buffer.concat([own, Buffer.alloc(4 * 1024 + 1 - own.length, 0x20)]);
    expectError(await upload(reg.url, reg.publisher, pack.path, header(padded)), 'IQP_E_USAGE');
    expectError(await upload(reg.url, reg.publisher, pack.path, { 'x-iqp-signature': 'not base64!' }), 'IQP_E_USAGE');
    expectError(await upload(reg.url, reg.publisher, pack.path, { 'x-iqp-signature': '' }), 'IQP_E_USAGE');
    await expectNothingStored();
  });

  it('with the pack’s own signature publishes (201), and again as identical (200)', async () => {
    const pack = await buildTemplatePack(dir, registered, { authored: { package_id: 'sig.good', version: '1.0.0' } });
    const first = await upload(reg.url, reg.publisher, pack.path, header(await signatureOf(pack.path)));
    expect(first.status, first.body.toString()).toBe(201);
    expect(first.json().signer_key_id).toBe(registered.keyId);
    const again = await upload(reg.url, reg.publisher, pack.path, header(await signatureOf(pack.path)));
    expect(again.status, again.body.toString()).toBe(200);
    expect(packRows(reg.dataDir).map((p) => p.sha256)).toEqual([pack.sha256]);
    expect(await until(() => tmpFiles(reg.dataDir).length === 0, 5000)).toBe(true);
  });
});

describe('iqp publish', () => {
  it('sends the signature: a pack by an unknown key is refused for its key, not for content the registry never reads', async () => {
    // Over max_content_bytes: read without the signature first, the content entry's size would refuse it.
    const template = await buildTemplatePack(dir, stranger, { authored: { package_id: 'sig.cli', version: '1.0.0' } });
    const path = join(dir, 'sig.cli-bomb.iqp');
    writeFileSync(path, zeroBomb(template, stranger, 128 * MiB, { trueHash: true }));
    await reg.close();
    reg = await startRegistry({ keys: [registered], config: { maxContentBytes: 64 * MiB } });
    const r = await iqp(['publish', path, '--registry', reg.url, '--json'], { cwd: dir, env: { HOME: dir, IQP_TOKEN: reg.publisher } });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(JSON.stringify(r.json())).toContain('IQP_E_SIG_UNTRUSTED_KEY');
    await expectNothingStored();
  });
});
