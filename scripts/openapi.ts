/**
 * Builds the registry's OpenAPI 3.1 document from the route declarations (src/api/core, and the
 * built-in plugins' routes, collected by server/plugins/openapi.ts): paths, parameters, request bodies, responses, the error
 * codes each route may answer, security. `node dist/scripts/openapi.js` writes docs/openapi.json;
 * a test holds the committed file equal to what this generates.
 *
 * Schemas named in NAMED become components and are referred to by $ref wherever the declarations
 * use the same schema object; everything else is written inline.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TSchema } from 'typebox';
import * as admin from '../src/api/core/admin.js';
import { ErrorBody, ErrorCodeSchema, ErrorResponse, PackageId, Paging, Semver } from '../src/api/core/common.js';
import { CORE_ROUTES, type RouteGroup } from '../src/api/core/index.js';
import { API_DESCRIPTION, API_SERVERS, API_SUMMARY, API_TAGS, API_TITLE } from '../src/api/core/overview.js';
import * as packs from '../src/api/core/packs.js';
import * as releases from '../src/api/core/releases.js';
import { BODY_MEDIA_TYPES, type RouteSpec } from '../src/api/route.js';
import { writeFileAtomic } from '../src/atomic.js';
import { CATALOG, type ErrorCode } from '../src/errors.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { pluginRouteGroups } from '../server/plugins/openapi.js';

type Json = Record<string, unknown>;

/** Shared schemas, by component name. */
const NAMED: Readonly<Record<string, TSchema>> = {
  Error: ErrorResponse,
  ErrorBody,
  ErrorCode: ErrorCodeSchema,
  Semver,
  PackageId,
  Paging,
  Manifest: packs.Manifest,
  ServedManifest: packs.ServedManifest,
  PublishResult: packs.PublishResult,
  PackStatus: packs.PackStatus,
  PackSummary: packs.PackSummary,
  PackVersion: packs.PackVersion,
  PublisherKey: packs.PublisherKey,
  KeyPurpose: packs.KeyPurpose,
  Health: packs.Health,
  AuditEntry: admin.AuditEntry,
  ReleaseStatus: releases.ReleaseStatus,
  Release: releases.Release,
  ReleaseManifestBody: releases.ReleaseManifestBody,
  ReleaseManifest: releases.ReleaseManifest,
  ServedRelease: releases.ServedRelease,
  ValidationReport: releases.ValidationReport,
  ReleaseProfile: releases.ReleaseProfile,
};

const HEADER_SCHEMAS: Readonly<Record<string, Json>> = {
  'Content-Length': { type: 'integer', minimum: 0 },
  'Retry-After': { type: 'integer', minimum: 1 },
};

/** Plain JSON of a schema, with named schemas (other than `self`) replaced by $refs. */
function toJson(schema: unknown, names: ReadonlyMap<unknown, string>, self?: unknown): unknown {
  if (schema !== self && names.has(schema)) return { $ref: `#/components/schemas/${names.get(schema)}` };
  if (Array.isArray(schema)) return schema.map((s) => toJson(s, names));
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, toJson(v, names)]));
}

function properties(schema: TSchema | undefined): [string, TSchema, boolean][] {
  const s = schema as { properties?: Record<string, TSchema>; required?: string[] } | undefined;
  return Object.entries(s?.properties ?? {}).map(([name, p]) => [name, p, s?.required?.includes(name) ?? false]);
}

