/**
 * Field-by-field three-way merge of one entity's payload (its top-level fields). A field only one
 * side changed since the base takes that side's value; a field both changed to different values
 * is a conflict, won by the later arrival (the incoming mutation: the server orders by arrival),
 * and the loser's value is kept in the conflict record. Pure: no I/O, no clock.
 */
export type Doc = Record<string, unknown>;

export interface Merged {
  readonly doc: Doc;
  /** Fields both sides changed differently; the incoming value won. */
  readonly conflicts: readonly string[];
  /** The result keeps a change the incoming side had not seen. */
  readonly kept: boolean;
  /** The document the losing side would have had: `doc` with the current values of the conflicting fields. */
  readonly loser: Doc;
}

/** Deep equality of JSON values (what JSON.parse gives). */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => same(v, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && same((a as Doc)[k], (b as Doc)[k]));
}

function put(doc: Doc, key: string, value: unknown): void {
  if (value === undefined) return;
  // defineProperty: a field named __proto__ stays a field.
  Object.defineProperty(doc, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * `incoming` is what the device wants the entity to be, `changed` the fields it changed (all of
 * incoming's fields and the ones it dropped for an upsert; only the listed ones for a patch).
 */
function mergeFields(base: Doc, current: Doc, incoming: Doc, changed: ReadonlySet<string>): Merged {
  const doc: Doc = {};
  const loser: Doc = {};
  const conflicts: string[] = [];
  let kept = false;
  const keys = new Set([...Object.keys(current), ...Object.keys(incoming)]);
  for (const key of keys) {
    const b = Object.hasOwn(base, key) ? base[key] : undefined;
    const c = Object.hasOwn(current, key) ? current[key] : undefined;
    const i = Object.hasOwn(incoming, key) ? incoming[key] : undefined;
    const incomingChanged = changed.has(key) && !same(b, i);
    const currentChanged = !same(b, c);
    if (!incomingChanged) {
      put(doc, key, c);
      put(loser, key, c);
      if (currentChanged && !same(c, i)) kept = true;
    } else if (!currentChanged || same(c, i)) {
      put(doc, key, i);
      put(loser, key, i);
    } else {
      put(doc, key, i);
      put(loser, key, c);
      conflicts.push(key);
    }
  }
  return { doc, conflicts, kept, loser };
}

/** An upsert: the device sent the whole document it wants, made from `base`. */
export function mergeUpsert(base: Doc, current: Doc, incoming: Doc): Merged {
  return mergeFields(base, current, incoming, new Set([...Object.keys(base), ...Object.keys(incoming)]));
}

/** A patch: the device set only `patch`'s fields, on top of `base`. */
export function mergePatch(base: Doc, current: Doc, patch: Doc): Merged {
  const incoming: Doc = { ...current };
  for (const [k, v] of Object.entries(patch)) put(incoming, k, v);
  return mergeFields(base, current, incoming, new Set(Object.keys(patch)));
}

/** `doc` with `patch`'s fields set (a patch on an entity nobody else changed). */
export function applyPatch(doc: Doc, patch: Doc): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(doc)) put(out, k, v);
  for (const [k, v] of Object.entries(patch)) put(out, k, v);
  return out;
}
