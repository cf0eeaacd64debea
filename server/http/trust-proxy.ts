/**
 * Whether the connection's peer is a proxy the operator trusts (the trust_proxy setting), for the
 * places that read forwarded headers without Express (base-url.ts, on the cached fast path too).
 * It answers as Express's `trust proxy` does for the nearest hop, which is all X-Forwarded-Proto
 * needs: false trusts nobody, a hop count trusts the peer, a list trusts the peers it names.
 */
import { BlockList, isIP } from 'node:net';
import type { TrustProxy } from '../config.js';

/** Express's (proxy-addr's) named ranges. */
const NAMED: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

const family = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 4 ? 'ipv4' : 'ipv6');

function compile(list: readonly string[]): (addr: string) => boolean {
  const blocks = new BlockList();
  for (const item of list.flatMap((x) => NAMED[x] ?? [x])) {
    const [ip, prefix] = item.split('/') as [string, string | undefined];
    if (prefix === undefined) blocks.addAddress(ip, family(ip));
    else blocks.addSubnet(ip, Number(prefix), family(ip));
  }
  // BlockList also matches an IPv4 rule against the IPv4-mapped IPv6 form (::ffff:127.0.0.1).
  return (addr) => isIP(addr) !== 0 && blocks.check(addr, family(addr));
}

const compiled = new WeakMap<readonly string[], (addr: string) => boolean>();

export function trustsPeer(trust: TrustProxy, addr: string | undefined): boolean {
  if (trust === false || addr === undefined) return false;
  if (typeof trust === 'number') return trust > 0;
  let check = compiled.get(trust);
  if (!check) compiled.set(trust, (check = compile(trust)));
  return check(addr);
}
