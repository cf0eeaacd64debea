import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isIqpError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import {
  MINISIGN_KDF_DEFAULTS,
  formatPublicKeyFile,
  formatSecretKeyFile,
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  parseSignature,
  secretKeyIsEncrypted,
  sign,
  verify,
} from './minisign.js';
import type { KdfParams, SecretKey } from './minisign.js';

const MINISIGN = '/usr/bin/minisign';
/** N=2^10, r=8, p=1 in libsodium's mapping: 1 MiB and a few milliseconds. */
const FAST_KDF: KdfParams = { opslimit: 32768, memlimit: 1 << 20 };
const SLOW = 120_000;

const root = mkdtempSync(join(tmpdir(), 'iqp-minisign-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
function tempDir(): string {
  return mkdtempSync(join(root, 'case-'));
}

function minisign(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(MINISIGN, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function minisignOk(args: string[], input = ''): string {
  const r = minisign(args, input);
  if (r.status !== 0) throw new Error(`minisign ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function codeOf(fn: () => unknown): ErrorCode | 'no error' | 'not an IqpError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isIqpError(err) ? err.code : 'not an IqpError';
  }
}

async function asyncCodeOf(fn: () => Promise<unknown>): Promise<ErrorCode | 'no error' | 'not an IqpError'> {
  try {
    await fn();
    return 'no error';
  } catch (err) {
    return isIqpError(err) ? err.code : 'not an IqpError';
  }
}

/** minisign 0.11 prints key ids with %PRIX64 (no zero padding); iqp always prints 16 digits. */
function padKeyId(printed: string): string {
  return printed.padStart(16, '0');
}

/** Rewrites the base64 blob on line `index` of a minisign file. */
function mutateBlob(text: string, index: number, mutate: (b: Buffer) => void): string {
  const lines = text.split('\n');
  const blob = Buffer.from(lines[index]!, 'base64');
  mutate(blob);
  lines[index] = blob.toString('base64');
  return lines.join('\n');
}

const message = Buffer.from('{"format":1,"package_id":"quran.test"}\n', 'utf8');
const comment = 'iqp-pack package_id=quran.test version=1.0.0 ✓\ttabbed';

describe('iqp keys, verified by minisign', () => {
  it('an unencrypted iqp key signs; minisign -V verifies with the default and an explicit sig path', async () => {
    const dir = tempDir();
    const key = await parseSecretKey(await formatSecretKeyFile(generateKeyPair(), null), null);
    writeFileSync(join(dir, 'pub'), formatPublicKeyFile(key));
    writeFileSync(join(dir, 'm'), message);
    const sig = sign(message, key, comment);
    writeFileSync(join(dir, 'm.minisig'), sig);
    writeFileSync(join(dir, 'other.sig'), sig);
    const out = minisignOk(['-V', '-p', join(dir, 'pub'), '-m', join(dir, 'm')]);
    expect(out).toContain(`Trusted comment: ${comment}\n`);
    expect(minisignOk(['-V', '-Q', '-p', join(dir, 'pub'), '-m', join(dir, 'm'), '-x', join(dir, 'other.sig')])).toBe(`${comment}\n`);
    expect(minisignOk(['-V', '-q', '-P', formatPublicKeyFile(key).split('\n')[1]!, '-m', join(dir, 'm')])).toBe('');
    expect(verify(message, sig, [key])).toEqual({ keyId: key.keyId, trustedComment: comment });
  });

  it('an encrypted iqp key (small KDF) reloads with its passphrase and signs what minisign verifies', async () => {
    const dir = tempDir();
    const original = generateKeyPair();
    const file = await formatSecretKeyFile(original, 'correct horse', FAST_KDF);
    expect(secretKeyIsEncrypted(file)).toBe(true);
    const key = await parseSecretKey(file, 'correct horse');
    expect(key).toEqual(original);
    writeFileSync(join(dir, 'pub'), formatPublicKeyFile(key));
    writeFileSync(join(dir, 'm'), message);
    writeFileSync(join(dir, 'm.minisig'), sign(message, key, comment));
    expect(minisignOk(['-V', '-Q', '-p', join(dir, 'pub'), '-m', join(dir, 'm')])).toBe(`${comment}\n`);
  });

  it('minisign reports the same key id as iqp', () => {
    const dir = tempDir();
    const [a, b] = [generateKeyPair(), generateKeyPair()];
    writeFileSync(join(dir, 'pub'), formatPublicKeyFile(b));
    writeFileSync(join(dir, 'm'), message);
    writeFileSync(join(dir, 'm.minisig'), sign(message, a, comment));
    const r = minisign(['-V', '-p', join(dir, 'pub'), '-m', join(dir, 'm')]);
    expect(r.status).toBe(1);
    const ids = [...r.stderr.matchAll(/ is ([0-9A-F]+)/g)].map((m) => padKeyId(m[1]!));
    expect(ids).toEqual([a.keyId, b.keyId]);
  });

  it('minisign -S signs with an iqp-made key, unencrypted or encrypted with the params stored in the file', async () => {
    const dir = tempDir();
    const key = generateKeyPair();
    writeFileSync(join(dir, 'plain.key'), await formatSecretKeyFile(key, null));
    writeFileSync(join(dir, 'enc.key'), await formatSecretKeyFile(key, 'pw ü', FAST_KDF));
    writeFileSync(join(dir, 'm'), message);
    minisignOk(['-S', '-s', join(dir, 'plain.key'), '-m', join(dir, 'm'), '-x', join(dir, 'a.sig'), '-t', comment]);
    expect(verify(message, readFileSync(join(dir, 'a.sig'), 'utf8'), [key])).toEqual({ keyId: key.keyId, trustedComment: comment });
    // Decryption only succeeds if minisign derives with N=2^10 from the stored limits, not its defaults.
    minisignOk(['-S', '-s', join(dir, 'enc.key'), '-m', join(dir, 'm'), '-x', join(dir, 'b.sig'), '-t', comment], 'pw ü\n');
    expect(verify(message, readFileSync(join(dir, 'b.sig'), 'utf8'), [key]).trustedComment).toBe(comment);
    const wrong = minisign(['-S', '-s', join(dir, 'enc.key'), '-m', join(dir, 'm'), '-x', join(dir, 'c.sig')], 'nope\n');
    expect(wrong.status).not.toBe(0);
    expect(wrong.stderr).toContain('Wrong password');
    // Legacy (non-prehashed) signatures still verify.
    minisignOk(['-S', '-l', '-s', join(dir, 'plain.key'), '-m', join(dir, 'm'), '-x', join(dir, 'l.sig'), '-t', comment]);
    const legacy = parseSignature(readFileSync(join(dir, 'l.sig'), 'utf8'));
    expect(legacy.algorithm).toBe('Ed');
    expect(verify(message, legacy, [key]).trustedComment).toBe(comment);
    expect(codeOf(() => verify(Buffer.from('other'), legacy, [key]))).toBe('IQP_E_SIG_INVALID');
  });

  it('a key encrypted with the full minisign KDF stores minisign’s limits and decrypts in minisign', async () => {
    const dir = tempDir();
    const key = generateKeyPair();
    const file = await formatSecretKeyFile(key, 'pass');
    const blob = Buffer.from(file.split('\n')[1]!, 'base64');
    expect(blob.subarray(0, 6).toString('latin1')).toBe('EdScB2');
    expect(blob.readBigUInt64LE(38)).toBe(BigInt(MINISIGN_KDF_DEFAULTS.opslimit));
    expect(blob.readBigUInt64LE(46)).toBe(BigInt(MINISIGN_KDF_DEFAULTS.memlimit));
    writeFileSync(join(dir, 'k'), file);
    writeFileSync(join(dir, 'm'), message);
    minisignOk(['-S', '-s', join(dir, 'k'), '-m', join(dir, 'm'), '-t', comment], 'pass\n');
    expect(verify(message, readFileSync(join(dir, 'm.minisig'), 'utf8'), [key]).trustedComment).toBe(comment);
  }, SLOW);
});

describe('minisign keys, used by iqp', () => {
  it('a `minisign -G -W` key loads without a passphrase, signs, and both tools verify; key ids agree', async () => {
    const dir = tempDir();
    const out = minisignOk(['-G', '-W', '-p', join(dir, 'pub'), '-s', join(dir, 'key')]);
    const pubText = readFileSync(join(dir, 'pub'), 'utf8');
    const printedId = /minisign public key ([0-9A-F]+)/.exec(pubText)![1]!;
    const keyText = readFileSync(join(dir, 'key'), 'utf8');
    expect(secretKeyIsEncrypted(keyText)).toBe(false);
    const key = await parseSecretKey(keyText, null);
    const pub = parsePublicKey(pubText);
    expect(key.keyId).toBe(padKeyId(printedId));
    expect(pub).toEqual({ keyId: key.keyId, keynum: key.keynum, publicKey: key.publicKey });
    // The bare base64 line minisign prints for -P parses to the same key.
    expect(parsePublicKey(/-P (\S+)/.exec(out)![1]!)).toEqual(pub);
    writeFileSync(join(dir, 'm'), message);
    const sig = sign(message, key, comment);
    writeFileSync(join(dir, 'm.minisig'), sig);
    expect(minisignOk(['-V', '-Q', '-p', join(dir, 'pub'), '-m', join(dir, 'm')])).toBe(`${comment}\n`);
    expect(verify(message, sig, [pub])).toEqual({ keyId: pub.keyId, trustedComment: comment });
  });

  it('a passphrase-protected minisign key loads with the passphrase and signs what both tools verify', async () => {
    const dir = tempDir();
    minisignOk(['-G', '-p', join(dir, 'pub'), '-s', join(dir, 'key')], 'pass\npass\n');
    const keyText = readFileSync(join(dir, 'key'), 'utf8');
    expect(secretKeyIsEncrypted(keyText)).toBe(true);
    expect(await asyncCodeOf(() => parseSecretKey(keyText, null))).toBe('IQP_E_PASSPHRASE_REQUIRED');
    const key = await parseSecretKey(keyText, 'pass');
    const pub = parsePublicKey(readFileSync(join(dir, 'pub'), 'utf8'));
    expect(key.keyId).toBe(pub.keyId);
    writeFileSync(join(dir, 'm'), message);
    const sig = sign(message, key, comment);
    writeFileSync(join(dir, 'm.minisig'), sig);
    expect(minisignOk(['-V', '-Q', '-p', join(dir, 'pub'), '-m', join(dir, 'm')])).toBe(`${comment}\n`);
    expect(verify(message, sig, [pub]).keyId).toBe(pub.keyId);
  }, SLOW);
});

describe('failures', () => {
  const key = generateKeyPair();
  const sig = sign(message, key, comment);

  it('a wrong passphrase is IQP_E_KEY_PASSPHRASE and the error carries no secret', async () => {
    const file = await formatSecretKeyFile(key, 'right', FAST_KDF);
    const err = await parseSecretKey(file, 'wrong').catch((e: unknown) => e);
    expect(isIqpError(err, 'IQP_E_KEY_PASSPHRASE')).toBe(true);
    const shown = JSON.stringify(err) + String((err as Error).message);
    for (const secret of ['right', 'wrong', key.seed.toString('hex'), key.seed.toString('base64')]) expect(shown).not.toContain(secret);
  });

  it('tampering with the message, signature, trusted comment or global signature is IQP_E_SIG_INVALID', () => {
    const tampered = {
      message: () => verify(Buffer.concat([message, Buffer.from(' ')]), sig, [key]),
      signature: () => verify(message, mutateBlob(sig, 1, (b) => void (b[40] = b[40]! ^ 1)), [key]),
      trustedComment: () => verify(message, sig.replace('version=1.0.0', 'version=1.0.1'), [key]),
      globalSignature: () => verify(message, mutateBlob(sig, 3, (b) => void (b[0] = b[0]! ^ 0x80)), [key]),
      algorithm: () => verify(message, mutateBlob(sig, 1, (b) => void b.write('Ed', 0, 'latin1')), [key]),
    };
    for (const [what, fn] of Object.entries(tampered)) expect([what, codeOf(fn)]).toEqual([what, 'IQP_E_SIG_INVALID']);
    // The untrusted comment is not signed, by design.
    expect(verify(message, sig.replace(/^untrusted comment: .*$/m, 'untrusted comment: anything'), [key]).trustedComment).toBe(comment);
  });

  it('minisign agrees that a changed trusted comment fails', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'pub'), formatPublicKeyFile(key));
    writeFileSync(join(dir, 'm'), message);
    writeFileSync(join(dir, 'm.minisig'), sig.replace('version=1.0.0', 'version=1.0.1'));
    const r = minisign(['-V', '-p', join(dir, 'pub'), '-m', join(dir, 'm')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('Comment signature verification failed');
  });

  it('a signature by another key is IQP_E_SIG_UNTRUSTED_KEY; a forged key id is IQP_E_SIG_INVALID', () => {
    const other = generateKeyPair();
    expect(codeOf(() => verify(message, sig, [other]))).toBe('IQP_E_SIG_UNTRUSTED_KEY');
    expect(codeOf(() => verify(message, sig, []))).toBe('IQP_E_SIG_UNTRUSTED_KEY');
    expect(codeOf(() => verify(message, sig, [{ ...other, keynum: key.keynum, keyId: key.keyId }]))).toBe('IQP_E_SIG_INVALID');
    expect(verify(message, sig, [other, key]).keyId).toBe(key.keyId);
  });

  const [l0, l1, l2, l3] = sig.trimEnd().split('\n') as [string, string, string, string];
  const malformedSignatures: Record<string, string> = {
    empty: '',
    'three lines': `${l0}\n${l1}\n${l2}\n`,
    'five lines': `${sig}extra\n`,
    'blank line at the end': `${sig}\n`,
    'no untrusted prefix': `${l0.replace('untrusted comment: ', 'comment: ')}\n${l1}\n${l2}\n${l3}\n`,
    'no trusted prefix': `${l0}\n${l1}\n${l2.replace('trusted comment: ', 'trusted: ')}\n${l3}\n`,
    'lines swapped': `${l0}\n${l2}\n${l1}\n${l3}\n`,
    'bad base64 character': `${l0}\n${l1.slice(0, -2)}*=\n${l2}\n${l3}\n`,
    'base64 with spaces': `${l0}\n ${l1}\n${l2}\n${l3}\n`,
    'unpadded base64': `${l0}\n${l1}\n${l2}\n${l3.replace(/=+$/, '')}\n`,
    'short signature': `${l0}\n${Buffer.from(l1, 'base64').subarray(0, 73).toString('base64')}\n${l2}\n${l3}\n`,
    'long global signature': `${l0}\n${l1}\n${l2}\n${Buffer.concat([Buffer.from(l3, 'base64'), Buffer.alloc(1)]).toString('base64')}\n`,
    'unknown algorithm': mutateBlob(sig, 1, (b) => void b.write('Ex', 0, 'latin1')),
    'stray carriage return': `${l0}\n${l1}\n${l2}\rmore\n${l3}\n`,
    'NUL in the trusted comment': `${l0}\n${l1}\n${l2}\0\n${l3}\n`,
    'trusted comment too long': `${l0}\n${l1}\n${l2}${'x'.repeat(8200)}\n${l3}\n`,
    'a public key': formatPublicKeyFile(key),
  };
  it.each(Object.entries(malformedSignatures))('signature file with %s is IQP_E_SIG_MALFORMED', (_name, text) => {
    expect(codeOf(() => parseSignature(text))).toBe('IQP_E_SIG_MALFORMED');
    expect(codeOf(() => verify(message, text, [key]))).toBe('IQP_E_SIG_MALFORMED');
  });

  it('CRLF line ends and a missing final newline are accepted', () => {
    expect(verify(message, sig.replace(/\n/g, '\r\n'), [key]).trustedComment).toBe(comment);
    expect(verify(message, sig.trimEnd(), [key]).trustedComment).toBe(comment);
    expect(parsePublicKey(formatPublicKeyFile(key).replace(/\n/g, '\r\n')).keyId).toBe(key.keyId);
  });

  it('malformed public keys are IQP_E_KEY_INVALID', () => {
    const pubText = formatPublicKeyFile(key);
    const b64 = pubText.split('\n')[1]!;
    const bad = {
      empty: '',
      garbage: 'hello world',
      'a signature': sig,
      'no comment prefix': `minisign public key\n${b64}\n`,
      'three lines': `${pubText}${b64}\n`,
      'wrong algorithm': mutateBlob(pubText, 1, (b) => void b.write('ED', 0, 'latin1')),
      truncated: `untrusted comment: x\n${b64.slice(0, 52)}\n`,
      'surrounding spaces': ` ${b64} `,
    };
    for (const [what, text] of Object.entries(bad)) expect([what, codeOf(() => parsePublicKey(text))]).toEqual([what, 'IQP_E_KEY_INVALID']);
  });

  it('malformed secret keys are IQP_E_KEY_INVALID', async () => {
    const plain = await formatSecretKeyFile(key, null);
    const bad = {
      'a public key': formatPublicKeyFile(key),
      'a signature': sig,
      'wrong signature algorithm': mutateBlob(plain, 1, (b) => void b.write('ED', 0, 'latin1')),
      'unknown kdf': mutateBlob(plain, 1, (b) => void b.write('Ar', 2, 'latin1')),
      'unknown checksum': mutateBlob(plain, 1, (b) => void b.write('B3', 4, 'latin1')),
      truncated: plain.slice(0, -10),
      'bad checksum': mutateBlob(plain, 1, (b) => void (b[157] = b[157]! ^ 1)),
      'seed not matching the public key': mutateBlob(plain, 1, (b) => {
        b[70] = b[70]! ^ 1;
        b.fill(0, 126); // a zero checksum is skipped, so the seed check must catch this
      }),
      // 2^40 bytes of scrypt memory: refused before any derivation is attempted.
      'excessive KDF limits': mutateBlob(plain, 1, (b) => {
        b.write('Sc', 2, 'latin1');
        b.writeBigUInt64LE(2n ** 40n, 38);
        b.writeBigUInt64LE(2n ** 40n, 46);
      }),
    };
    for (const [what, text] of Object.entries(bad)) {
      expect([what, await asyncCodeOf(() => parseSecretKey(text, 'pw'))]).toEqual([what, 'IQP_E_KEY_INVALID']);
    }
    expect(codeOf(() => secretKeyIsEncrypted(formatPublicKeyFile(key)))).toBe('IQP_E_KEY_INVALID');
    // Like `minisign -W`, an all-zero checksum on an unencrypted key is accepted.
    const zeroChk = mutateBlob(plain, 1, (b) => void b.fill(0, 126));
    expect(await parseSecretKey(zeroChk, null)).toEqual(key);
  });

  it('comments that minisign could not read back are refused when signing', () => {
    expect(codeOf(() => sign(message, key, 'two\nlines'))).toBe('IQP_E_USAGE');
    expect(codeOf(() => sign(message, key, 'cr\r'))).toBe('IQP_E_USAGE');
    expect(codeOf(() => sign(message, key, 'x'.repeat(8200)))).toBe('IQP_E_USAGE');
    expect(codeOf(() => sign(message, key, 'ok', 'untrusted\nsplit'))).toBe('IQP_E_USAGE');
  });
});

describe('determinism and round trips', () => {
  it('the same message, key and comments give identical bytes', async () => {
    const key: SecretKey = await parseSecretKey(await formatSecretKeyFile(generateKeyPair(), null), null);
    const a = sign(message, key, comment);
    expect(sign(Buffer.from(message), { ...key }, comment)).toBe(a);
    expect(formatPublicKeyFile(key)).toBe(formatPublicKeyFile(parsePublicKey(formatPublicKeyFile(key))));
    expect(a.split('\n')[0]).toBe(`untrusted comment: signature from iqp secret key ${key.keyId}`);
    expect(sign(message, key, comment, 'custom')).toMatch(/^untrusted comment: custom\n/);
    const parsed = parseSignature(a);
    expect(parsed).toMatchObject({ algorithm: 'ED', keyId: key.keyId, trustedComment: comment });
    expect(parsed.keynum.equals(key.keynum)).toBe(true);
    expect(key.keyId).toMatch(/^[0-9A-F]{16}$/);
  });
});
