/**
 * minisign-compatible Ed25519 keys and signatures, computed in-process so that `minisign -V` verifies
 * what iqp signs and iqp loads the keys `minisign -G` makes. Layouts follow jedisct1/minisign.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, sign as edSign, timingSafeEqual, verify as edVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { IqpError } from '../errors.js';

export interface PublicKey {
  keyId: string;
  keynum: Buffer;
  publicKey: Buffer;
}
export interface SecretKey extends PublicKey {
  seed: Buffer;
}
export interface KdfParams {
  opslimit: number;
  memlimit: number;
}
export interface ParsedSignature {
  algorithm: 'ED' | 'Ed';
  keyId: string;
  keynum: Buffer;
  signature: Buffer;
  trustedComment: string;
  globalSignature: Buffer;
  untrustedComment: string;
}

/** libsodium's scryptsalsa208sha256 OPSLIMIT/MEMLIMIT_SENSITIVE, which `minisign -G` uses (N=2^20, r=8, p=1). */
export const MINISIGN_KDF_DEFAULTS: KdfParams = Object.freeze({ opslimit: 33554432, memlimit: 1073741824 });

const UNTRUSTED_PREFIX = 'untrusted comment: ';
const TRUSTED_PREFIX = 'trusted comment: ';
const SECRET_KEY_COMMENT = 'minisign encrypted secret key';
const ALG_ED = Buffer.from('Ed', 'latin1');
const KDF_SCRYPT = Buffer.from('Sc', 'latin1');
const KDF_NONE = Buffer.alloc(2);
const CHK_B2 = Buffer.from('B2', 'latin1');
const PUBLIC_BLOB = 42; // alg 2 + keynum 8 + pk 32
const SIG_BLOB = 74; // alg 2 + keynum 8 + sig 64
const SECRET_BLOB = 158; // algs 6 + salt 32 + opslimit 8 + memlimit 8 + keynum_sk 104
const SK_OFF = { kdf: 2, chk: 4, salt: 6, ops: 38, mem: 46, keynumSk: 54 } as const;
const KEYNUM_SK = 104; // keynum 8 + sk 64 (seed ‖ pk) + chk 32
// minisign reads comment lines with fgets into 1024- and 8192-byte buffers; longer lines break it.
const MAX_UNTRUSTED_COMMENT = 1024 - UNTRUSTED_PREFIX.length - 2;
const MAX_TRUSTED_COMMENT = 8192 - TRUSTED_PREFIX.length - 2;
// Bounds on what a key file may ask the KDF for: twice minisign's memory, eight times its work.
const MAX_KDF_MEMORY = 2 * 1024 ** 3;
const MAX_KDF_WORK = 8 * 4 * 2 ** 20 * 8;

export function generateKeyPair(): SecretKey {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const keynum = randomBytes(8);
  return { keyId: keyIdOf(keynum), keynum, publicKey: Buffer.from(jwk.x!, 'base64url'), seed: Buffer.from(jwk.d!, 'base64url') };
}

export function formatPublicKeyFile(key: PublicKey): string {
  checkKeyShape(key);
  const blob = Buffer.concat([ALG_ED, key.keynum, key.publicKey]);
  return `${UNTRUSTED_PREFIX}minisign public key ${keyIdOf(key.keynum)}\n${blob.toString('base64')}\n`;
}

export function parsePublicKey(text: string): PublicKey {
  const lines = splitLines(text);
  let line: string | undefined;
  if (lines?.length === 1) line = lines[0];
  else if (lines?.length === 2 && lines[0]!.startsWith(UNTRUSTED_PREFIX)) line = lines[1];
  const blob = line === undefined ? null : decodeBase64(line, PUBLIC_BLOB);
  if (!blob || !blob.subarray(0, 2).equals(ALG_ED)) throw new IqpError('IQP_E_KEY_INVALID', 'Not a minisign public key.');
  const keynum = Buffer.from(blob.subarray(2, 10));
  const publicKey = Buffer.from(blob.subarray(10));
  try {
    publicKeyObject(publicKey);
  } catch (err) {
    throw new IqpError('IQP_E_KEY_INVALID', 'The public key is not a valid Ed25519 key.', undefined, { cause: err });
  }
  return { keyId: keyIdOf(keynum), keynum, publicKey };
}