/** The error codes every route of this shape may answer besides its own. */
function genericErrors(spec: RouteSpec, plugin: boolean): ErrorCode[] {
  const codes: ErrorCode[] = ['IQP_E_INTERNAL'];
  // A plugin's failure is answered as its own, and a plugin that did not start leaves its prefix answering 503.
  if (plugin) codes.push('IQP_E_PLUGIN_FAILED', 'IQP_E_PLUGIN_UNAVAILABLE');
  if (spec.params || spec.query || spec.body) codes.push('IQP_E_INVALID_REQUEST');
  if (spec.params) codes.push('IQP_E_USAGE'); // a path segment that is not valid percent-encoding
  if (spec.body) codes.push('IQP_E_USAGE', 'IQP_E_UPLOAD_TOO_LARGE', 'IQP_E_REQUEST_TIMEOUT'); // broken JSON, over the limit, too slow
  if (spec.auth !== 'none') codes.push('IQP_E_UNAUTHORIZED', 'IQP_E_TOKEN_EXPIRED', 'IQP_E_FORBIDDEN');
  return codes;
}

/** The Error schema with its code narrowed to the codes one response may carry. */
function errorSchema(codes: readonly string[]): Json {
  return { type: 'object', allOf: [{ $ref: '#/components/schemas/Error' }], properties: { error: { type: 'object', properties: { code: { enum: codes } } } } };
}

function headers(described: Readonly<Record<string, string>> | undefined): Json | undefined {
  if (!described) return undefined;
  return Object.fromEntries(Object.entries(described).map(([name, description]) => [name, { description, schema: HEADER_SCHEMAS[name] ?? { type: 'string' } }]));
}

