/**
 * Which address a rate limit counts: an IPv6 client by its /64 (one home or phone gets a whole
 * /64 and may use any address in it), an IPv4 client, however it is written, by its address.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { addressKey } from '../../plugins/auth/client-address.js';
import { type AuthHarness, authHarness, PASSWORD } from './support.js';

let h: AuthHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** A sign-in from `from` as the proxy in front of the registry names it (trust_proxy 1). */
async function login(from: string, email: string, password: string): Promise<number> {
  const res = await fetch(`${h!.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from }, body: JSON.stringify({ email, password }) });
  await res.arrayBuffer();
  return res.status;
}

/** A registry behind one proxy (trust_proxy 1) with three tries per (email, client), `perIp` requests per client, and ann's account. */
async function behindProxy(perIp: number): Promise<AuthHarness> {
  const rate_limits = { per_ip: { points: perIp, duration_s: 900 }, per_email_ip: { points: 3, duration_s: 900 }, mail_per_email: { points: 5, duration_s: 3600 } };
  const harness = await authHarness({ config: { rate_limits }, trustProxy: 1 });
  await harness.admin.createUser({ email: 'ann@example.org', password: PASSWORD }, 'cli:test');
  return harness;
}

describe('rate-limit addresses', () => {
  it('counts every address of one IPv6 /64 as one client: rotating through it gains no password guesses', async () => {
    h = await behindProxy(6);
    for (const from of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:DB8:1:2:abcd::3']) expect(await login(from, 'ann@example.org', 'wrong-guess')).toBe(401);
    // per_email_ip: ann's three tries from the /64 are spent, whichever address in it asks next.
    expect(await login('2001:db8:1:2:ffff:ffff:ffff:ffff', 'ann@example.org', PASSWORD)).toBe(429);
    // per_ip: the /64's six requests in all.
    for (const email of ['bob@example.org', 'carl@example.org']) expect(await login(`2001:db8:1:2::${email.length}`, email, 'wrong-guess')).toBe(401);
    expect(await login('2001:db8:1:2::99', 'dora@example.org', 'wrong-guess')).toBe(429);
    // The next /64 is another client.
    expect(await login('2001:db8:1:3::1', 'ann@example.org', PASSWORD)).toBe(200);
  });

  it('counts an IPv4 client by its address, written plainly or IPv4-mapped', async () => {
    h = await behindProxy(100);
    for (const from of ['198.51.100.7', '::ffff:198.51.100.7', '::FFFF:c633:6407']) expect(await login(from, 'ann@example.org', 'wrong-guess')).toBe(401);
    expect(await login('198.51.100.7', 'ann@example.org', PASSWORD)).toBe(429);
    // The neighbouring address is another client: an IPv4 address is not shared the way a /64 is.
    expect(await login('198.51.100.8', 'ann@example.org', PASSWORD)).toBe(200);
  });

  it('keys odd and hostile spellings of one client alike, and other clients apart', () => {
    const same = (xs: string[]) => expect(new Set(xs.map(addressKey)).size, xs.join(' ')).toBe(1);
    same(['2001:db8:1:2::1', '2001:DB8:1:2::1', '2001:0db8:0001:0002:0000:0000:0000:0001', '2001:db8:1:2:ffff::', '2001:db8:1:2::1.2.3.4', '2001:db8:1:2::1%eth0']);
    same(['fe80::1%eth0', 'fe80::2%eth1', 'FE80::1', 'fe80:0:0:0:1:2:3:4%25']);
    same(['::', '::1', '0:0:0:0:1::']);
    same(['192.0.2.1', '::ffff:192.0.2.1', '::FFFF:C000:201', '0:0:0:0:0:ffff:192.0.2.1']);
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    const apart = ['2001:db8:1:2::1', '2001:db8:1:3::1', '2001:db8:1::1', '2001:db9:1:2::1', '192.0.2.1', '192.0.2.2', '::192.0.2.1', '64:ff9b::192.0.2.1', 'not-an-address', ''];
    expect(new Set(apart.map(addressKey)).size).toBe(apart.length);
    // What is not an address stays itself (a misconfigured proxy's text), never merged into a network.
    expect(addressKey('2001:db8:1:2::1::2')).toBe('2001:db8:1:2::1::2');
  });
});
