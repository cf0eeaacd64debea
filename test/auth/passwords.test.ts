/** Password rules, argon2id parameters, rehashing and the hashing gate. */
import { hash, parseOptions } from '@node-rs/argon2';
import { afterEach, describe, expect, it } from 'vitest';
import { HashGate } from '../../plugins/auth/crypto/gate.js';
import { HASH_OPTIONS, needsRehash, passwordProblem, Passwords } from '../../plugins/auth/crypto/passwords.js';
import { type AuthHarness, authHarness, post } from './support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('passwords', () => {
  it('takes 8 to 1,024 characters, counted as characters, and refuses common ones whatever their case', () => {
    expect(passwordProblem('a'.repeat(7))).toMatch(/at least 8/);
    expect(passwordProblem('x7#kq2Lm')).toBeNull();
    expect(passwordProblem('😀'.repeat(1024))).toBeNull(); // 2,048 UTF-16 units, 1,024 characters
    expect(passwordProblem('😀'.repeat(1025))).toMatch(/at most 1024/);
    expect(passwordProblem('PassWord123')).toMatch(/most common/);
    expect(passwordProblem('TrustNo1')).toMatch(/most common/);
    expect(passwordProblem('me@example.org', 'Me@Example.org')).toMatch(/email/);
  });

  it('hashes with argon2id at m=19456 KiB, t=2, p=1 in a PHC string, and knows older parameters need a rehash', async () => {
    const p = new Passwords(2, 2);
    const stored = (await p.hash('x7#kq2Lm-long'))!;
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(parseOptions(stored)).toMatchObject({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(needsRehash(stored)).toBe(false);
    const old = await hash('x7#kq2Lm-long', { ...HASH_OPTIONS, memoryCost: 4096 });
    expect(needsRehash(old)).toBe(true);
    expect(await p.verify(old, 'x7#kq2Lm-long')).toMatchObject({ ok: true, rehash: expect.stringMatching(/m=19456/) });
    expect(await p.verify(stored, 'wrong password')).toEqual({ ok: false });
    expect(await p.verify(null, 'x7#kq2Lm-long')).toEqual({ ok: false });
    expect(await p.verify('not a hash', 'x7#kq2Lm-long')).toEqual({ ok: false });
  });

  it('runs at most `concurrency` at once with a short queue, and refuses past it', async () => {
    const gate = new HashGate(1, 1);
    let release!: () => void;
    const blocker = new Promise<void>((r) => (release = r));
    let running = 0;
    let most = 0;
    const job = async () => {
      most = Math.max(most, ++running);
      await blocker;
      running--;
      return 1;
    };
    const first = gate.run(job);
    const second = gate.run(job);
    expect(await gate.run(job)).toBeNull();
    release();
    expect(await first).toEqual({ value: 1 });
    expect(await second).toEqual({ value: 1 });
    expect(most).toBe(1);
  });

  it('rehashes a stored hash with old parameters at sign-in', async () => {
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'old@example.org', password: 'x7#kq2Lm-long' }, 'cli:test');
    const old = await hash('x7#kq2Lm-long', { ...HASH_OPTIONS, memoryCost: 4096, timeCost: 3 });
    await h.db.run('UPDATE auth_users SET password_hash = ? WHERE email = ?', [old, 'old@example.org']);
    const r = await post(`${url}/login`, { email: 'old@example.org', password: 'x7#kq2Lm-long' });
    expect(r.status).toBe(200);
    const row = await h.db.get<{ password_hash: string }>('SELECT password_hash FROM auth_users WHERE email = ?', ['old@example.org']);
    expect(row?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  // س with shadda then fatha, as many Arabic keyboards type it, and with fatha then shadda, as
  // others do (and as NFC orders the two marks): one word, two strings.
  const TYPED = 'كلمة-سر-\u0633\u0651\u064E\u0644\u0627\u0645-2026';
  const OTHER_ORDER = 'كلمة-سر-\u0633\u064E\u0651\u0644\u0627\u0645-2026';

  it('signs in with a password typed on a keyboard that orders its combining marks otherwise (both are NFC-normalized)', async () => {
    expect(TYPED).not.toBe(OTHER_ORDER);
    expect(TYPED.normalize('NFC')).toBe(OTHER_ORDER);
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'amal@example.org', password: TYPED }, 'cli:test');
    expect((await post(`${url}/login`, { email: 'amal@example.org', password: OTHER_ORDER })).status).toBe(200);
    expect((await post(`${url}/login`, { email: 'amal@example.org', password: TYPED })).status).toBe(200);
    // Composed and decomposed é alike; a different password still fails.
    await h.admin.createUser({ email: 'rene@example.org', password: 'Ren\u00e9-river-stone' }, 'cli:test');
    expect((await post(`${url}/login`, { email: 'rene@example.org', password: 'Rene\u0301-river-stone' })).status).toBe(200);
    expect((await post(`${url}/login`, { email: 'rene@example.org', password: 'Rene-river-stone' })).status).toBe(401);
  });

  it('still signs in an account whose hash was made from the password as typed (before normalization), and stores the normalized hash from then on', async () => {
    h = await authHarness();
    const url = h.url;
    await h.admin.createUser({ email: 'amal@example.org', password: 'placeholder-river-stone' }, 'cli:test');
    const asTyped = await hash(TYPED, HASH_OPTIONS);
    await h.db.run('UPDATE auth_users SET password_hash = ? WHERE email = ?', [asTyped, 'amal@example.org']);
    expect((await post(`${url}/login`, { email: 'amal@example.org', password: TYPED })).status).toBe(200);
    const row = await h.db.get<{ password_hash: string }>('SELECT password_hash FROM auth_users WHERE email = ?', ['amal@example.org']);
    expect(row?.password_hash).not.toBe(asTyped);
    // Rehashed from the normalized form: the other keyboard's order now signs in too.
    expect((await post(`${url}/login`, { email: 'amal@example.org', password: OTHER_ORDER })).status).toBe(200);
    expect((await post(`${url}/login`, { email: 'amal@example.org', password: 'wrong-river-stone' })).status).toBe(401);
  });

  it('answers 503 with Retry-After when hashes are queued past the limit, and nothing is written', async () => {
    h = await authHarness({ config: { max_concurrent_hashes: 1, hash_queue: 0 } });
    const url = h.url;
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => post(`${url}/register`, { email: `busy${i}@example.org`, password: `x7#kq2Lm-${i}-long` })),
    );
    const busy = answers.filter((a) => a.status === 503);
    expect(busy.length).toBeGreaterThan(0);
    for (const b of busy) {
      expect(b.body.error.code).toBe('IQP_E_BUSY');
      expect(b.headers.get('retry-after')).toBe('1');
    }
    const accepted = answers.filter((a) => a.status === 202).length;
    expect(busy.length + accepted).toBe(6);
    expect((await h.admin.listUsers()).length).toBe(accepted);
  });
});
