/**
 * The route a request is counted under in the metrics: mount path + route path (`/v1/admin/keys`),
 * the same whether the route answered or failed. Express restores req.baseUrl to the parent's as
 * an error leaves a router, so the mount path is noted on the way in (app.ts puts markMount in
 * front of each router) rather than read at the end.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

const MOUNT = Symbol('iqp.mount');
const LABEL = Symbol('iqp.route');
type Labelled = IncomingMessage & { [MOUNT]?: string; [LABEL]?: string; baseUrl?: string; route?: { path: unknown } };

export const markMount: RequestHandler = (req, _res, next) => {
  (req as Labelled)[MOUNT] = req.baseUrl;
  next();
};

/** For answers no route gave (405 names the path it refused a method on). */
export function setRouteLabel(req: IncomingMessage, route: string): void {
  (req as Labelled)[LABEL] = route;
}

export function routeLabel(req: IncomingMessage): string {
  const r = req as Labelled;
  if (r.route) return `${r[MOUNT] ?? r.baseUrl ?? ''}${String(r.route.path)}`;
  return r[LABEL] ?? 'unmatched';
}
