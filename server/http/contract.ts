/**
 * Mounts declared routes (src/api/route.ts) on an Express router: the request's params, query and
 * body (JSON, or a form where the route takes one: body.ts) are validated against the route's schemas before the handler runs, and a failure is
 * answered 400 IQP_E_INVALID_REQUEST naming the field. Validators are compiled once, when the
 * route is mounted (at start), never per request.
 *
 * Query strings, path parameters and form fields are text. A property the schema declares integer, number or
 * boolean is converted only from its canonical spelling (`12`, `-3`, `1.5`, `true`): `0x2`, `1e1`
 * or ` 12` stay strings and fail validation, as they should.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Request, RequestHandler, Response, Router } from 'express';
import type { TSchema } from 'typebox';
import type { BodyOf, ParamsOf, QueryOf, RouteSpec } from '../../src/api/route.js';
import { IqpError } from '../../src/errors.js';
import { bodyParsers, isFormBody } from './body.js';

// ajv-formats is CommonJS with a default export: under NodeNext it arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/** Returned by a handler that has answered itself (streamed bytes, a cached body). */
export const ANSWERED: unique symbol = Symbol('answered');

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ValidatedRequest<R extends RouteSpec> {
  readonly params: ParamsOf<R>;
  readonly query: QueryOf<R>;
  readonly body: BodyOf<R>;
}

/**
 * `checked` is for a handler that answers by itself with a JSON body it built (the cached reads
 * build once, on a miss): it checks the body against the route's 2xx schema when responses are
 * validated, and is the identity otherwise, so a cache hit never pays for it.
 */
export type ContractHandler<R extends RouteSpec> = (input: ValidatedRequest<R>, req: Request, res: Response, checked: <T>(body: T) => T) => Promise<unknown>;

export interface MountOptions {
  /** Runs before validation for routes whose auth is not 'none' (401/403 before a body is judged). */
  readonly guard: (spec: RouteSpec) => RequestHandler | null;
  /** Largest JSON (or form) body, in bytes (default 64 KiB). */
  readonly jsonLimit?: number;
  /** Check every JSON answer against the route's response schema (tests turn this on): a mismatch is a 500. */
  readonly validateResponses?: boolean;
}

/** One ajv instance per registry: the validators it compiles are cached on it. */
export function createValidator(): Ajv {
  const ajv = new Ajv({ allErrors: false, strict: true, useDefaults: true, coerceTypes: false });
  addFormats(ajv);
  return ajv;
}

/** `/packs/{id}/{version}` → `/packs/:id/:version`. */
export function expressPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

const INTEGER = /^-?(0|[1-9][0-9]{0,15})$/;
const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** Converts canonical text to the scalar type the schema declares for each property; anything else is left for ajv to refuse. */
function scalars(schema: TSchema | undefined, raw: Record<string, unknown>): Record<string, unknown> {
  const props = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
  if (!props) return { ...raw };
  const out: Record<string, unknown> = { ...raw };
  for (const [name, value] of Object.entries(raw)) {
    if (typeof value !== 'string') continue;
    const type = props[name]?.type;
    if (type === 'integer' && INTEGER.test(value)) out[name] = Number(value);
    else if (type === 'number' && NUMBER.test(value)) out[name] = Number(value);
    else if (type === 'boolean' && (value === 'true' || value === 'false')) out[name] = value === 'true';
  }
  return out;
}

/** `body.email`, `query.limit`, `params.id`: the field a client has to fix. */
function fieldOf(part: string, e: ErrorObject): string {
  const path = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const missing = e.keyword === 'required' ? (e.params as { missingProperty?: string }).missingProperty : undefined;
  const extra = e.keyword === 'additionalProperties' ? (e.params as { additionalProperty?: string }).additionalProperty : undefined;
  return [part, ...path, ...(missing ? [missing] : []), ...(extra ? [extra] : [])].join('.');
}

export function invalidRequest(part: string, errors: readonly ErrorObject[] | null | undefined): IqpError {
  const e = errors?.[0];
  if (!e) return new IqpError('IQP_E_INVALID_REQUEST', `The request's ${part} is invalid.`, { field: part });
  const field = fieldOf(part, e);
  const message =
    e.keyword === 'required' ? `${field} is required.` : e.keyword === 'additionalProperties' ? `${field} is not a known field.` : `${field} ${e.message ?? 'is invalid'}.`;
  return new IqpError('IQP_E_INVALID_REQUEST', message, { field, rule: e.keyword });
}

