/**
 * The prose at the top of the generated OpenAPI document (docs/openapi.json): how an app uses the
 * registry, its conventions, caching, ranges and authentication. Routes document themselves in
 * their declarations; this is what is true of all of them.
 */
export const API_TITLE = "iqp registry API";
export const API_SUMMARY = "Discover, inspect and download signed offline content packs; publish them and manage publisher keys.";
export const API_DESCRIPTION = [
  "The iqp registry stores signed offline content packs (`.iqp` files, specified in docs/pack-format.md) and serves their manifests and bytes to apps and to the `iqp` CLI.",
  "",
  "## How an app uses it",
  "",
  "1. `GET /v1/packs/available?app_version=<your app's version>` lists, for each pack, the newest version your app can use (optionally `type=` and `lang=`).",
  "2. `GET` a summary's `manifest_url` for the full manifest, or go straight to its `download_url`.",
  "3. Download the bytes from `download_url` (resumable, see below), check their SHA-256 against `sha256`, and verify the signature with a publisher key you trust (`GET /v1/keys`; `iqp verify --pubkey` does both checks) before using the content.",
  "",
  "When the publisher ships **releases** (a signed set of pack versions per app version), ask `GET /v1/releases/latest?channel=stable&app_version=<version>` instead: verify its signed `manifest_json` with a release key you trust, refuse it if expired or older (lower `sequence`) than one you have seen, then download and check each artifact as above.",
  "",
  "## Conventions",
  "",
  "- Every path is under `/v1`. Bodies are JSON (`application/json; charset=utf-8`) except the pack bytes (`application/vnd.iqp.pack+zstd`, also the raw body of an upload) and `/v1/metrics` (Prometheus text).",
  "- A request whose path parameters, query or JSON body do not match the route is a 400 `IQP_E_INVALID_REQUEST` whose `details.field` names what to fix (`query.limit`, `body.message`). Query parameters a route does not declare are ignored.",
  "- Errors are always `{\"error\": {\"code\", \"message\", \"details\"?}}` with `Cache-Control: no-store`. Branch on `code`, a stable `IQP_E_*` code from the catalog in docs/errors.md (the CLI uses the same codes); show `message` to people; `details` carries code-specific values.",
  "- A path the registry does not serve is a 404 `IQP_E_NOT_FOUND` whose message is `No route for <METHOD> <path>.`. A known path asked with a method it does not take is a 405 `IQP_E_METHOD_NOT_ALLOWED` with an `Allow` header listing the ones it does (`components/responses/MethodNotAllowed`).",
  "- Every answer carries `X-Content-Type-Options: nosniff`.",
  "- Slow requests are cut: headers must arrive within `headers_timeout_ms` and a body within `request_timeout_ms` of its headers (408 `IQP_E_REQUEST_TIMEOUT`, connection closed); an authenticated upload is cut only when it pauses longer than `upload_idle_timeout_ms`. A refused request whose body has not been read (401, 403, 404, 405, 503 busy) gets `Connection: close`.",
  "- Every `GET` also answers `HEAD` with the same status and headers and no body; only the download's HEAD is listed, because apps use it. `OPTIONS` answers 200 with an `Allow` header (plain text, not JSON).",
  "- Response schemas list every field the registry sends today. Later releases may add fields and error codes: ignore fields you do not know, and handle an unknown code by its HTTP status.",
  "- Times are RFC 3339 in UTC. Absolute URLs in bodies use the registry's configured public URL, else the scheme and Host of the request; then a Host that is not a host name or IP literal with an optional port (or an X-Forwarded-Proto from a trusted proxy other than http or https) is refused with 400 `IQP_E_INVALID_HOST`.",
  "",
  "## Caching",
  "",
  "- **JSON reads** (`/v1/keys`, `/v1/packs…`, `/v1/channels`, `/v1/releases…`) carry a strong `ETag` and `Cache-Control: no-cache`: keep the body with its ETag and revalidate with `If-None-Match`; a 304 (no body) means your copy is current. The ETag changes when a publish, deprecation or key change alters the answer.",
  "- **Versioned downloads** (`/v1/packs/{id}/download?version=…`, the `download_url` in every body) are immutable: `Cache-Control: public, max-age=31536000, immutable`, and the ETag is the file's SHA-256, so the app, an HTTP cache or a CDN may keep them forever. The unversioned URL follows the newest version and is `public, no-cache`.",
  "- Health, metrics, admin reads and every error are `no-store`.",
  "",
  "## Downloads: ranges and resuming",
  "",
  "- Downloads support single byte ranges (`Accept-Ranges: bytes`). To resume after N bytes, send `Range: bytes=N-` with `If-Range: \"<sha256>\"`, the strong ETag of the response you are resuming. A **206** (`Content-Range: bytes N-<last>/<size>`) continues your file; a **200** means the file changed (only possible on the unversioned URL) and carries the whole new file, so start over. Without If-Range you could splice bytes of two different versions.",
  "- A **multi-range** request (`bytes=0-99,200-299`) gets the **whole file with 200**, never multipart/byteranges; a malformed Range header is ignored the same way. Suffix ranges (`bytes=-N`) are served.",
  "- A range that starts at or beyond the end is a **416** `IQP_E_RANGE_NOT_SATISFIABLE` with `Content-Range: bytes */<size>`; when resuming at exactly the size, you already have the whole file.",
  "- `HEAD` tells the size (`Content-Length`), the version an unversioned URL resolves to (`X-Iqp-Version`) and the checksum (`X-Iqp-Sha256`) without transferring the bytes.",
  "",
  "## Authentication",
  "",
  "Reads are public. Everything under `/v1/admin` needs `Authorization: Bearer <token>` (security scheme `bearer`); the role each operation needs is named in its security requirement and description: `publisher` may publish and deprecate packs and manage releases; `admin` may do everything, including publisher keys and the audit log. The token is an API token (`iqp token create`) or, when the registry runs an auth plugin, a user access token whose roles include the one required. An expired access token is a 401 `IQP_E_TOKEN_EXPIRED` with `WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"expired\"`: refresh it and try again.",
].join("\n");
export const API_SERVERS = [
  {
    "url": "http://{host}:{port}",
    "description": "A registry started with `iqp server start` (behind a proxy or CDN, use its public URL instead).",
    "variables": {
      "host": {
        "default": "127.0.0.1"
      },
      "port": {
        "default": "8686"
      }
    }
  }
];
export const API_TAGS = [
  {
    "name": "packs",
    "description": "Discovering packs and their versions, manifests and signing keys (public, cacheable)."
  },
  {
    "name": "download",
    "description": "Pack bytes, with ranges for resumable downloads (public, cacheable)."
  },
  {
    "name": "releases",
    "description": "Releases: signed sets of pack versions for an app version on a channel. Reading is public; managing them needs a publisher token."
  },
  {
    "name": "admin",
    "description": "Publishing, deprecation, publisher keys and the audit log (bearer token with a role)."
  },
  {
    "name": "service",
    "description": "Health and metrics for operators."
  }
];
