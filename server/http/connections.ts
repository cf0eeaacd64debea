/**
 * The HTTP server around the app, with the limits that keep slow or numerous clients from holding
 * it: a deadline for request headers (Node's headersTimeout, checked every quarter of it), a cap
 * on open connections (max_connections), and JSON for the 408 Node answers a timed-out request
 * with. Bodies get their deadlines in http/deadlines.ts (Node's requestTimeout is off: it cannot
 * spare an upload that keeps sending).
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { CATALOG } from '../../src/errors.js';
import type { ServerConfig } from '../config.js';
import { NOSNIFF } from './headers.js';

const TIMEOUT_BODY = JSON.stringify({ error: { code: 'IQP_E_REQUEST_TIMEOUT', message: 'The request headers did not arrive in time.' } });
const TIMEOUT_RESPONSE = [
  `HTTP/1.1 ${CATALOG.IQP_E_REQUEST_TIMEOUT.http} Request Timeout`,
  'Connection: close',
  `${NOSNIFF[0]}: ${NOSNIFF[1]}`,
  'Cache-Control: no-store',
  'Content-Type: application/json; charset=utf-8',
  `Content-Length: ${Buffer.byteLength(TIMEOUT_BODY)}`,
  '',
  TIMEOUT_BODY,
].join('\r\n');

// What Node answers to the other client errors by default (a 'clientError' listener replaces it).
const HEADERS_TOO_LARGE = 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n';
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n';

function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
    socket.destroy();
    return;
  }
  const response = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? TIMEOUT_RESPONSE : err.code === 'HPE_HEADER_OVERFLOW' ? HEADERS_TOO_LARGE : BAD_REQUEST;
  socket.end(response, () => socket.destroy());
}

export function createHttpServer(config: Pick<ServerConfig, 'headersTimeoutMs' | 'maxConnections'>, app: RequestListener): Server {
  const headersTimeout = config.headersTimeoutMs;
  const server = createServer(
    {
      headersTimeout,
      requestTimeout: 0,
      // How often Node looks for requests past headersTimeout: often enough that none lives much longer.
      connectionsCheckingInterval: headersTimeout > 0 ? Math.max(5, Math.min(30_000, Math.floor(headersTimeout / 4))) : 30_000,
    },
    app,
  );
  // Longer than the idle timeout of the usual proxies in front (60 s), so they close first.
  server.keepAliveTimeout = 65_000;
  if (config.maxConnections > 0) server.maxConnections = config.maxConnections;
  server.on('clientError', onClientError);
  return server;
}

/** How long a stopping server lets the requests in progress run before it cuts them (within the 10 s a stop is given). */
export const DRAIN_GRACE_MS = 6_000;

/**
 * Stops the server the way a rolling restart needs: no new connections, the requests in progress
 * run to their end (uploads, downloads, pushes), keep-alive connections close as soon as they are
 * idle (Node would keep them for keepAliveTimeout), and whatever is still open after graceMs is
 * cut. Resolves when every connection is gone.
 */
export function drain(server: Server, graceMs = DRAIN_GRACE_MS): Promise<void> {
  return new Promise<void>((resolve) => {
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(cut);
      resolve();
    });
  });
}
