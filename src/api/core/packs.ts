/** Pack discovery and download, health and metrics: the public reads under /v1. */
import Type from 'typebox';
import { route } from '../route.js';
import { CACHED_NOTE, CACHED_OK, DateTime, ErrorBody, ErrorCodeSchema, KeyId, NO_STORE, NOT_MODIFIED, Nullable, PackageId, PageQuery, Paging, Semver, Sha256, Url } from './common.js';

const LANGUAGE = Type.String({ minLength: 2, maxLength: 35, pattern: '^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$', description: 'BCP 47 language tag of the content, e.g. en, ar, ur-PK, zh-Hant.' });
const PACKAGE_TYPE = Type.String({ pattern: '^[a-z][a-z0-9-]{1,31}$', description: 'What kind of content this is (translation, recitation, dataset, deck, or an app-defined type).' });

/** manifest.json inside a pack (docs/schemas/manifest.schema.json is the normative copy; a test holds the two together). */
export const Manifest = Type.Object(
  {
    format: Type.Literal(1, { description: 'Pack format version. Readers refuse formats they do not know.' }),
    package_id: PackageId,
    package_type: PACKAGE_TYPE,
    version: Semver,
    language_code: LANGUAGE,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String({ maxLength: 5000 }),
    min_app_version: Semver,
    created_at: Type.String({
      format: 'date-time',
      pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)?(?:Z|[+-]\\d{2}:\\d{2})$',
      description: 'RFC 3339 time of the build, with an upper-case T and Z or a numeric offset.',
    }),
    license: Type.Optional(Type.String({ maxLength: 200 })),
    attribution: Type.Optional(Type.String({ maxLength: 2000 })),
    files: Type.Array(Type.Object({ path: Type.Literal('content.sqlite'), size_bytes: Type.Integer({ minimum: 0 }), sha256: Sha256 }, { additionalProperties: false }), { minItems: 1, maxItems: 1 }),
    tables: Type.Array(
      Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }), row_count: Type.Integer({ minimum: 0 }), columns: Type.Array(Type.String({ minLength: 1, maxLength: 128 })) }, { additionalProperties: false }),
      { maxItems: 1000 },
    ),
  },
  { additionalProperties: false },
);

export const PackStatus = Type.Union([Type.Literal('published'), Type.Literal('deprecated')]);

/** What the registry adds to a manifest: what cannot live inside the archive. */
const SERVED = {
  size_bytes: Type.Integer({ minimum: 0 }),
  sha256: Sha256,
  status: PackStatus,
  deprecated_message: Nullable(Type.String({ maxLength: 2000 })),
  published_at: DateTime,
  signer_key_id: KeyId,
  signature: Type.String({ description: "The pack's manifest.json.minisig." }),
  manifest_json: Type.String({ description: 'The exact signed manifest.json text.' }),
  download_url: Url,
};

/** One version's manifest as served: GET …/manifest, and (with `result`) the publish answer. */
export const ServedManifest = Type.Object({ ...Manifest.properties, ...SERVED }, { additionalProperties: false });

export const PublishResult = Type.Object(
  { result: Type.Union([Type.Literal('created'), Type.Literal('identical')]), ...Manifest.properties, ...SERVED },
  { additionalProperties: false },
);

const VERSION_FACTS = {
  version: Semver,
  min_app_version: Semver,
  size_bytes: Type.Integer({ minimum: 0 }),
  sha256: Sha256,
  signer_key_id: KeyId,
  manifest_url: Url,
  download_url: Url,
};

export const PackVersion = Type.Object(
  { ...VERSION_FACTS, status: PackStatus, deprecated_message: Nullable(Type.String({ maxLength: 2000 })), published_at: DateTime },
  { additionalProperties: false },
);

export const PackVersions = Type.Object({ package_id: Type.String(), versions: Type.Array(PackVersion, { minItems: 1 }) }, { additionalProperties: false });

export const PackSummary = Type.Object(
  {
    package_id: PackageId,
    package_type: PACKAGE_TYPE,
    language_code: LANGUAGE,
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.String(),
    tables: Type.Array(Type.Object({ name: Type.String(), row_count: Type.Integer({ minimum: 0 }) }, { additionalProperties: false })),
    ...VERSION_FACTS,
  },
  { additionalProperties: false },
);

