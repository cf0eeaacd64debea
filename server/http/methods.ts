/**
 * The methods each known path answers, for 405 Method Not Allowed with an Allow header (RFC 9110
 * §15.5.6) when a request names a path the registry has under another method. Read from the
 * routers themselves (Router#listRoutes), so it cannot drift from them; built on the first 405,
 * when every route is registered.
 */
interface RouteInfo {
  readonly path: string | RegExp;
  readonly methods?: readonly string[];
  readonly router?: ListableRouter;
}
export interface ListableRouter {
  listRoutes(): RouteInfo[];
}

export interface KnownPath {
  /** As the metrics label it: `/v1/packs/:id`. */
  readonly route: string;
  /** Upper case, sorted, HEAD with GET: the Allow header's list. */
  readonly allow: readonly string[];
  readonly pattern: RegExp;
}

function collect(router: ListableRouter, prefix: string, into: Map<string, Set<string>>): void {
  for (const info of router.listRoutes()) {
    if (typeof info.path !== 'string') continue;
    const path = `${prefix}${info.path === '/' && info.router ? '' : info.path}`;
    if (info.router) collect(info.router, path, into);
    else {
      let methods = into.get(path);
      if (!methods) into.set(path, (methods = new Set()));
      for (const m of info.methods ?? []) methods.add(m.toUpperCase());
    }
  }
}

/** Like Express's own matching: case-insensitive, an optional trailing slash, a parameter is one non-empty segment. */
function patternOf(route: string): RegExp {
  const escaped = route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+');
  return new RegExp(`^${escaped}/?$`, 'i');
}

export function knownPaths(router: ListableRouter): KnownPath[] {
  const paths = new Map<string, Set<string>>();
  collect(router, '', paths);
  return [...paths].map(([route, methods]) => ({ route, allow: [...methods].sort(), pattern: patternOf(route) }));
}

/**
 * What the registry knows of `path`, if anything: labelled as the first route that matches (as
 * Express would try them), allowing every method of any route that matches.
 */
export function findKnownPath(paths: readonly KnownPath[], path: string): { route: string; allow: string[] } | undefined {
  const matching = paths.filter((p) => p.pattern.test(path));
  if (matching.length === 0) return undefined;
  return { route: matching[0]!.route, allow: [...new Set(matching.flatMap((p) => p.allow))].sort() };
}
