/**
 * The hottest read requests, answered before Express sees them.
 *
 * Express 5 costs more per request than everything else on the registry's read paths: its
 * app.handle re-prototypes every req and res (Object.setPrototypeOf), which sends V8 and Node's
 * own http code down slow paths for the rest of the request, and then walks the router. Measured on
 * the benchmark machine (docs/performance.md, Registry), a cached 15 KB JSON body went from about
 * 5,000 to over 20,000 requests/s by skipping it, and 64 KiB range requests similarly.
 *
 * So these handlers are a stage of the request pipeline in front of Express (http/pipeline.ts):
 * each looks at the bare node:http request and either answers it completely, exactly as the
 * Express route would (same status, headers in the same order, body, metrics), or returns false
 * having touched nothing, and Express handles the request as before. Only success paths are
 * answered here; every error still comes from the routes and the error handler.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Stage } from './pipeline.js';
import { declaresBody } from './request-body.js';

/**
 * Counts a request in the metrics (and the request log) when its response closes, under `route`;
 * the function returned undoes that, for a request handed back to Express (which counts it then).
 */
export type Track = (req: IncomingMessage, res: ServerResponse, route: string) => () => void;

/** Takes the request (true) or leaves it untouched (false); `fallback` gives a taken request on to Express before anything was sent. */
export type FastHandler = (req: IncomingMessage, res: ServerResponse, track: Track, fallback: () => void) => boolean;

/**
 * The stage that tries `handlers` in order for GET and HEAD requests without a body (one with a
 * body goes on to Express, which puts a deadline on it: http/deadlines.ts). It comes last before
 * Express, so its fallback is the rest of the pipeline.
 */
export function fastStage(handlers: readonly FastHandler[], track: Track): Stage {
  return (req, res, next) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && !declaresBody(req)) {
      for (const h of handlers) if (h(req, res, track, next)) return;
    }
    next();
  };
}
