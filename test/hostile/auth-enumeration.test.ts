/**
 * Account enumeration and brute force: unknown and known emails get the same status, body and
 * headers in the same time; limits per (email, IP) and per IP answer 429 with Retry-After the
 * same way whether the account exists, lift when their window ends, and never lock an account
 * out from another address.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuthHarness, authHarness, PASSWORD, post } from '../auth/support.js';
import { until } from '../server/helpers.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** Status, body text and headers (without Date, which differs by the clock alone). */
async function answer(path: string, body: unknown, localAddress = '127.0.0.1') {
  const u = new URL(`${h!.url}${path}`);
  return new Promise<{ status: number; text: string; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const { date: _date, ...headers } = res.headers;
        resolve({ status: res.statusCode!, text, headers });
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * q)]!;

describe('enumeration', () => {
  it('answers an unknown email and a wrong password identically, in the same time (200 samples)', async () => {
    h = await authHarness();
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    const unknown = await answer('/login', { email: 'nobody@example.org', password: 'wrong-password-1' });
    const wrong = await answer('/login', { email: 'ann@example.org', password: 'wrong-password-1' });
    expect(unknown.status).toBe(401);
    expect(wrong).toEqual(unknown);

    const times: Record<'unknown' | 'wrong', number[]> = { unknown: [], wrong: [] };
    for (let i = 0; i < 100; i++) {
      // Interleaved, so drift in the machine's load falls on both alike.
      for (const kind of i % 2 ? (['unknown', 'wrong'] as const) : (['wrong', 'unknown'] as const)) {
        const t0 = process.hrtime.bigint();
        await answer('/login', { email: kind === 'unknown' ? `nobody${i}@example.org` : 'ann@example.org', password: `wrong-password-${i}` });
        times[kind].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    // Noise: the spread within each kind (their interquartile ranges), not between them.
    const iqr = (xs: number[]) => quantile(xs, 0.75) - quantile(xs, 0.25);
    const noise = Math.max(iqr(times.unknown), iqr(times.wrong), 2);
    const diff = Math.abs(median(times.unknown) - median(times.wrong));
    console.log(`login medians: unknown ${median(times.unknown).toFixed(1)} ms, wrong password ${median(times.wrong).toFixed(1)} ms, difference ${diff.toFixed(1)} ms, noise (IQR) ${noise.toFixed(1)} ms`);
    expect(diff).toBeLessThan(noise);
  });

  it('answers register with a taken email like a new one, and mails the owner instead', async () => {
    h = await authHarness();
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    const taken = await answer('/register', { email: 'ann@example.org', password: 'another-passphrase' });
    const fresh = await answer('/register', { email: 'new@example.org', password: 'another-passphrase' });
    expect(taken).toEqual(fresh);
    expect(taken.status).toBe(202);
    const mails = await h.admin.readOutbox();
    expect(mails.find((m) => m.to === 'ann@example.org')?.subject).toMatch(/tried to create an account/);
    expect(mails.find((m) => m.to === 'new@example.org')?.subject).toMatch(/verification code/);
    // The taken account is untouched: its password still works, the other one does not.
    expect((await post(`${h.url}/login`, { email: 'ann@example.org', password: 'another-passphrase' })).status).toBe(401);
    expect((await post(`${h.url}/login`, { email: 'ann@example.org', password: PASSWORD })).status).toBe(200);
  });

  it('answers reset and resend requests the same for known, unknown and verified addresses', async () => {
    h = await authHarness();
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    for (const path of ['/password-reset/request', '/resend-verification']) {
      const known = await answer(path, { email: 'ann@example.org' });
      const unknown = await answer(path, { email: 'nobody@example.org' });
      expect(known).toEqual(unknown);
      expect(known.status).toBe(202);
    }
    const mails = await h.admin.readOutbox();
    expect(mails.map((m) => m.to)).toEqual(['ann@example.org']); // the reset; ann is verified, so no new verification
  });
});

// The registry's limiter counts real seconds (rate-limiter-flexible in its database), so these
// windows are short and the tests wait for a window's end by polling, as a client honouring
// Retry-After would.
describe('rate limits', () => {
  const limits = { per_ip: { points: 30, duration_s: 60 }, per_email_ip: { points: 3, duration_s: 2 }, mail_per_email: { points: 5, duration_s: 3600 } };

  it('limits tries per (email, IP) with the same 429 whether the account exists, lifts after the window, and never locks the account from another address', async () => {
    h = await authHarness({ config: { rate_limits: limits } });
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    for (let i = 0; i < 3; i++) {
      expect((await answer('/login', { email: 'ann@example.org', password: 'wrong-password' })).status).toBe(401);
      expect((await answer('/login', { email: 'nobody@example.org', password: 'wrong-password' })).status).toBe(401);
    }
    const known = await answer('/login', { email: 'ann@example.org', password: PASSWORD });
    const unknown = await answer('/login', { email: 'nobody@example.org', password: 'wrong-password' });
    expect(known.status).toBe(429);
    expect(known).toEqual(unknown);
    expect(JSON.parse(known.text).error.code).toBe('IQP_E_RATE_LIMITED');
    expect(Number(known.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(known.headers['retry-after'])).toBeLessThanOrEqual(2);
    // From another address the owner still signs in.
    expect((await answer('/login', { email: 'ann@example.org', password: PASSWORD }, '127.0.0.2')).status).toBe(200);
    // Another email from the limited address is not blocked by ann's limit.
    expect((await answer('/login', { email: 'carl@example.org', password: 'wrong-password' })).status).toBe(401);
    expect(await until(async () => (await answer('/login', { email: 'ann@example.org', password: PASSWORD })).status === 200, 5000, 100)).toBe(true);
  });

  it('limits everything from one IP, and lifts it when the window ends', async () => {
    h = await authHarness({ config: { rate_limits: { ...limits, per_ip: { points: 5, duration_s: 2 } } } });
    for (let i = 0; i < 5; i++) expect((await answer('/password-reset/request', { email: `p${i}@example.org` })).status).toBe(202);
    const limited = await answer('/login', { email: 'x@example.org', password: 'wrong-password' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(2);
    expect((await answer('/refresh', { refresh_token: 'x' })).status).toBe(429);
    // A reset confirm is counted before anything else is judged or hashed: flooding it costs no password hashes.
    for (const password of ['password1', 'a-strong-new-passphrase']) {
      expect((await answer('/password-reset/confirm', { email: 'x@example.org', code: '123456', password })).status).toBe(429);
    }
    expect((await answer('/login', { email: 'x@example.org', password: 'wrong-password' }, '127.0.0.3')).status).toBe(401);
    expect(await until(async () => (await answer('/login', { email: 'x@example.org', password: 'wrong-password' })).status === 401, 5000, 100)).toBe(true);
  });

  it('caps the mails one address receives, answering the same past the cap', async () => {
    h = await authHarness({ config: { rate_limits: { ...limits, per_email_ip: { points: 100, duration_s: 900 }, mail_per_email: { points: 2, duration_s: 3600 } } } });
    await h.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await answer('/password-reset/request', { email: 'ann@example.org' }));
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(await h.admin.readOutbox()).toHaveLength(2);
  });
});
