/** The plugin's server secret (HMAC key) and the hashing and comparing of opaque secrets. */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync } from 'node:fs';
import { writeTemp } from '../temp-file.js';
import { join } from 'node:path';

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
  const tmp = writeTemp(dataDir, randomBytes(32).toString('base64url'));
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
  if (key.length !== 32) throw new Error(`${path} is not an iqp auth key (32 bytes, base64url)`);
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