export async function formatSecretKeyFile(key: SecretKey, passphrase: string | null, kdf: KdfParams = MINISIGN_KDF_DEFAULTS): Promise<string> {
  checkKeyShape(key);
  if (!derivePublicKey(key.seed).equals(key.publicKey)) throw new IqpError('IQP_E_KEY_INVALID', 'The secret key does not match its public key.');
  const blob = Buffer.alloc(SECRET_BLOB);
  ALG_ED.copy(blob, 0);
  CHK_B2.copy(blob, SK_OFF.chk);
  const sk = Buffer.concat([key.seed, key.publicKey]);
  const keynumSk = Buffer.concat([key.keynum, sk, checksum(key.keynum, sk)]);
  // Unencrypted keys leave salt and limits zero like `minisign -W`, but keep a real checksum (minisign ignores it).
  (passphrase === null ? KDF_NONE : KDF_SCRYPT).copy(blob, SK_OFF.kdf);
  if (passphrase !== null) {
    if (!Number.isSafeInteger(kdf.opslimit) || !Number.isSafeInteger(kdf.memlimit) || kdf.opslimit < 0 || kdf.memlimit < 0) {
      throw new IqpError('IQP_E_USAGE', 'KDF limits must be non-negative integers.');
    }
    randomBytes(32).copy(blob, SK_OFF.salt);
    blob.writeBigUInt64LE(BigInt(kdf.opslimit), SK_OFF.ops);
    blob.writeBigUInt64LE(BigInt(kdf.memlimit), SK_OFF.mem);
    const params = scryptParams(BigInt(kdf.opslimit), BigInt(kdf.memlimit));
    if (!params) throw new IqpError('IQP_E_USAGE', 'Unsupported KDF limits.', { ...kdf });
    const stream = await deriveStream(passphrase, blob.subarray(SK_OFF.salt, SK_OFF.salt + 32), params);
    xorInto(keynumSk, stream);
  }
  keynumSk.copy(blob, SK_OFF.keynumSk);
  sk.fill(0);
  keynumSk.fill(0);
  const text = `${UNTRUSTED_PREFIX}${SECRET_KEY_COMMENT}\n${blob.toString('base64')}\n`;
  blob.fill(0);
  return text;
}

export function secretKeyIsEncrypted(text: string): boolean {
  return readSecretBlob(text).encrypted;
}

export async function parseSecretKey(text: string, passphrase: string | null): Promise<SecretKey> {
  const { blob, encrypted } = readSecretBlob(text);
  const keynumSk = Buffer.from(blob.subarray(SK_OFF.keynumSk));
  if (encrypted) {
    if (passphrase === null) throw new IqpError('IQP_E_PASSPHRASE_REQUIRED');
    const params = scryptParams(blob.readBigUInt64LE(SK_OFF.ops), blob.readBigUInt64LE(SK_OFF.mem));
    if (!params) throw new IqpError('IQP_E_KEY_INVALID', 'The secret key asks for unsupported or excessive KDF limits.');
    xorInto(keynumSk, await deriveStream(passphrase, blob.subarray(SK_OFF.salt, SK_OFF.salt + 32), params));
  }
  blob.fill(0);
  const keynum = Buffer.from(keynumSk.subarray(0, 8));
  const sk = keynumSk.subarray(8, 72);
  const chk = keynumSk.subarray(72, KEYNUM_SK);
  const checksumOk = timingSafeEqual(chk, checksum(keynum, sk));
  try {
    if (encrypted && !checksumOk) throw new IqpError('IQP_E_KEY_PASSPHRASE');
    // `minisign -G -W` writes an all-zero checksum, so an unencrypted key may carry either.
    if (!encrypted && !checksumOk && chk.some((b) => b !== 0)) throw new IqpError('IQP_E_KEY_INVALID', 'The secret key checksum is wrong.');
    const seed = Buffer.from(sk.subarray(0, 32));
    const publicKey = Buffer.from(sk.subarray(32));
    if (!derivePublicKey(seed).equals(publicKey)) throw new IqpError('IQP_E_KEY_INVALID', 'The secret key does not match its public key.');
    return { keyId: keyIdOf(keynum), keynum, publicKey, seed };
  } finally {
    keynumSk.fill(0);
  }
}

export function sign(message: Uint8Array, key: SecretKey, trustedComment: string, untrustedComment?: string): string {
  const untrusted = untrustedComment ?? `signature from iqp secret key ${keyIdOf(key.keynum)}`;
  checkComment(untrusted, MAX_UNTRUSTED_COMMENT, 'untrusted');
  checkComment(trustedComment, MAX_TRUSTED_COMMENT, 'trusted');
  checkKeyShape(key);
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: key.seed.toString('base64url'), x: key.publicKey.toString('base64url') }, format: 'jwk' });
  const signature = edSign(null, prehash(message), privateKey);
  const globalSignature = edSign(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), privateKey);
  const sigBlob = Buffer.concat([Buffer.from('ED', 'latin1'), key.keynum, signature]);
  return `${UNTRUSTED_PREFIX}${untrusted}\n${sigBlob.toString('base64')}\n${TRUSTED_PREFIX}${trustedComment}\n${globalSignature.toString('base64')}\n`;
}

