/**
 * Schemas every area shares: the error body, paging, and the value shapes (semver, package id,
 * SHA-256, key id, times, URLs). Plain TypeBox, no HTTP: the OpenAPI generator, the registry's
 * validation and the client's types all read these.
 */
import Type from 'typebox';
import { CATALOG, type ErrorCode } from '../../errors.js';

/** Every code in the catalog (src/errors.ts); clients must still handle codes added later by their HTTP status. */
export const ErrorCodeSchema = Type.Unsafe<ErrorCode>({ type: 'string', enum: Object.keys(CATALOG), description: 'A stable IQP_E_* code from docs/errors.md.' });

export const ErrorBody = Type.Object(
  {
    code: ErrorCodeSchema,
    message: Type.String({ description: 'For people; do not parse it.' }),
    details: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Code-specific values (e.g. `field` for IQP_E_INVALID_REQUEST).' })),
  },
  { additionalProperties: false },
);

/** `{"error": {...}}`: every error the registry answers. */
export const ErrorResponse = Type.Object({ error: ErrorBody }, { additionalProperties: false });

export const Semver = Type.String({
  maxLength: 64,
  pattern:
    '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$',
  description: 'A semver 2.0.0 version.',
});
export const PackageId = Type.String({ minLength: 3, maxLength: 64, pattern: '^[a-z][a-z0-9]*(?:[.\\-_][a-z0-9]+)*$', description: 'A package id.' });
export const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256, lowercase hex.' });
export const KeyId = Type.String({ pattern: '^[0-9A-F]{16}$', description: 'A minisign key id (16 upper-case hex digits).' });
export const DateTime = Type.String({ format: 'date-time', description: 'RFC 3339, UTC.' });
export const Url = Type.String({ format: 'uri' });
export const RegistryId = Type.String({ pattern: '^[0-9a-f]{32}$', description: 'The registry id release manifests are signed for.' });
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 50;

/** ?limit=&cursor=: one page of a listing. */
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE, description: `Page size, 1–${MAX_PAGE} (default ${DEFAULT_PAGE}).` })),
  cursor: Type.Optional(Type.String({ minLength: 1, description: 'The `next_cursor` of the previous page. A foreign cursor is a 400.' })),
};

export const Paging = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: MAX_PAGE }),
    next_cursor: Nullable(Type.String({ minLength: 1 })),
    has_more: Type.Boolean(),
  },
  { additionalProperties: false },
);

/** Headers documented on responses (the generator gives them schemas by name). */
export const CACHED_HEADERS = {
  ETag: 'Strong entity tag of this JSON body. Send it back in If-None-Match to revalidate; it changes whenever a publish, deprecation or key change alters the answer.',
  'Cache-Control': '`no-cache`: caches may store the body but must revalidate it (If-None-Match) before each use.',
} as const;
/** The 200 headers of a cached read. */
export const CACHED_OK = { ...CACHED_HEADERS, 'Content-Length': 'Length of the body in bytes.' } as const;
export const CACHED_NOTE = '\n\nCached read: the body carries a strong `ETag` and `Cache-Control: no-cache`; revalidate with `If-None-Match` and a 304 means your copy is current.';
export const NO_STORE = { 'Cache-Control': '`no-store`: never cache this response.' } as const;

/** A 304 to a matching If-None-Match (cached reads). */
export const NOT_MODIFIED = { description: 'If-None-Match matched: your copy is current. No body.', headers: { ETag: CACHED_HEADERS.ETag } } as const;