export const AvailablePacks = Type.Object({ app_version: Nullable(Semver), packs: Type.Array(PackSummary) }, { additionalProperties: false });

export const PackList = Type.Object(
  {
    packs: Type.Array(Type.Object({ package_id: PackageId, versions: Type.Integer({ minimum: 1 }), latest_published_at: DateTime }, { additionalProperties: false })),
    paging: Paging,
  },
  { additionalProperties: false },
);

export const KeyPurpose = Type.Union([Type.Literal('pack'), Type.Literal('release')], { description: 'What the key signs: packs, or release manifests.' });

export const PublisherKey = Type.Object(
  {
    key_id: KeyId,
    name: Type.String(),
    /** Registries from before release keys omit it (all keys sign packs). */
    purpose: Type.Optional(KeyPurpose),
    public_key: Type.String({ description: 'The minisign public key (base64).' }),
    added_at: DateTime,
  },
  { additionalProperties: false },
);

export const KeyList = Type.Object({ keys: Type.Array(PublisherKey) }, { additionalProperties: false });

/** The plugins' state, said only when the registry has plugins (docs/plugins.md). */
const PluginsHealth = Type.Object(
  {
    loaded: Type.Array(Type.Object({ id: Type.String(), version: Type.String() }, { additionalProperties: false })),
    failed: Type.Array(Type.Object({ id: Type.String(), code: ErrorCodeSchema, message: Type.String() }, { additionalProperties: false }), {
      description: 'Plugins left out: their routes answer 503 `IQP_E_PLUGIN_UNAVAILABLE`.',
    }),
  },
  { additionalProperties: false },
);

export const Health = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')], {
      description: '`degraded`: serving, but a plugin failed and is left out (see `plugins.failed`).',
    }),
    checks: Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('failed')])),
    plugins: Type.Optional(PluginsHealth),
    error: Type.Optional(ErrorBody),
  },
  { additionalProperties: false },
);

const PACK_ID_PARAM = Type.String({ description: 'The package id. Ids outside the pattern are not refused; there is simply no such pack (404).' });
const DOWNLOAD_HEADERS = {
  ETag: "Strong entity tag: the pack's SHA-256 in quotes. Use it in If-Range to resume and in If-None-Match to revalidate.",
  'Cache-Control': '`public, max-age=31536000, immutable` on versioned URLs (`?version=`); `public, no-cache` on the unversioned URL, which moves to each new version.',
  'Accept-Ranges': 'Byte ranges are supported.',
  'Last-Modified': 'When this version was published (HTTP-date).',
  'Content-Disposition': '`attachment; filename="<package_id>-<version>.iqp"`: the canonical file name.',
  'X-Iqp-Version': 'The version served, which tells an unversioned download which version it got.',
  'X-Iqp-Sha256': 'SHA-256 of the whole file (lowercase hex), also on 206 and HEAD: check the completed download against it.',
  'Content-Length': 'Length of the body (of the part, for 206; of what a GET would send, for HEAD).',
};
export const PACK_MEDIA_TYPE = 'application/vnd.iqp.pack+zstd';

export const health = route({
  id: 'service.health',
  method: 'GET',
  path: '/health',
  summary: 'Is the registry able to serve?',
  description: 'Checks the metadata database and the blob store. For load balancers and uptime checks; never cached.',
  tags: ['service'],
  auth: 'none',
  responses: {
    200: { description: 'Healthy (`ok`), or serving with a plugin left out (`degraded`).', schema: Health, headers: NO_STORE },
    503: { description: 'A dependency failed: `status` is `unavailable`, `checks` names the failing one and `error.code` is `IQP_E_UNAVAILABLE`.', schema: Health, headers: NO_STORE },
  },
});

export const metrics = route({
  id: 'service.metrics',
  method: 'GET',
  path: '/metrics',
  summary: 'Prometheus metrics',
  description:
    'Prometheus text exposition (version 0.0.4): requests by route and status, latency, download and upload bytes, uploads by result, packs stored, process metrics (prefix `iqp_process_`). Not authenticated: expose it only where a scraper should reach it.',
  tags: ['service'],
  auth: 'none',
  responses: { 200: { description: 'The metrics.', contentType: 'text/plain; version=0.0.4; charset=utf-8', headers: NO_STORE } },
});

