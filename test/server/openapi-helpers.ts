/**
 * What the OpenAPI tests share: docs/openapi.json as read from disk, JSON pointers into it, its
 * schemas compiled by a strict Ajv 2020, and expectConforms, which holds a live answer (status,
 * documented headers, body) to what the document says about it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { expect } from 'vitest';

const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SPEC_FILE = join(ROOT, 'docs', 'openapi.json');
export const METHODS = ['get', 'head', 'put', 'post', 'delete', 'patch', 'options', 'trace'] as const;

export type Json = Record<string, any>;
export const spec = JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Json;
export const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string };

// ---------- helpers over the document ----------

export const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');

export function atPointer(pointer: string): unknown {
  let node: unknown = spec;
  for (const part of pointer.split('/').slice(1)) {
    node = (node as Json | undefined)?.[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  }
  return node;
}

/** Follows OpenAPI-level $refs (responses, headers, parameters); schema $refs are left to Ajv. */
export function deref(node: unknown, pointer: string): { node: Json; pointer: string } {
  let current = node as Json;
  let where = pointer;
  for (let hops = 0; typeof current?.['$ref'] === 'string'; hops += 1) {
    if (hops > 10) throw new Error(`$ref loop at ${where}`);
    const ref = current['$ref'] as string;
    if (!ref.startsWith('#/')) throw new Error(`external $ref ${ref} at ${where}`);
    where = ref.slice(1);
    current = atPointer(where) as Json;
    if (current === undefined) throw new Error(`dangling $ref ${ref}`);
  }
  return { node: current, pointer: where };
}

export interface Operation {
  readonly path: string;
  readonly method: (typeof METHODS)[number];
  readonly op: Json;
  readonly pointer: string;
}

export function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(spec['paths'] as Json)) {
    for (const method of METHODS) {
      const op = (item as Json)[method] as Json | undefined;
      if (op) out.push({ path, method, op, pointer: `/paths/${escapePointer(path)}/${method}` });
    }
  }
  return out;
}

/** `/v1/packs/:id/download` → `/v1/packs/{id}/download`; anything OpenAPI cannot express fails. */
export function toOpenApiPath(expressPath: string): string {
  if (/[*(){}?+]/.test(expressPath)) throw new Error(`Express path ${expressPath} uses syntax an OpenAPI path cannot express`);
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

// ---------- route introspection (Express 5 / router ≥ 2.3) ----------

export interface RouteLayer {
  readonly route?: { readonly path: unknown; readonly methods: Record<string, boolean> };
}
export interface RouteInfo {
  readonly path: string | RegExp;
  readonly methods?: readonly string[];
  readonly router?: IntrospectableRouter;
}
export interface IntrospectableRouter {
  readonly stack: readonly unknown[];
  listRoutes?(): RouteInfo[];
}

/**
 * Every route path with its explicitly registered methods (route.methods) and the methods Express
 * answers (listRoutes, which adds the implicit HEAD of a GET), mount prefixes included. Express
 * makes one route per `r.get(path)`/`r.post(path)` call, so a path may have several; they merge.
 */
export function registeredRoutes(router: IntrospectableRouter, prefix = '', into = new Map<string, { explicit: Set<string>; answered: Set<string> }>()) {
  if (typeof router.listRoutes !== 'function') throw new Error('route introspection needs router ≥ 2.3 (Router#listRoutes)');
  const entry = (path: string) => {
    const key = toOpenApiPath(`${prefix}${path}`);
    let e = into.get(key);
    if (!e) into.set(key, (e = { explicit: new Set(), answered: new Set() }));
    return e;
  };
  for (const layer of router.stack as RouteLayer[]) {
    if (!layer.route) continue;
    if (typeof layer.route.path !== 'string') throw new Error(`route path ${String(layer.route.path)} under ${prefix || '/'} is not a string`);
    const methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m]);
    if (methods.includes('_all')) throw new Error(`${prefix}${layer.route.path} uses .all(), which the spec cannot list`);
    for (const m of methods) entry(layer.route.path).explicit.add(m);
  }
  for (const info of router.listRoutes()) {
    if (typeof info.path !== 'string') throw new Error(`a RegExp path under ${prefix || '/'} cannot be described in OpenAPI`);
    if (info.router) registeredRoutes(info.router, `${prefix}${info.path === '/' ? '' : info.path}`, into);
    else for (const m of info.methods ?? []) entry(info.path).answered.add(m.toLowerCase());
  }
  return [...into].map(([path, e]) => ({ path, explicit: [...e.explicit].sort(), answered: [...e.answered].sort() }));
}