function compileOrNull(ajv: Ajv, schema: TSchema | undefined): ValidateFunction | null {
  return schema ? ajv.compile(schema) : null;
}

function successStatus(spec: RouteSpec): number {
  const status = Object.keys(spec.responses)
    .map(Number)
    .find((s) => s >= 200 && s < 300);
  return status ?? 200;
}

/**
 * Adds one declared route to `router`. The handler gets the validated parts; it returns the body
 * for the route's first 2xx status, a Reply, or ANSWERED when it wrote the response itself.
 */
export function mountRoute<R extends RouteSpec>(router: Router, ajv: Ajv, spec: R, handler: ContractHandler<R>, options: MountOptions): void {
  const params = compileOrNull(ajv, spec.params);
  const query = compileOrNull(ajv, spec.query);
  const body = compileOrNull(ajv, spec.body);
  const success = successStatus(spec);
  const responses = new Map<number, ValidateFunction>();
  if (options.validateResponses) {
    for (const [status, r] of Object.entries(spec.responses)) if (r.schema) responses.set(Number(status), ajv.compile(r.schema));
  }

  const successCheck = responses.get(success);
  const checked = successCheck
    ? <T>(value: T): T => {
        if (!successCheck(value)) throw mismatch(spec, successCheck);
        return value;
      }
    : <T>(value: T): T => value;

  const chain: RequestHandler[] = [];
  const guard = spec.auth === 'none' ? null : options.guard(spec);
  if (guard) chain.push(guard);
  if (spec.body) chain.push(...bodyParsers(spec, options.jsonLimit ?? 64 * 1024));

  chain.push(async (req, res) => {
    const input: Record<string, unknown> = {};
    for (const [part, validate, raw] of [
      ['params', params, () => scalars(spec.params, req.params as Record<string, unknown>)],
      ['query', query, () => scalars(spec.query, req.query as Record<string, unknown>)],
      ['body', body, () => (isFormBody(req.body) ? scalars(spec.body, req.body as Record<string, unknown>) : (req.body as unknown))],
    ] as const) {
      if (!validate) {
        input[part] = part === 'body' ? undefined : {};
        continue;
      }
      const value = raw();
      if (!validate(value)) throw invalidRequest(part, validate.errors);
      input[part] = value;
    }
    const result = await handler(input as unknown as ValidatedRequest<R>, req, res, checked);
    if (result === ANSWERED || res.headersSent) return;
    const reply: Reply = isReply(result) ? result : { status: success, body: result };
    for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
    const check = responses.get(reply.status);
    if (check && !check(reply.body)) throw mismatch(spec, check);
    if (reply.body === undefined) res.status(reply.status).end();
    else sendJson(req, res, reply.status, reply.body);
  });

  const method = spec.method.toLowerCase() as 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete';
  router[method](expressPath(spec.path), ...chain);
}

/**
 * res.status(status).json(body) without Express's send machinery (a charset lookup, a freshness
 * check, ETags are off anyway): the text, its length and the type. A sync push's answer or a pull's
 * page of half a megabyte goes straight to the socket. 204 and 304 carry no body: Express's path.
 */
function sendJson(req: Request, res: Response, status: number, body: unknown): void {
  if (status === 204 || status === 304) {
    res.status(status).json(body);
    return;
  }
  // Encoded once: its length is the buffer's, and the socket is handed bytes (not a string to encode again).
  const bytes = Buffer.from(JSON.stringify(body));
  res.statusCode = status;
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', bytes.length);
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function mismatch(spec: RouteSpec, check: ValidateFunction): IqpError {
  const e = check.errors![0]!;
  return new IqpError('IQP_E_INTERNAL', `The ${spec.id} answer does not match its declared schema: ${fieldOf('response', e)} ${e.message}.`);
}

const REPLY = Symbol.for('iqp.reply');

/** A full answer from a handler: status, body and headers (a plain returned value is the body of the route's 2xx). */
export function reply(status: number, body?: unknown, headers?: Record<string, string>): Reply {
  return Object.assign({ status, ...(body === undefined ? {} : { body }), ...(headers ? { headers } : {}) }, { [REPLY]: true });
}

function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[REPLY] === true;
}
