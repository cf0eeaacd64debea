/** JSON errors everywhere: coded IqpErrors keep their status; anything else is a 500 without a stack. */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { IqpError } from '../../src/errors.js';
import { declaresBody } from './request-body.js';
import { findKnownPath, knownPaths, type KnownPath, type ListableRouter } from './methods.js';
import { setRouteLabel } from './route-label.js';

export function sendError(res: Parameters<RequestHandler>[1], err: IqpError): void {
  if (res.headersSent) {
    // Mid-stream: the only honest signal left is to cut the connection.
    res.destroy();
    return;
  }
  // Headers describing a pack must not describe an error body. A 416 still describes the pack
  // whose range was refused (Content-Range: bytes */size, its ETag), but it is no attachment.
  res.removeHeader('Content-Disposition');
  res.removeHeader('Content-Type'); // set for the pack before the failure; res.json keeps one already set
  if (err.httpStatus !== 416) {
    for (const name of ['Content-Range', 'ETag', 'Last-Modified', 'Accept-Ranges', 'X-Iqp-Version', 'X-Iqp-Sha256']) res.removeHeader(name);
  }
  res.status(err.httpStatus).set('Cache-Control', 'no-store').json({ error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } });
}

/** What no route answered: 405 with Allow for a known path under another method, else 404. */
export function notFound(router: ListableRouter): RequestHandler {
  let known: KnownPath[] | null = null;
  return (req, res, next) => {
    known ??= knownPaths(router);
    const match = findKnownPath(known, req.path);
    if (!match) return next(new IqpError('IQP_E_NOT_FOUND', `No route for ${req.method} ${req.path}.`));
    setRouteLabel(req, match.route);
    const allow = match.allow.join(', ');
    res.setHeader('Allow', allow);
    next(new IqpError('IQP_E_METHOD_NOT_ALLOWED', `${req.method} is not allowed here; this path answers ${allow}.`));
  };
}

/**
 * Refusals that read none of the body: the client is not authenticated, not allowed, or asked for
 * nothing the registry has. Its connection is closed after the answer rather than kept while
 * Node reads and discards the rest, which a client trickling a huge body could make last for
 * ever. (Refused uploads from authenticated clients are drained instead: routes/admin.ts.)
 */
const CLOSE_UNREAD = new Set([401, 403, 404, 405]);

/** The coded error a failure is answered with: IqpErrors keep theirs; anything else is never the client's fault. */
export function codedError(err: unknown): IqpError {
  const status = (err as { status?: unknown; type?: unknown }).status;
  if (err instanceof IqpError) return err;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // body-parser and friends: malformed JSON, wrong charset, body too large.
    return status === 413
      ? new IqpError('IQP_E_UPLOAD_TOO_LARGE', 'The request body is too large.')
      : new IqpError('IQP_E_USAGE', `Bad request: ${(err as Error).message}`);
  }
  // Anything else failed inside the server, so it is never the client's fault (toIqpError would
  // make a missing file or a folder here a 400): a system error is I/O, the rest a bug, and its
  // message (server paths, SQL) belongs in the log only.
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  const io = typeof errno === 'string' && /^E[A-Z]+$/.test(errno);
  return new IqpError(io ? 'IQP_E_IO' : 'IQP_E_INTERNAL', 'The registry could not complete the request; its log has the details.');
}

/** Logs a failure that is the server's fault (5xx but 503 busy), with its cause; client errors are not logged. */
export function logServerFault(log: (line: Record<string, unknown>) => void, method: string, path: string, err: unknown, coded: IqpError): void {
  // A busy registry refusing one more upload is doing its job, not failing.
  if (coded.httpStatus >= 500 && coded.code !== 'IQP_E_BUSY') {
    const cause = err instanceof Error && err.cause !== undefined ? { cause: String((err.cause as Error)?.stack ?? err.cause) } : {};
    log({ level: 'error', msg: 'request failed', method, path, code: coded.code, error: String((err as Error)?.stack ?? err), ...cause });
  }
}

export function errorHandler(log: (line: Record<string, unknown>) => void): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    // The client hung up mid-request (an upload cut off): nobody is left to answer, and it is not a
    // server fault to log, just as a download the client abandons is not.
    if (req.destroyed && (err as NodeJS.ErrnoException | null)?.code === 'ECONNRESET') return;
    const coded = codedError(err);
    logServerFault(log, req.method, req.path, err, coded);
    if (CLOSE_UNREAD.has(coded.httpStatus) && !req.complete && declaresBody(req) && !res.headersSent) res.setHeader('Connection', 'close');
    sendError(res, coded);
  };
}
