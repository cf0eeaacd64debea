/**
 * Deadlines for receiving request bodies, so a client trickling a body cannot hold a connection
 * (and whatever the request holds) as long as it likes.
 *
 * Node's own requestTimeout cannot make the one exception we need (an authenticated upload may
 * take as long as it keeps sending), so it is off (http/connections.ts) and this does the work:
 * a request that declares a body gets request_timeout_ms to deliver all of it; the upload route,
 * once it has authenticated the client and taken an upload slot, trades that for an idle timeout
 * (upload_idle_timeout_ms between two reads). Requests without a body cost one header check.
 * Headers have their own deadline, Node's headersTimeout.
 *
 * Past a deadline the client gets 408 IQP_E_REQUEST_TIMEOUT and the connection is closed; if an
 * answer has already started, the connection is just closed.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { IqpError } from '../../src/errors.js';
import { sendError } from './errors.js';
import { declaresBody } from './request-body.js';

const TIMER = Symbol('iqp.bodyDeadline');
type Timed = IncomingMessage & { [TIMER]?: NodeJS.Timeout };

function expire(req: Request, res: Response, what: string): void {
  const err = new IqpError('IQP_E_REQUEST_TIMEOUT', what);
  if (res.headersSent || res.writableEnded) {
    req.destroy(err);
    return;
  }
  res.setHeader('Connection', 'close');
  // Once answered, whatever still reads the body (an upload) must hear that none is coming: Node
  // aborts only requests still unanswered when their connection closes.
  res.once('close', () => {
    if (!req.complete && !req.destroyed) req.destroy(err);
  });
  sendError(res, err);
}

/** Middleware: a request with a body has `ms` from its headers to the end of its body. */
export function bodyDeadline(ms: number): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (ms > 0 && !req.complete && declaresBody(req)) {
      const timer = setTimeout(() => {
        if (!req.complete) expire(req, res, `The request body did not arrive within ${ms} ms.`);
      }, ms);
      const clear = () => clearTimeout(timer);
      req.once('end', clear);
      req.once('close', clear);
      (req as Timed)[TIMER] = timer;
    }
    next();
  };
}

/**
 * For an upload the registry has accepted to receive: no overall deadline, only `idleMs` between
 * two pieces of the body (none once it has all arrived: checking the pack may take a while).
 */
export function onlyIdleDeadline(req: Request, res: Response, idleMs: number): void {
  clearTimeout((req as Timed)[TIMER]);
  if (idleMs <= 0 || req.complete) return;
  const onIdle = () => {
    if (!req.complete) expire(req, res, `The upload sent nothing for ${idleMs} ms.`);
  };
  req.setTimeout(idleMs, onIdle);
  // Once the body is in, back to the server's socket timeout (none) while the pack is checked;
  // Node sets the keep-alive timeout after the answer. A request that never ends is answered by
  // closing its connection.
  req.once('end', () => {
    req.off('timeout', onIdle);
    if (!req.socket.destroyed) req.socket.setTimeout(0);
  });
}