export function parseSignature(text: string): ParsedSignature {
  const malformed = (why: string): IqpError => new IqpError('IQP_E_SIG_MALFORMED', `The signature file is malformed: ${why}.`);
  const lines = splitLines(text);
  if (!lines || lines.length !== 4) throw malformed('expected four lines');
  const [untrustedLine, sigLine, trustedLine, globalLine] = lines as [string, string, string, string];
  if (!untrustedLine.startsWith(UNTRUSTED_PREFIX)) throw malformed(`the first line must start with "${UNTRUSTED_PREFIX}"`);
  if (!trustedLine.startsWith(TRUSTED_PREFIX)) throw malformed(`the third line must start with "${TRUSTED_PREFIX}"`);
  const untrustedComment = untrustedLine.slice(UNTRUSTED_PREFIX.length);
  const trustedComment = trustedLine.slice(TRUSTED_PREFIX.length);
  if (Buffer.byteLength(untrustedComment, 'utf8') > MAX_UNTRUSTED_COMMENT) throw malformed('the untrusted comment is too long');
  if (Buffer.byteLength(trustedComment, 'utf8') > MAX_TRUSTED_COMMENT) throw malformed('the trusted comment is too long');
  const sigBlob = decodeBase64(sigLine, SIG_BLOB);
  if (!sigBlob) throw malformed('the signature line is not base64 of the right length');
  const algorithm = sigBlob.toString('latin1', 0, 2);
  if (algorithm !== 'ED' && algorithm !== 'Ed') throw malformed('unsupported signature algorithm');
  const globalSignature = decodeBase64(globalLine, 64);
  if (!globalSignature) throw malformed('the trusted comment signature is not base64 of the right length');
  const keynum = Buffer.from(sigBlob.subarray(2, 10));
  return { algorithm, keyId: keyIdOf(keynum), keynum, signature: Buffer.from(sigBlob.subarray(10)), trustedComment, globalSignature, untrustedComment };
}

export function verify(message: Uint8Array, signature: string | ParsedSignature, trusted: readonly PublicKey[]): { keyId: string; trustedComment: string } {
  const sig = typeof signature === 'string' ? parseSignature(signature) : signature;
  const keyId = keyIdOf(sig.keynum);
  const candidates = trusted.filter((k) => k.keynum.equals(sig.keynum));
  if (candidates.length === 0) {
    throw new IqpError('IQP_E_SIG_UNTRUSTED_KEY', `The signature was made by key ${keyId}, which is not trusted.`, {
      keyId,
      trustedKeyIds: trusted.map((k) => keyIdOf(k.keynum)),
    });
  }
  const signed = sig.algorithm === 'ED' ? prehash(message) : message;
  const commentSigned = Buffer.concat([sig.signature, Buffer.from(sig.trustedComment, 'utf8')]);
  for (const key of candidates) {
    let pub: KeyObject;
    try {
      pub = publicKeyObject(key.publicKey);
    } catch {
      continue;
    }
    if (!edVerify(null, signed, pub, sig.signature)) continue;
    if (!edVerify(null, commentSigned, pub, sig.globalSignature)) {
      throw new IqpError('IQP_E_SIG_INVALID', 'The trusted comment’s signature does not verify.', { keyId });
    }
    return { keyId, trustedComment: sig.trustedComment };
  }
  throw new IqpError('IQP_E_SIG_INVALID', undefined, { keyId });
}

/** minisign prints the key number as a little-endian u64 in hex; we always zero-pad to 16 digits. */
function keyIdOf(keynum: Buffer): string {
  return keynum.readBigUInt64LE(0).toString(16).toUpperCase().padStart(16, '0');
}

function checkKeyShape(key: PublicKey): void {
  if (key.keynum.length !== 8 || key.publicKey.length !== 32) throw new IqpError('IQP_E_KEY_INVALID', 'Key number or public key has the wrong length.');
  if ('seed' in key && (key as SecretKey).seed.length !== 32) throw new IqpError('IQP_E_KEY_INVALID', 'The secret key seed has the wrong length.');
}

function checkComment(comment: string, maxBytes: number, kind: string): void {
  if (/[\r\n\0]/.test(comment)) throw new IqpError('IQP_E_USAGE', `The ${kind} comment must be a single line without NUL characters.`);
  if (Buffer.byteLength(comment, 'utf8') > maxBytes) throw new IqpError('IQP_E_USAGE', `The ${kind} comment is longer than ${maxBytes} bytes.`);
}

/** Lines of a minisign file: LF or CRLF, one optional final newline; null if a stray CR or NUL appears. */
function splitLines(text: string): string[] | null {
  const body = text.endsWith('\n') ? text.slice(0, text.endsWith('\r\n') ? -2 : -1) : text;
  const lines = body.split(/\r?\n/);
  return lines.some((l) => l.includes('\r') || l.includes('\0')) ? null : lines;
}

