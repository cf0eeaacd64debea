/**
 * Private signing keys at rest in the database: AES-256-GCM under a key derived from the server
 * secret with HKDF-SHA256 (its own `info`, so it is never the HMAC key itself), the kid as
 * associated data so a sealed key cannot be moved to another row. Every server holding the same
 * secret opens what any of them sealed; with another secret, open() says null.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const INFO = 'iqp auth: signing-key encryption v1';
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class KeySealer {
  private readonly key: Buffer;

  constructor(secret: Buffer) {
    this.key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), INFO, 32));
  }

  /** `v1.<iv>.<ciphertext>.<tag>`, each part base64url. */
  seal(plaintext: string, kid: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(kid, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, body, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** The plaintext, or null when it was sealed under another secret, for another kid, or is damaged. */
  open(sealed: string, kid: string): string | null {
    const parts = sealed.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) return null;
    const [iv, body, tag] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(kid, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
