/**
 * Passwords: argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1) in PHC strings, rehashed at
 * sign-in when the parameters change; 8 to 1,024 characters, never truncated (the cap stops hash
 * flooding); the most common ones refused.
 *
 * A password is hashed and checked in Unicode NFC (as NIST SP 800-63B asks): the same word typed on
 * another device may arrive in another form (é as one code point or as e and an accent; Arabic
 * shadda and fatha in either order), and must sign in all the same. Hashes made before this from a
 * password that was not in NFC are still accepted for that password as it was typed, and replaced
 * by the NFC hash at that sign-in.
 */
import { type Algorithm, hash, type Options, parseOptions, verify } from '@node-rs/argon2';
import common from './common-passwords.json' with { type: 'json' };
import { HashGate } from './gate.js';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 1024;

const ARGON2ID = 2 as Algorithm;
export const HASH_OPTIONS: Options = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 };

const COMMON = new Set(common.passwords);

/** Why a new password is refused, or null when it is acceptable. Length counts characters, not UTF-16 units. */
export function passwordProblem(typed: string, email?: string): string | null {
  const password = typed.normalize('NFC');
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `The password needs at least ${PASSWORD_MIN} characters.`;
  if (length > PASSWORD_MAX) return `The password may have at most ${PASSWORD_MAX} characters.`;
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return 'The password is one of the most common ones; choose another.';
  if (email && lower === email.toLowerCase()) return 'The password may not be the email address.';
  return null;
}

export type Verified = { ok: false } | { ok: true; rehash: string | null };

export class Passwords {
  private readonly gate: HashGate;
  /** Verified against for unknown accounts, so they cost the same time as known ones. */
  private dummy: Promise<string> | null = null;

  constructor(concurrency: number, queue: number) {
    this.gate = new HashGate(concurrency, queue);
  }

  /** null: too many hashes in flight (answer 503). */
  async hash(password: string): Promise<string | null> {
    const r = await this.gate.run(() => hash(password.normalize('NFC'), HASH_OPTIONS));
    return r ? r.value : null;
  }

  /**
   * Checks a password against a stored hash, or against a dummy hash when there is none (unknown
   * account, Google-only account): the same work either way. null: too busy.
   */
  async verify(stored: string | null, password: string): Promise<Verified | null> {
    // A password past the cap never reaches argon2 (hash flooding) whichever account it names.
    const within = password.length <= PASSWORD_MAX * 4;
    this.dummy ??= hash('dummy password for unknown accounts', HASH_OPTIONS);
    const against = stored ?? (await this.dummy);
    const normal = within ? password.normalize('NFC') : '';
    // The NFC form first; the form as typed only when it differs (a hash made before normalization).
    // Unknown accounts try the same forms against the dummy: the same work either way.
    const forms = within && normal !== password ? [normal, password] : [normal];
    for (const [i, form] of forms.entries()) {
      const r = await this.gate.run(async () => {
        try {
          return within && (await verify(against, form));
        } catch {
          return false; // a stored hash argon2 cannot parse: refused like a wrong password
        }
      });
      if (!r) return null;
      if (!r.value) continue;
      if (stored === null) return { ok: false };
      // Signed in with the form as typed: its hash is replaced by the NFC one.
      return { ok: true, rehash: i > 0 || needsRehash(stored) ? await this.hash(password) : null };
    }
    return { ok: false };
  }
}

/** Whether a stored hash was made with other parameters than today's. */
export function needsRehash(stored: string): boolean {
  try {
    const p = parseOptions(stored);
    return p.algorithm !== ARGON2ID || p.memoryCost !== HASH_OPTIONS.memoryCost || p.timeCost !== HASH_OPTIONS.timeCost || p.parallelism !== HASH_OPTIONS.parallelism;
  } catch {
    return true;
  }
}