// ---------- JSON Schema validation of the document's schemas ----------

function makeAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv, ['date-time', 'uri', 'email']);
  ajv.addFormat('binary', true); // OpenAPI's raw-bytes format; bodies validated here are never binary
  // The document itself is not a schema: its top-level members are inert keywords, so Ajv can
  // resolve JSON pointers into it (components, paths) without compiling anything but schemas.
  ajv.addVocabulary(Object.keys(spec));
  ajv.addSchema(spec, 'iqp-openapi');
  return ajv;
}
export const ajv = makeAjv();
const validators = new Map<string, ValidateFunction>();
export function schemaAt(pointer: string): ValidateFunction {
  let v = validators.get(pointer);
  if (!v) {
    v = ajv.getSchema(`iqp-openapi#${pointer}`);
    if (!v) throw new Error(`no schema at ${pointer}`);
    validators.set(pointer, v);
  }
  return v;
}

/** One request to the registry at `base`; the whole body is read. */
export async function sendTo(base: string, method: string, path: string, init: RequestInit = {}): Promise<{ res: Response; body: string; bytes: Buffer }> {
  const res = await fetch(`${base}${path}`, { ...init, method });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { res, body: bytes.toString('utf8'), bytes };
}

export function isCatchAll(res: Response, body: string): boolean {
  if (res.status !== 404) return false;
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    return parsed.error?.code === 'IQP_E_NOT_FOUND' && (parsed.error.message ?? '').startsWith('No route for ');
  } catch {
    return false;
  }
}

/** Asserts the response is documented for this operation: status, required headers and their values, body schema. */
export function expectConforms(method: string, specPath: string, res: Response, rawBody: string): Json | undefined {
  const where = `${method.toUpperCase()} ${specPath} → ${res.status}`;
  const opPointer = `/paths/${escapePointer(specPath)}/${method}`;
  const op = atPointer(opPointer) as Json | undefined;
  expect(op, `${method.toUpperCase()} ${specPath} is not in the spec`).toBeDefined();
  const declared = (op!['responses'] as Json)[String(res.status)];
  expect(declared, `${where}: status not documented`).toBeDefined();
  const { node: response, pointer } = deref(declared, `${opPointer}/responses/${res.status}`);

  for (const [name, raw] of Object.entries((response['headers'] ?? {}) as Json)) {
    const { node: header, pointer: hp } = deref(raw, `${pointer}/headers/${escapePointer(name)}`);
    const value = res.headers.get(name);
    if (header['required']) expect(value, `${where}: header ${name} missing`).not.toBeNull();
    if (value === null) continue;
    const schema = header['schema'] as Json;
    const typed = schema['type'] === 'integer' ? Number(value) : value;
    const validate = schemaAt(`${hp}/schema`);
    expect(validate(typed), `${where}: header ${name}: ${value}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  }

  const content = response['content'] as Json | undefined;
  if (!content || method === 'head') {
    expect(rawBody, `${where}: no body documented`).toBe('');
    return undefined;
  }
  const type = res.headers.get('content-type') ?? '';
  const mediaType = Object.keys(content).find((t) => type.split(';')[0]!.trim() === t.split(';')[0]!.trim());
  expect(mediaType, `${where}: Content-Type ${type} not documented (${Object.keys(content).join(', ')})`).toBeDefined();
  if (!mediaType!.startsWith('application/json')) return undefined;
  const body = JSON.parse(rawBody) as Json;
  const validate = schemaAt(`${pointer}/content/${escapePointer(mediaType!)}/schema`);
  expect(validate(body), `${where}: ${ajv.errorsText(validate.errors)}\n${rawBody.slice(0, 2000)}`).toBe(true);
  return body;
}

export function expectErrorBody(res: Response, body: string): void {
  const validate = schemaAt('/components/schemas/Error');
  expect(validate(JSON.parse(body)), ajv.errorsText(validate.errors)).toBe(true);
  expect(res.headers.get('cache-control')).toBe('no-store');
}
