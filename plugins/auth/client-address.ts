/**
 * The client a rate limit counts, from the request's address. An IPv6 client is its /64: a home,
 * an office or a phone is handed a whole /64 (RFC 6177) and may send from any of its 2^64
 * addresses, so counting each address would let one client guess passwords without end. An IPv4
 * client is its address, however it is written (an IPv4-mapped ::ffff:a.b.c.d too).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** `a.b.c.d` for IPv4, `x:x:x:x::/64` for IPv6; text that is no address (a proxy's odd header) is counted as itself. */
export function addressKey(ip: string): string {
  if (isIPv4(ip)) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (any case, `::`, a dotted IPv4 tail, a zone id, which names no part of the network); null if it is not one. */
function ipv6Groups(ip: string): number[] | null {
  const zone = ip.indexOf('%');
  const addr = (zone === -1 ? ip : ip.slice(0, zone)).toLowerCase();
  if (!isIPv6(addr)) return null;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  const hex = dotted ? `${addr.slice(0, dotted.index)}${((+dotted[1]! << 8) | +dotted[2]!).toString(16)}:${((+dotted[3]! << 8) | +dotted[4]!).toString(16)}` : addr;
  const [head, tail] = hex.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const groups = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}
