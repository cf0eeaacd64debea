/**
 * Plugin routes: declared during register(), checked against the core's routes and each other,
 * then mounted with the core's mountRoute on a router per plugin at /v1/<id>. Each plugin has its
 * own error boundary: a handler that throws anything but a coded error answers 500
 * IQP_E_PLUGIN_FAILED for that request only (the cause goes to the log with the plugin id, never
 * to the client); ctx.error() errors keep their status and headers.
 */
import { principalOf } from '../http/guard.js';
import type { Ajv } from 'ajv';
import { type Request, type RequestHandler, type Response, Router } from 'express';
import type { RouteSpec } from '../../src/api/route.js';
import { type ErrorCode, IqpError } from '../../src/errors.js';
import type { Logger } from '../app.js';
import { ANSWERED, mountRoute, reply } from '../http/contract.js';
import type { KnownPath } from '../http/methods.js';
import type { RouteHandler, RouteInput, RouteReply, StreamReplyOptions } from './api.js';

export interface DeclaredRoute {
  readonly spec: RouteSpec;
  readonly handler: RouteHandler<RouteSpec>;
}

const HEADERS = Symbol('iqp.plugin.headers');
type WithHeaders = IqpError & { [HEADERS]?: Readonly<Record<string, string>> };

/** ctx.error(): a coded error that carries response headers (Retry-After) to the error boundary. */
export function pluginError(code: ErrorCode, message: string, options?: { details?: Record<string, unknown>; headers?: Record<string, string> }): Error {
  const err: WithHeaders = new IqpError(code, message, options?.details);
  if (options?.headers) err[HEADERS] = { ...options.headers };
  return err;
}

export type Guard = (spec: RouteSpec) => RequestHandler | null;

const STREAM = Symbol('iqp.plugin.stream');
type StreamReply = RouteReply & { [STREAM]: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array> };

/** ctx.stream(): a reply whose body the error boundary writes piece by piece. */
export function streamReply(status: number, body: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>, options: StreamReplyOptions): RouteReply {
  return Object.assign(reply(status, undefined, { ...options.headers, 'Content-Type': options.contentType }), { [STREAM]: body });
}

function isStream(value: unknown): value is StreamReply {
  return typeof value === 'object' && value !== null && STREAM in value;
}

/** Writes a streamed reply, waiting for drain; a failure after the head is sent destroys the socket (a short body, never a clean-looking one). */
async function writeStream(res: Response, r: StreamReply): Promise<void> {
  res.status(r.status);
  for (const [name, value] of Object.entries(r.headers ?? {})) res.setHeader(name, value);
  try {
    for await (const piece of r[STREAM]) {
      if (res.destroyed) return;
      if (!res.write(piece)) await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
    }
    res.end();
  } catch (err) {
    if (!res.headersSent) throw err;
    res.destroy(err as Error);
  }
}

/** Aborted when the response closes before it finished: the client went away. */
function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}


/** A route's method and full path (`GET /v1/auth/{x}`), with each parameter spelled `{}` for comparison. */
function shape(method: string, path: string): string {
  return `${method.toUpperCase()} ${path.replace(/\{[^}]*\}|:\w+/g, '{}').replace(/\/+$/, '').toLowerCase()}`;
}

/** Whether two routes can match one request: same method, same number of segments, each equal or a parameter. */
function overlaps(a: string, b: string): boolean {
  const [ma, pa] = a.split(' ') as [string, string];
  const [mb, pb] = b.split(' ') as [string, string];
  if (ma !== mb) return false;
  const sa = pa.split('/');
  const sb = pb.split('/');
  return sa.length === sb.length && sa.every((s, i) => s === sb[i] || s === '{}' || sb[i] === '{}');
}

/**
 * The first route of `routes` (under /v1/<id>) that one already `taken` could answer instead: a
 * core route, another plugin's, or the plugin's own earlier one. Records the rest as taken.
 */
export function claimRoutes(id: string, routes: readonly DeclaredRoute[], taken: string[]): { route: string; other: string } | null {
  for (const r of routes) {
    const mine = shape(r.spec.method, `/v1/${id}${r.spec.path}`);
    const other = taken.find((t) => overlaps(t, mine));
    if (other) return { route: mine, other };
    taken.push(mine);
  }
  return null;
}

/** The core's routes as shapes (GET and HEAD both claim a GET path). */
export function coreShapes(paths: readonly KnownPath[]): string[] {
  return paths.flatMap((p) => p.allow.filter((m) => m !== 'HEAD').map((m) => shape(m, p.route)));
}

export interface MountContext {
  readonly ajv: Ajv;
  readonly guard: Guard;
  readonly log: Logger;
  readonly validateResponses?: boolean;
  /** Aborted when the server begins to stop: every route's signal is aborted with it. */
  readonly stopping?: AbortSignal;
}

/** A router answering a plugin's routes, behind its error boundary. */
export function pluginRouter(id: string, routes: readonly DeclaredRoute[], m: MountContext): Router {
  const router = Router();
  for (const { spec, handler } of routes) {
    mountRoute(
      router,
      m.ajv,
      spec,
      async (input, req: Request, res: Response) => {
        const full: RouteInput<RouteSpec> = {
          ...input,
          headers: req.headers,
          ip: req.ip ?? req.socket.remoteAddress ?? '',
          principal: principalOf(res),
          signal: m.stopping ? AbortSignal.any([clientGone(res), m.stopping]) : clientGone(res),
          stream: spec.rawBody ? req : null,
        };
        try {
          const result = await handler(full);
          if (!isStream(result)) return result;
          await writeStream(res, result);
          return ANSWERED;
        } catch (err) {
          if (err instanceof IqpError) {
            for (const [name, value] of Object.entries((err as WithHeaders)[HEADERS] ?? {})) res.setHeader(name, value);
            throw err;
          }
          m.log({ level: 'error', msg: 'plugin route failed', plugin: id, route: spec.id, error: String((err as Error)?.stack ?? err) });
          throw new IqpError('IQP_E_PLUGIN_FAILED', `The ${id} plugin failed while answering ${spec.id}.`, { plugin: id });
        }
      },
      { guard: m.guard, ...(m.validateResponses ? { validateResponses: true } : {}) },
    );
  }
  return router;
}

/** What a left-out plugin's prefix answers: 503, whatever the path. */
export function unavailable(id: string): RequestHandler {
  return (_req, _res, next) => next(new IqpError('IQP_E_PLUGIN_UNAVAILABLE', `The ${id} plugin is not running on this registry; its routes are unavailable.`, { plugin: id }));
}