export const keys = route({
  id: 'packs.keys',
  method: 'GET',
  path: '/keys',
  summary: 'The publisher keys packs are signed with',
  description:
    'The public keys whose signatures the registry accepts: `purpose: pack` keys sign packs (apps and `iqp verify --pubkey` verify downloaded packs with them), `purpose: release` keys sign release manifests. Pin the keys you expect in the app rather than trusting this list blindly: it comes from the same server as the packs.' +
    CACHED_NOTE,
  tags: ['packs'],
  auth: 'none',
  responses: { 200: { description: 'The keys, oldest first.', schema: KeyList, headers: CACHED_OK }, 304: NOT_MODIFIED },
});

export const list = route({
  id: 'packs.list',
  method: 'GET',
  path: '/packs',
  summary: 'Every pack id, paged',
  description: `All stored pack ids in id order, with their version counts.${CACHED_NOTE}`,
  tags: ['packs'],
  auth: 'none',
  query: Type.Object(PageQuery),
  responses: { 200: { description: 'One page of pack ids.', schema: PackList, headers: CACHED_OK }, 304: NOT_MODIFIED },
  errors: ['IQP_E_USAGE'],
});

export const available = route({
  id: 'packs.available',
  method: 'GET',
  path: '/packs/available',
  summary: 'What this app can install: the newest usable version of each pack',
  description:
    "The call an app makes to discover content: for each pack, the newest version that is published, not deprecated, not a prerelease (unless `prerelease=true`) and whose `min_app_version` is at most `app_version`. Each summary links to its manifest and to its immutable, versioned download." +
    CACHED_NOTE,
  tags: ['packs'],
  auth: 'none',
  query: Type.Object({
    app_version: Type.Optional(Type.String({ description: "The app's version (semver); packs needing a newer app are left out. Omitted or empty: no filter." })),
    type: Type.Optional(Type.String({ description: 'Only packs of this package_type (exact match).' })),
    lang: Type.Optional(Type.String({ description: 'Only packs with this language_code (exact match, e.g. `en` does not match `en-GB`).' })),
    prerelease: Type.Optional(Type.String({ description: '`true` to consider prerelease versions (e.g. 2.0.0-beta.1); any other value means false.' })),
  }),
  responses: { 200: { description: 'The usable packs.', schema: AvailablePacks, headers: CACHED_OK }, 304: NOT_MODIFIED },
  errors: ['IQP_E_INVALID_VERSION', 'IQP_E_INVALID_HOST'],
});

export const versions = route({
  id: 'packs.versions',
  method: 'GET',
  path: '/packs/{id}',
  summary: 'Every version of one pack',
  description:
    'All stored versions, newest first, deprecated and prerelease ones included, each with its status. (A pack whose id is literally `available` cannot be listed here: that path is GET /v1/packs/available.)' +
    CACHED_NOTE,
  tags: ['packs'],
  auth: 'none',
  params: Type.Object({ id: PACK_ID_PARAM }),
  responses: { 200: { description: 'The versions.', schema: PackVersions, headers: CACHED_OK }, 304: NOT_MODIFIED },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_INVALID_HOST', 'IQP_E_USAGE'],
});

export const manifest = route({
  id: 'packs.manifest',
  method: 'GET',
  path: '/packs/{id}/{version}/manifest',
  summary: "One version's manifest, signature and download link",
  description:
    'Everything about one version without downloading it: the manifest fields (tables, row counts, licence…), size, SHA-256, status, the signed `manifest_json` and its `signature`. Deprecated versions are served too, with `status: deprecated`. A version that is not semver is a 400 `IQP_E_INVALID_VERSION`.' +
    CACHED_NOTE,
  tags: ['packs'],
  auth: 'none',
  params: Type.Object({ id: PACK_ID_PARAM, version: Type.String({ description: 'A semver version of the pack.' }) }),
  responses: { 200: { description: 'The served manifest.', schema: ServedManifest, headers: CACHED_OK }, 304: NOT_MODIFIED },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_INVALID_VERSION', 'IQP_E_INVALID_HOST', 'IQP_E_USAGE'],
});

