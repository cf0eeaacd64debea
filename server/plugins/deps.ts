/**
 * The order plugins start in: every plugin after the plugins it requires (Kahn's algorithm, ties
 * by id so the order is the same on every start), and what cannot be ordered because it requires
 * itself through others.
 */
import semver from 'semver';

export interface DepNode {
  readonly id: string;
  readonly version: string;
  readonly requires: Readonly<Record<string, string>>;
}

export type DepProblem = { readonly id: string; readonly kind: 'missing' | 'version' | 'cycle'; readonly message: string };

/** Problems with each plugin's `requires` against the plugins present (`nodes`). */
export function unmetRequirements(nodes: readonly DepNode[]): DepProblem[] {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out: DepProblem[] = [];
  for (const n of nodes) {
    for (const [dep, range] of Object.entries(n.requires)) {
      const d = byId.get(dep);
      if (!d) out.push({ id: n.id, kind: 'missing', message: `requires plugin ${dep} (${range}), which is not enabled or failed` });
      else if (!semver.satisfies(d.version, range, { includePrerelease: true })) out.push({ id: n.id, kind: 'version', message: `requires ${dep} ${range}, but ${dep}@${d.version} is enabled` });
    }
  }
  return out;
}

/**
 * The services more than one of the plugins provides (two auth.v1 providers), each with the ids of
 * its providers in the order given. The server refuses to start them; `iqp plugins enable` refuses
 * to enable the second.
 */
export function rivalProviders(plugins: Iterable<readonly [id: string, provides: readonly string[] | undefined]>): Map<string, string[]> {
  const providers = new Map<string, string[]>();
  for (const [id, provides] of plugins) for (const ref of provides ?? []) providers.set(ref, [...(providers.get(ref) ?? []), id]);
  for (const [ref, ids] of providers) if (ids.length < 2) providers.delete(ref);
  return providers;
}

/** Dependency order of `nodes` (whose requirements are all present), and the ids caught in cycles. */
export function startOrder(nodes: readonly DepNode[]): { order: string[]; cycles: DepProblem[] } {
  const pending = new Map(nodes.map((n) => [n.id, new Set(Object.keys(n.requires).filter((d) => nodes.some((x) => x.id === d)))]));
  const order: string[] = [];
  for (;;) {
    const ready = [...pending].filter(([, deps]) => deps.size === 0).map(([id]) => id).sort();
    if (ready.length === 0) break;
    for (const id of ready) {
      order.push(id);
      pending.delete(id);
      for (const deps of pending.values()) deps.delete(id);
    }
  }
  const stuck = [...pending.keys()].sort();
  return { order, cycles: stuck.map((id) => ({ id, kind: 'cycle' as const, message: `is part of a cycle of requirements among ${stuck.join(', ')}` })) };
}
