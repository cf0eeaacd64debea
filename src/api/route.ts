/**
 * One declaration per HTTP route: its method, path, request (params, query, body) and response
 * JSON Schemas. The registry validates requests with them (server/http/contract.ts), the
 * OpenAPI document is generated from them (scripts/openapi.ts → docs/openapi.json), and the
 * client's and the handlers' TypeScript types are derived from them (Static<…>). Nothing here
 * knows Express or HTTP servers: the client imports these types too.
 *
 * Schemas are written with TypeBox, which builds plain JSON Schema objects and their static types
 * at once; anything ajv accepts may be used.
 */
import type { Static, TSchema } from 'typebox';
import type { ErrorCode } from '../errors.js';

/** HEAD only for a route that answers it differently from its GET's implicit HEAD, or documents it on its own (downloads). */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** How a request body may be encoded, and the media type each is sent as. */
export const BODY_MEDIA_TYPES = { json: 'application/json', form: 'application/x-www-form-urlencoded' } as const;
export type BodyType = keyof typeof BODY_MEDIA_TYPES;

/**
 * Who may call a route. 'none': anyone. 'publisher' and 'admin': an API token with that role (or
 * a stronger one), or a user access token carrying the role once an auth provider is enabled.
 * 'user': a signed-in app user's access token (the auth plugin's).
 */
export type RouteAuth = 'none' | 'user' | 'publisher' | 'admin';

/** A response a route may give: a JSON body described by `schema`, or bytes of `contentType`. */
export interface ResponseSpec {
  readonly description: string;
  /** JSON body; omitted for bodies that are not JSON (see contentType) or empty answers. */
  readonly schema?: TSchema;
  /** For non-JSON bodies (pack bytes, Prometheus text). Default application/json when `schema` is given. */
  readonly contentType?: string;
  /** Response headers worth documenting: name → description. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RouteSpec {
  /** Stable operation id: `<area>.<action>`, e.g. `packs.available`, `auth.login`. Unique across the registry. */
  readonly id: string;
  readonly method: HttpMethod;
  /**
   * OpenAPI-style path relative to the router it is mounted on: `/packs/{id}/{version}/manifest`.
   * Core routes mount on `/v1` (or `/v1/admin`), a plugin's on `/v1/<plugin id>`.
   */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  /** Groups in the OpenAPI document (default: the first path segment). */
  readonly tags?: readonly string[];
  readonly auth: RouteAuth;
  /** Object schemas. Query values arrive as strings: declare numbers as patterned strings or let the schema coerce (see contract.ts). */
  readonly params?: TSchema;
  readonly query?: TSchema;
  /** JSON body schema; for a binary body (pack upload) give `rawBody` instead. */
  readonly body?: TSchema;
  /**
   * The media types `body` may arrive in (default `['json']`). 'form' also takes
   * application/x-www-form-urlencoded, judged by the same schema and size limit: what stock OAuth
   * client libraries send (RFC 6749). Form values are text, so give form routes string fields.
   */
  readonly bodyTypes?: readonly BodyType[];
  readonly rawBody?: { readonly contentTypes: readonly string[]; readonly description: string };
  /**
   * Largest JSON (or form) body in bytes (default 64 KiB). A function is asked on every request,
   * so a plugin can follow its config (read from start() on).
   */
  readonly maxBodyBytes?: number | (() => number);
  /** Request headers the route reads, documented only (name → description); the handler checks them. */
  readonly requestHeaders?: Readonly<Record<string, string>>;
  /** Status → response. The first 2xx entry is what a handler's returned value is sent with. */
  readonly responses: Readonly<Record<number, ResponseSpec>>;
  /** Error codes this route may answer with besides the generic ones (documented in OpenAPI). */
  readonly errors?: readonly ErrorCode[];
}

/** Declares a route; keeps the literal types so Static<> can derive request and response types. */
export function route<const R extends RouteSpec>(spec: R): R {
  return spec;
}

type StaticOr<S, Fallback> = S extends TSchema ? Static<S> : Fallback;

export type ParamsOf<R extends RouteSpec> = StaticOr<R['params'], Record<string, never>>;
export type QueryOf<R extends RouteSpec> = StaticOr<R['query'], Record<string, never>>;
export type BodyOf<R extends RouteSpec> = StaticOr<R['body'], undefined>;

/** The JSON body of the response with the given status (default: the route's first 2xx). */
export type ResponseOf<R extends RouteSpec, S extends keyof R['responses'] = SuccessStatus<R>> = R['responses'][S] extends { schema: infer T }
  ? StaticOr<T, never>
  : never;

type SuccessStatus<R extends RouteSpec> = Extract<keyof R['responses'], 200 | 201 | 202 | 204>;
