/**
 * What the config says about each entity: whether apps may sync it, the JSON Schema its payloads
 * must match, its size limit, its label in conflict summaries, and the steps that bring payloads
 * from older apps' schema versions up to date.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { SyncConfig, Upgrade } from './config.js';
import type { Doc } from './merge.js';

export interface Entity {
  readonly name: string;
  readonly label: string;
  readonly maxPayloadBytes: number;
  /** Null when the payload is fine; else the field and what is wrong with it. */
  check(doc: Doc): { field: string; message: string } | null;
  /**
   * The payload as the current schema version has it, from a mutation made at `from`. A patch's
   * (`partial`) fields are renamed and removed, but gets no defaults: a default set on a field the
   * patch does not name would overwrite what the entity has.
   */
  upgrade(doc: Doc, from: number, partial?: boolean): Doc;
}

function capitalized(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ');
}

function step(doc: Doc, u: Upgrade, partial: boolean): Doc {
  const out: Doc = {};
  const removed = new Set(u.remove ?? []);
  for (const [k, v] of Object.entries(doc)) {
    if (removed.has(k)) continue;
    const to = u.rename && Object.hasOwn(u.rename, k) ? u.rename[k]! : k;
    Object.defineProperty(out, to, { value: v, enumerable: true, writable: true, configurable: true });
  }
  if (partial) return out;
  for (const [k, v] of Object.entries(u.set ?? {})) if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: structuredClone(v), enumerable: true, writable: true, configurable: true });
  return out;
}

export class Entities {
  private readonly known = new Map<string, Entity>();

  constructor(config: SyncConfig) {
    const ajv = new Ajv({ allErrors: false, strict: false });
    for (const [name, e] of Object.entries(config.entities)) {
      const validate: ValidateFunction | null = e.schema ? ajv.compile(e.schema) : null;
      const upgrades = [...(e.upgrades ?? [])].sort((a, b) => a.from - b.from);
      this.known.set(name, {
        name,
        label: e.label ?? capitalized(name),
        maxPayloadBytes: e.max_payload_bytes ?? config.max_payload_bytes,
        check(doc) {
          if (!validate || validate(doc)) return null;
          const err = validate.errors![0]!;
          const missing = (err.params as { missingProperty?: string }).missingProperty;
          const path = err.instancePath.replace(/^\//, '').replace(/\//g, '.');
          const field = ['payload', path, missing].filter(Boolean).join('.');
          return { field, message: `${field} ${err.message ?? 'is invalid'}` };
        },
        upgrade(doc, from, partial = false) {
          let out = doc;
          for (const u of upgrades) if (u.from >= from && u.from < config.schema_versions.max) out = step(out, u, partial);
          return out;
        },
      });
    }
  }

  /** The entity's rules, or null when apps may not sync it. */
  get(name: string): Entity | null {
    const own = this.known.get(name);
    if (own) return own;
    const any = this.known.get('*');
    return any ? { ...any, name, label: capitalized(name) } : null;
  }
}
