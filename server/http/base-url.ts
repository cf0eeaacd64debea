/**
 * The base of the absolute links in answers (download_url, manifest_url): public_url when the
 * operator set it (production does), otherwise the request's own: its Host, and the protocol a
 * trusted proxy (the trust_proxy setting, as Express's `trust proxy` in app.ts) sends in
 * X-Forwarded-Proto.
 *
 * Those headers are the client's to choose, so they are checked before they reach a body that
 * others may be served from a cache or a CDN: the Host must be a host name or an IP literal with an
 * optional port, the protocol http or https. Anything else is refused (400 IQP_E_INVALID_HOST)
 * rather than replaced by a guess: a link to the wrong place is worse than no answer, and a proxy
 * sending such headers is misconfigured and should hear about it.
 *
 * Both ways in use this one function, so an answer cached by the route and served by the fast path
 * (http/fast-path.ts) was made for the same base.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { IqpError } from '../../src/errors.js';
import type { ServerConfig } from '../config.js';
import { trustsPeer } from './trust-proxy.js';

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const HOST = new RegExp(`^(?:(${LABEL}(?:\\.${LABEL})*\\.?)|\\[([0-9A-Fa-f:.]{2,45})\\])(?::(\\d{1,5}))?$`);

/** A Host header value a link may be built from: name or IP literal, optional port. */
export function validHost(value: string): boolean {
  if (value.length > 260) return false;
  const m = HOST.exec(value);
  if (!m) return false;
  if (m[2] !== undefined && !isIPv6(m[2])) return false;
  return m[3] === undefined || Number(m[3]) <= 65535;
}

// The last Host that passed, so a stream of requests from one client checks it once.
let lastGoodHost = '';

export function requestBase(req: IncomingMessage, config: Pick<ServerConfig, 'publicUrl' | 'host' | 'port' | 'trustProxy'>): string {
  if (config.publicUrl !== null) return config.publicUrl.replace(/\/+$/, '');
  const host = req.headers.host ?? `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  if (host !== lastGoodHost) {
    if (!validHost(host)) throw new IqpError('IQP_E_INVALID_HOST', 'The Host header is not a host name or IP address with an optional port.');
    lastGoodHost = host;
  }
  let proto = (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
  const forwarded = req.headers['x-forwarded-proto'];
  if (forwarded !== undefined && trustsPeer(config.trustProxy, req.socket.remoteAddress)) {
    const first = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',')[0]!.trim().toLowerCase();
    if (first !== 'http' && first !== 'https') {
      throw new IqpError('IQP_E_INVALID_HOST', 'X-Forwarded-Proto must be http or https.', undefined, { hint: 'Fix the proxy in front of the registry, or set public_url.' });
    }
    proto = first;
  }
  return `${proto}://${host}`;
}