function responses(spec: RouteSpec, plugin: boolean, names: ReadonlyMap<unknown, string>): Json {
  const out: Record<string, Json> = {};
  const head = spec.method === 'HEAD';
  for (const [status, r] of Object.entries(spec.responses)) {
    const content = head
      ? undefined
      : r.schema
        ? { 'application/json': { schema: toJson(r.schema, names) } }
        : r.contentType
          ? { [r.contentType]: { schema: r.contentType.startsWith('text/') ? { type: 'string' } : { type: 'string', format: 'binary' } } }
          : undefined;
    out[status] = { description: r.description, ...(r.headers ? { headers: headers(r.headers) } : {}), ...(content ? { content } : {}) };
  }
  const byStatus = new Map<number, Set<string>>();
  for (const code of [...genericErrors(spec, plugin), ...(spec.errors ?? [])]) {
    const status = CATALOG[code].http;
    if (!byStatus.has(status)) byStatus.set(status, new Set());
    byStatus.get(status)!.add(code);
  }
  for (const [status, set] of [...byStatus].sort(([a], [b]) => a - b)) {
    const codes = [...set].sort();
    const listed = `Codes: ${codes.map((c) => `\`${c}\``).join(', ')}.`;
    const declared = out[String(status)];
    const extraHeaders = status === 401 ? headers({ 'WWW-Authenticate': 'The bearer challenge (`error="invalid_token"` for an unknown or revoked token; `error_description="expired"` for an expired access token).' }) : undefined;
    out[String(status)] = {
      description: declared ? `${declared['description'] as string} ${listed}` : listed,
      headers: { ...(declared?.['headers'] as Json | undefined), ...extraHeaders, 'Cache-Control': { description: '`no-store`: errors are never cached.', schema: { type: 'string' } } },
      ...(head ? {} : { content: { 'application/json': { schema: errorSchema(codes) } } }),
    };
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => Number(a) - Number(b)));
}

function parameters(spec: RouteSpec, names: ReadonlyMap<unknown, string>): Json[] {
  const out: Json[] = [];
  const add = (where: 'path' | 'query', schema: TSchema | undefined) => {
    for (const [name, p, required] of properties(schema)) {
      const { description, ...rest } = toJson(p, names) as Json;
      out.push({ name, in: where, required: where === 'path' || required, ...(description ? { description } : {}), schema: rest });
    }
  };
  add('path', spec.params);
  add('query', spec.query);
  for (const [name, description] of Object.entries(spec.requestHeaders ?? {})) out.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });
  if (spec.responses[304]) out.push({ name: 'If-None-Match', in: 'header', required: false, description: 'The ETag of the copy you hold; when it matches, the answer is 304 with no body.', schema: { type: 'string' } });
  return out;
}

function operation(spec: RouteSpec, group: RouteGroup, names: ReadonlyMap<unknown, string>): Json {
  const { prefix } = group;
  const params = parameters(spec, names);
  const requestBody = spec.body
    ? { required: true, content: Object.fromEntries((spec.bodyTypes ?? ['json']).map((t) => [BODY_MEDIA_TYPES[t], { schema: toJson(spec.body, names) }])) }
    : spec.rawBody
      ? { required: true, description: spec.rawBody.description, content: Object.fromEntries(spec.rawBody.contentTypes.map((t) => [t, { schema: { type: 'string', format: 'binary' } }])) }
      : undefined;
  return {
    tags: [...(spec.tags ?? [`${prefix}${spec.path}`.split('/')[2] ?? 'v1'])],
    operationId: spec.id,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(spec.auth === 'none' ? {} : { security: [{ bearer: [spec.auth] }] }),
    ...(params.length ? { parameters: params } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: responses(spec, group.plugin !== undefined, names),
  };
}

/** A tag per plugin, with what its manifest says it does (the core's tags are API_TAGS). */
function pluginTags(groups: readonly RouteGroup[]): Json[] {
  return groups.flatMap((g) => (g.plugin ? [{ name: g.plugin.id, ...(g.plugin.description ? { description: `${g.plugin.description} (the ${g.plugin.id} plugin, when the registry enables it)` } : {}) }] : []));
}

/** The OpenAPI document for these route groups (the core's, then any plugin's under its prefix). */
export function openApiDocument(groups: readonly RouteGroup[], options: { version: string }): Json {
  const names = new Map<unknown, string>(Object.entries(NAMED).map(([name, schema]) => [schema, name]));
  const paths: Record<string, Json> = {};
  for (const group of groups) {
    for (const spec of group.routes) {
      const path = `${group.prefix}${spec.path}`;
      const item = (paths[path] ??= {});
      const method = spec.method.toLowerCase();
      if (item[method]) throw new Error(`${spec.method} ${path} is declared twice (${(item[method] as Json)['operationId'] as string}, ${spec.id})`);
      item[method] = operation(spec, group, names);
    }
  }
  const schemas = Object.fromEntries(Object.entries(NAMED).map(([name, schema]) => [name, toJson(schema, names, schema)]));
  return {
    openapi: '3.1.1',
    info: { title: API_TITLE, version: options.version, summary: API_SUMMARY, description: API_DESCRIPTION, license: { name: 'MIT', identifier: 'MIT' } },
    servers: API_SERVERS,
    tags: [...API_TAGS, ...pluginTags(groups)],
    paths,
    components: {
      schemas,
      responses: {
        MethodNotAllowed: {
          description: 'The path exists but does not take this method; `Allow` lists the ones it does. Codes: `IQP_E_METHOD_NOT_ALLOWED`.',
          headers: { Allow: { $ref: '#/components/headers/Allow' } },
          content: { 'application/json': { schema: errorSchema(['IQP_E_METHOD_NOT_ALLOWED']) } },
        },
      },
      headers: { Allow: { description: 'The methods this path answers, e.g. `GET, HEAD`.', required: true, schema: { type: 'string', pattern: '^[A-Z]+(, [A-Z]+)*$' } } },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API token (`iqp token create`; roles publisher and admin) or, with an auth plugin, a user access token. The scopes listed on an operation are the role it needs.',
        },
      },
    },
  };
}

/**
 * The document as docs/openapi.json holds it: the core's routes and the built-in plugins' (under
 * /v1/<id>), whether or not a registry enables them, so an app developer finds /v1/auth there.
 * The plugins come from dist/plugins: build first.
 */
export async function renderOpenApi(): Promise<string> {
  const { version } = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return `${JSON.stringify(openApiDocument([...CORE_ROUTES, ...(await pluginRouteGroups())], { version }), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  writeFileAtomic(join(PACKAGE_ROOT, 'docs', 'openapi.json'), await renderOpenApi());
}
