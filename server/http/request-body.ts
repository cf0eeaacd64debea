import type { IncomingMessage } from 'node:http';

/** Whether a body follows the request's headers (RFC 9112 §6.3: Transfer-Encoding, or a Content-Length other than 0). */
export function declaresBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}