const DOWNLOAD_DESCRIPTION =
  'The .iqp bytes with RFC 9110 range semantics.\n\nWith `?version=` the URL names one immutable file (`Cache-Control: public, max-age=31536000, immutable`); this is the URL that manifests and summaries link to. Without it, the newest published, non-deprecated, non-prerelease version is served (`Cache-Control: public, no-cache`) and `X-Iqp-Version` says which.\n\n**Resuming.** Keep the strong `ETag` (`"<sha256>"`) of the first response. To continue after N bytes, send `Range: bytes=N-` and `If-Range: "<sha256>"`: a 206 with `Content-Range: bytes N-<last>/<size>` continues your file; a 200 means the representation changed (only possible on the unversioned URL) and carries the whole new file, so start over. A range starting at or past the end is a 416 with `Content-Range: bytes */<size>` (if N equals the size, you already have everything).\n\n**One range per request.** A multi-range request gets the whole file with 200 (never multipart/byteranges); a malformed Range header is ignored the same way.\n\n**Check what you got**: the SHA-256 of the complete file must equal `X-Iqp-Sha256` (and the manifest\'s `sha256`), and the pack\'s signature must verify against a key from GET /v1/keys before the content is used.';

const downloadParts = {
  tags: ['download'],
  auth: 'none',
  path: '/packs/{id}/download',
  params: Type.Object({ id: PACK_ID_PARAM }),
  query: Type.Object({ version: Type.Optional(Type.String({ description: 'The version to download (semver). Without it: the newest published, non-deprecated, non-prerelease version.' })) }),
  requestHeaders: {
    Range: 'One byte range: `bytes=<first>-`, `bytes=<first>-<last>` or `bytes=-<n>`. A multi-range or malformed header is ignored: the answer is the whole file with 200.',
    'If-Range': 'Resume only if the file is unchanged: the strong ETag of the response you are resuming. Unchanged: 206 with the range; else 200 with the whole current file.',
  },
  responses: {
    200: { description: 'The whole file: no Range, a multi-range or malformed Range, or an If-Range that no longer matches.', contentType: PACK_MEDIA_TYPE, headers: DOWNLOAD_HEADERS },
    206: { description: 'The requested range, `Content-Range` saying which bytes of how many.', contentType: PACK_MEDIA_TYPE, headers: { ...DOWNLOAD_HEADERS, 'Content-Range': 'The part sent: `bytes <first>-<last>/<size>`, offsets inclusive.' } },
    302: {
      description:
        'Only on a registry with `download_mode = redirect`: the bytes are at `Location` (a presigned URL of the object store, or its CDN). Follow at most two redirects, without your Authorization header, sending your Range there (no If-Range: that ETag is not the pack\'s), and check the size and SHA-256 (`X-Iqp-Sha256`) of the whole file at the end. No body.',
      headers: { Location: 'Where to fetch the bytes (absolute https or http URL).', ETag: DOWNLOAD_HEADERS.ETag, 'X-Iqp-Sha256': DOWNLOAD_HEADERS['X-Iqp-Sha256'], 'X-Iqp-Version': DOWNLOAD_HEADERS['X-Iqp-Version'] },
    },
    304: { description: "If-None-Match matched this file's ETag: your copy is current. No body. (Evaluated before Range.)", headers: { ETag: DOWNLOAD_HEADERS.ETag } },
    416: { description: 'The range starts at or beyond the end of the file; `details.size_bytes` and `Content-Range: bytes */<size>` give the size.', headers: { 'Content-Range': '`bytes */<size>`: the file\'s size.' } },
  },
  errors: ['IQP_E_NOT_FOUND', 'IQP_E_INVALID_VERSION', 'IQP_E_RANGE_NOT_SATISFIABLE', 'IQP_E_USAGE', 'IQP_E_UNAVAILABLE'],
} as const;

export const download = route({ id: 'packs.download', method: 'GET', summary: 'Download a pack, whole or a byte range', description: DOWNLOAD_DESCRIPTION, ...downloadParts });

export const downloadHead = route({
  id: 'packs.download-head',
  method: 'HEAD',
  summary: 'Size, version, checksum and validators of a download, without the bytes',
  description:
    'The same status and headers as GET, without the body: the size to expect (`Content-Length`), the version an unversioned URL resolves to (`X-Iqp-Version`), the SHA-256 to check against (`X-Iqp-Sha256`) and the validators (`ETag`, `Last-Modified`). Range, If-Range and If-None-Match are evaluated as for GET.',
  ...downloadParts,
});

/** Public pack reads, in mount order under /v1 (literal paths before the patterns they overlap). */
export const PACK_ROUTES = [health, metrics, keys, list, available, versions, manifest, download, downloadHead] as const;
