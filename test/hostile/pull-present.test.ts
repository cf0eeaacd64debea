/**
 * `iqp pull` when <out>/<id>-<version>.iqp is already there: the same pack is not downloaded again;
 * another file is replaced only by a pack that passed every check. A real pack, built here, served
 * by a hand-made registry that counts downloads.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EPOCH, iqp, listTree, tempDir } from '../e2e/helpers.js';
import { type FakeRegistry, fakeRegistry, manifestAnswer, pull, sendJson } from './pull-registry.js';

const ID = 'demo.pack';
const FILE_NAME = `${ID}-1.0.0.iqp`;
let src: string;
let pack: Buffer;
let keyId: string;

beforeAll(async () => {
  src = tempDir('iqp-pull-present-src-');
  const key = await iqp(['keygen', '--out', 'signing', '--no-passphrase', '--json'], { cwd: src });
  expect(key.code, key.stderr).toBe(0);
  keyId = key.json().key_id;
  expect((await iqp(['init', 'src', '--template', 'translation', '--id', ID, '-y'], { cwd: src })).code).toBe(0);
  const built = await iqp(['build', 'src', '--key', 'signing.key', '--out', FILE_NAME], { cwd: src, env: { SOURCE_DATE_EPOCH: EPOCH } });
  expect(built.code, built.stderr).toBe(0);
  pack = readFileSync(join(src, FILE_NAME));
});

/** Serves `body` as demo.pack@1.0.0, announcing the real pack's size and SHA-256. */
function registryServing(body: () => Buffer): Promise<FakeRegistry> {
  const sha256 = createHash('sha256').update(pack).digest('hex');
  return fakeRegistry((req, res) => {
    if (req.url!.endsWith('/manifest')) return sendJson(res, manifestAnswer(ID, '1.0.0', { size_bytes: pack.length, sha256, signer_key_id: keyId }));
    const bytes = body();
    res.writeHead(200, { 'content-length': String(bytes.length), etag: `"${sha256}"` }).end(bytes);
  });
}

function setup(): { work: string; out: string } {
  const work = tempDir('iqp-pull-present-');
  writeFileSync(join(work, 'signing.pub'), readFileSync(join(src, 'signing.pub')));
  return { work, out: join(work, 'out') };
}

const downloads = (registry: FakeRegistry) => registry.hits.filter((h) => h.includes('/download')).length;

describe('a pack already at <out>/<id>-<version>.iqp', () => {
  it('is checked and kept, not downloaded again', async () => {
    const { work, out } = setup();
    const registry = await registryServing(() => pack);
    const first = await pull(registry, [`${ID}@1.0.0`, '--out', 'out', '--pubkey', 'signing.pub'], work);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ ok: true, downloaded: true, replaced: false });
    expect(downloads(registry)).toBe(1);
    const before = statSync(join(out, FILE_NAME));

    const again = await pull(registry, [`${ID}@1.0.0`, '--out', 'out', '--pubkey', 'signing.pub'], work);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ ok: true, version: '1.0.0', downloaded: false, replaced: false, signer_key_id: keyId, trust: 'pinned' });
    expect(downloads(registry)).toBe(1);
    const after = statSync(join(out, FILE_NAME));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(listTree(out)).toEqual([FILE_NAME]);

    const human = await iqp(['pull', `${ID}@1.0.0`, '--out', 'out', '--pubkey', 'signing.pub', '--registry', registry.url], { cwd: work });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('already present');
    expect(downloads(registry)).toBe(1);
  });

  it('is replaced when it differs, but only by a pack that passed every check', async () => {
    const { work, out } = setup();
    mkdirSync(out);
    const mine = Buffer.from('not the registry’s pack');
    writeFileSync(join(out, FILE_NAME), mine);

    // The registry sends bytes that do not match what it announced: the file stays as it was.
    const corrupt = Buffer.from(pack);
    corrupt[corrupt.length - 10] = corrupt[corrupt.length - 10]! ^ 0xff;
    const lying = await registryServing(() => corrupt);
    const refused = await pull(lying, [`${ID}@1.0.0`, '--out', 'out', '--pubkey', 'signing.pub'], work);
    expect(refused.json().error.code).toBe('IQP_E_DOWNLOAD_MISMATCH');
    expect(refused.code).toBe(1);
    expect(listTree(out)).toEqual([FILE_NAME]);
    expect(readFileSync(join(out, FILE_NAME)).equals(mine)).toBe(true);

    const honest = await registryServing(() => pack);
    const r = await pull(honest, [`${ID}@1.0.0`, '--out', 'out', '--pubkey', 'signing.pub'], work);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, downloaded: true, replaced: true });
    expect(listTree(out)).toEqual([FILE_NAME]);
    expect(readFileSync(join(out, FILE_NAME)).equals(pack)).toBe(true);
  });
});