/** Canonical, padded standard base64 of exactly `length` bytes (node's decoder alone is too lenient). */
function decodeBase64(line: string, length: number): Buffer | null {
  if (line.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(line)) return null;
  const buf = Buffer.from(line, 'base64');
  return buf.length === length && buf.toString('base64') === line ? buf : null;
}

function readSecretBlob(text: string): { blob: Buffer; encrypted: boolean } {
  const lines = splitLines(text);
  const blob = lines?.length === 2 && lines[0]!.startsWith(UNTRUSTED_PREFIX) ? decodeBase64(lines[1]!, SECRET_BLOB) : null;
  if (!blob) throw new IqpError('IQP_E_KEY_INVALID', 'Not a minisign secret key.');
  const kdf = blob.subarray(SK_OFF.kdf, SK_OFF.kdf + 2);
  if (!blob.subarray(0, 2).equals(ALG_ED) || !blob.subarray(SK_OFF.chk, SK_OFF.chk + 2).equals(CHK_B2)) {
    throw new IqpError('IQP_E_KEY_INVALID', 'The secret key uses an unsupported signature or checksum algorithm.');
  }
  if (!kdf.equals(KDF_SCRYPT) && !kdf.equals(KDF_NONE)) throw new IqpError('IQP_E_KEY_INVALID', 'The secret key uses an unsupported key derivation function.');
  return { blob, encrypted: kdf.equals(KDF_SCRYPT) };
}

/** minisign's prehash of a signed file ("ED"): BLAKE2b-512, which OpenSSL provides. */
function prehash(message: Uint8Array): Buffer {
  return createHash('blake2b512').update(message).digest();
}

/**
 * BLAKE2b with a 32-byte output (libsodium crypto_generichash default), over sig_alg ‖ keynum ‖ sk.
 * OpenSSL has no BLAKE2b-256 (the output length is part of BLAKE2's parameters, not a truncation),
 * so @noble/hashes computes it, loaded only by the key commands that need it: importing it costs
 * every command, iqp verify included, about 2 MiB of memory.
 */
function checksum(keynum: Buffer, sk: Buffer): Buffer {
  const { blake2b } = createRequire(import.meta.url)('@noble/hashes/blake2.js') as typeof import('@noble/hashes/blake2.js');
  return Buffer.from(blake2b(Buffer.concat([ALG_ED, keynum, sk]), { dkLen: 32 }));
}

function publicKeyObject(publicKey: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' });
}

function derivePublicKey(seed: Buffer): Buffer {
  // node derives the public half from `d` and ignores `x`, which the JWK shape still requires.
  const priv = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: '' }, format: 'jwk' });
  return Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x!, 'base64url');
}

type ScryptParams = { N: number; r: number; p: number };

/** libsodium's pickparams for crypto_pwhash_scryptsalsa208sha256; null when the cost is out of bounds. */
function scryptParams(opslimitIn: bigint, memlimit: bigint): ScryptParams | null {
  const opslimit = opslimitIn < 32768n ? 32768n : opslimitIn;
  const r = 8n;
  let p: bigint;
  const maxN = opslimit < memlimit / 32n ? opslimit / (r * 4n) : memlimit / (r * 128n);
  let nLog2 = 1n;
  while (nLog2 < 63n && 1n << nLog2 <= maxN / 2n) nLog2 += 1n;
  if (opslimit < memlimit / 32n) {
    p = 1n;
  } else {
    let maxrp = opslimit / 4n / (1n << nLog2);
    if (maxrp > 0x3fffffffn) maxrp = 0x3fffffffn;
    p = maxrp / r;
  }
  const N = 1n << nLog2;
  if (p < 1n || 128n * r * N > BigInt(MAX_KDF_MEMORY) || 4n * N * r * p > BigInt(MAX_KDF_WORK)) return null;
  return { N: Number(N), r: Number(r), p: Number(p) };
}

function deriveStream(passphrase: string, salt: Buffer, { N, r, p }: ScryptParams): Promise<Buffer> {
  // OpenSSL needs 128·r·(N + p + 2) bytes; the margin covers its bookkeeping.
  const maxmem = 128 * r * (N + p + 2) + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(passphrase, 'utf8'), salt, KEYNUM_SK, { N, r, p, maxmem }, (err, key) => {
      if (err) reject(new IqpError('IQP_E_IO', 'Key derivation failed (not enough memory?).', undefined, { cause: err }));
      else resolve(key);
    });
  });
}

function xorInto(target: Buffer, stream: Buffer): void {
  for (let i = 0; i < target.length; i++) target[i]! ^= stream[i]!;
  stream.fill(0);
}
