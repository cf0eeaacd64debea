import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPack } from './build.js';
import { ENTRY } from './format.js';
import { generateKeyPair } from './minisign.js';
import { readSource } from './source.js';
import { encodeFileHeader, END_OF_ARCHIVE, paddingFor } from './tar.js';
import { readManifestAndSignature, readSignatureEntry } from './signature-entry.js';

const dir = mkdtempSync(join(tmpdir(), 'iqp-sigentry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function build(name: string, signed: boolean): Promise<string> {
  const source = await readSource(resolve(import.meta.dirname, '..', '..', 'templates', 'translation'));
  const out = join(dir, `${name}.iqp`);
  await buildPack({ source, secretKey: signed ? generateKeyPair() : null, level: 3, outPath: out, createdAt: new Date('2025-01-01T00:00:00Z') });
  return out;
}

/** The entry `name` of a pack, read with the standard tools. */
function entryWithTools(pack: string, name: string): Buffer {
  const r = spawnSync('sh', ['-c', `zstd -dc "$1" | tar -xO -f - "$2"`, 'sh', pack, name]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

function zstd(tar: Buffer): Buffer {
  const r = spawnSync('zstd', ['-q', '-c'], { input: tar });
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

function entry(name: string, data: Buffer): Buffer {
  return Buffer.concat([encodeFileHeader(name, data.length, 0), data, Buffer.alloc(paddingFor(data.length))]);
}

describe('readSignatureEntry', () => {
  let signed: string;
  let unsigned: string;
  beforeAll(async () => {
    signed = await build('signed', true);
    unsigned = await build('unsigned', false);
  });

  it('gives the exact bytes of manifest.json.minisig, as tar reads them', async () => {
    const bytes = await readSignatureEntry(signed);
    expect(bytes).not.toBeNull();
    expect(bytes!.equals(entryWithTools(signed, ENTRY.signature))).toBe(true);
  });

  it('gives null for an unsigned pack', async () => {
    expect(await readSignatureEntry(unsigned)).toBeNull();
  });

  it('gives manifest.json’s exact bytes beside the signature, and a null manifest for a pack without one', async () => {
    for (const pack of [signed, unsigned]) {
      const { manifest, signature } = await readManifestAndSignature(pack);
      expect(manifest!.equals(entryWithTools(pack, ENTRY.manifest))).toBe(true);
      expect(signature === null ? null : signature.equals(entryWithTools(pack, ENTRY.signature))).toBe(pack === signed ? true : null);
    }
    const bare = join(dir, 'bare.iqp');
    writeFileSync(bare, zstd(Buffer.concat([entry(ENTRY.signature, Buffer.from('sig')), END_OF_ARCHIVE])));
    expect(await readManifestAndSignature(bare)).toEqual({ manifest: null, signature: Buffer.from('sig') });
  });

  it('applies the reader’s entry rules: an unknown entry or an oversized signature is refused', async () => {
    const stray = join(dir, 'stray.iqp');
    writeFileSync(stray, zstd(Buffer.concat([entry(ENTRY.manifest, Buffer.from('{}')), entry('notes.txt', Buffer.from('x')), END_OF_ARCHIVE])));
    await expect(readSignatureEntry(stray)).rejects.toMatchObject({ code: 'IQP_E_PACK_ENTRY_UNEXPECTED' });
    const big = join(dir, 'big.iqp');
    writeFileSync(big, zstd(Buffer.concat([entry(ENTRY.signature, Buffer.alloc(9 * 1024, 0x41)), END_OF_ARCHIVE])));
    await expect(readSignatureEntry(big)).rejects.toMatchObject({ code: 'IQP_E_PACK_ENTRY_TOO_LARGE' });
  });
});
