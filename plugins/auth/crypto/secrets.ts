/**
 * The plugin's server secret (the HMAC key of refresh successors and mail codes, and the root of
 * the key that encrypts private signing keys) and the hashing and comparing of opaque secrets.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync } from 'node:fs';
import { writeTemp } from '../temp-file.js';
import { join } from 'node:path';

/** The secret's length; the configured `secret` and server.key hold exactly this many bytes. */
export const SECRET_BYTES = 32;

/**
 * The configured `secret` (the config schema checked its form: 32 bytes in base64 or base64url,
 * so server.key's contents and `openssl rand -base64 32` both fit) when there is one; else
 * `<dataDir>/server.key`, which only this machine has. `dataDir` is read only when needed, so a
 * configured secret leaves the data directory alone.
 */
export function authSecret(configured: string | undefined, dataDir: () => string): Buffer {
  if (configured === undefined) return serverSecret(dataDir());
  // Node's base64 decoder reads both alphabets and the padding.
  const key = Buffer.from(configured, 'base64');
  if (key.length !== SECRET_BYTES) throw new Error(`the auth plugin's secret is not ${SECRET_BYTES} bytes in base64 or base64url`);
  return key;
}

/**
 * Reads `<dataDir>/server.key`, creating it on first use (32 random bytes, mode 0600). Two
 * processes starting at once: the second one's link() fails and it reads the first one's key.
 */
export function serverSecret(dataDir: string): Buffer {
  const path = join(dataDir, 'server.key');
  try {
    return readKey(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = writeTemp(dataDir, randomBytes(SECRET_BYTES).toString('base64url'));
  try {
    // link, not rename: rename would replace a key another process made meanwhile.
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readKey(path);
}

function readKey(path: string): Buffer {
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  if (key.length !== SECRET_BYTES) throw new Error(`${path} is not an iqp auth key (32 bytes, base64url)`);
  return key;
}

export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function hmac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

/** Equal-length hex or base64url digests compared in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
