/**
 * Every setting of the iqp CLI and registry, defined once: config-file key, flag, environment
 * variable, type, default, help, and the commands that take it. From this table come the commands'
 * options (setting-options.ts), `ctx.config` with one precedence rule, flag > IQP_* > config file >
 * default (config.ts), and the README's configuration table (settings-doc.ts; a test holds it equal).
 *
 * How to add a setting:
 *  1. Add an entry below. Its name is the `ctx.config` property; `key` is the config-file key
 *     (snake_case), `env` the IQP_* variable, `flag` the commander spec (with its short alias) and
 *     `commands` the command paths that take it ('build', 'server start'). Leave out what it has not.
 *  2. Pick a type from setting-types.ts (int with its range, size, path, paths, url, string, names,
 *     boolean, oneOf, trustProxy), or add one there with its parser. A registry setting takes its
 *     default from DEFAULT_SERVER (server/config.ts), the one list of the server's defaults.
 *  3. In each command listed, call `withSettings(cmd, '<command path>')` (already there for most)
 *     and read the value from `ctx.config`: it is parsed, range-checked and typed.
 *  4. Run `npm run build && node dist/scripts/settings-table.js` and paste its table into the
 *     README's "Configuration" section; `src/cli/settings.test.ts` fails until you do.
 */
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_JSON_TIMEOUT_MS, DEFAULT_RETRY } from '../client/retry.js';
import { DEFAULT_LIMITS, GiB, ZSTD_DEFAULT_LEVEL } from '../pack/format.js';
import { DEFAULT_MAX_LINE_BYTES } from '../pack/rows.js';
import { defaultThreads, THREADS_LIMIT } from '../pack/threads.js';
import { DEFAULT_SERVER } from '../../server/config.js';
import { boolean, int, names, oneOf, origins, path, paths, postgresUrl, type SettingType, size, string, trustProxy, url } from './setting-types.js';

export interface Setting<T = unknown> {
  /** Config-file key; none: not settable in the file. */
  readonly key?: string;
  readonly env?: string;
  /** Commander spec, e.g. '-l, --level <n>'. */
  readonly flag?: string;
  /** Command paths that take the flag. */
  readonly commands?: readonly string[];
  /** The flag is repeatable and adds to the environment's or file's list instead of replacing it. */
  readonly adds?: boolean;
  readonly type: SettingType<T>;
  /** A value, null for "not set", or computed from the environment and working directory. */
  readonly default: T | null | ((env: NodeJS.ProcessEnv, cwd: string) => T);
  /** How a computed or null default reads in --help and the README. */
  readonly defaultText?: string;
  /** One line for --help. */
  readonly help: string;
  /** The README's meaning, when it says more than --help. */
  readonly doc?: string;
}

const RELEASE_COMMANDS = ['create', 'attach', 'detach', 'validate', 'publish', 'resign', 'deprecate', 'list', 'show', 'profile', 'profiles'].map((c) => `release ${c}`);
const TOKEN_COMMANDS = ['publish', 'deprecate', 'keys add', 'keys list', 'keys remove', 'audit', ...RELEASE_COMMANDS];
const SERVER_START = ['server start'];
const DATA_COMMANDS = ['server start', 'server migrate', 'server backup', 'server restore', 'server migrate-store', 'token create', 'token list', 'token revoke', 'plugins list', 'plugins enable', 'plugins disable', 'plugins config', 'users list', 'users create', 'users set-role', 'users disable', 'users delete', 'auth rotate-key', 'auth outbox', 'sync compact', 'sync export', 'sync import', 'sync stats'];
const MAX_MS = 86_400_000;

export const SETTINGS = {
  key: {
    key: 'key', env: 'IQP_KEY', flag: '-k, --key <file>', commands: ['build'], type: path, default: null, defaultText: 'none',
    help: 'secret key to sign with', doc: 'Secret key `iqp build` signs with.',
  },
  trustedKeys: {
    key: 'trusted_keys', env: 'IQP_TRUSTED_KEYS', flag: '-p, --pubkey <file>', commands: ['verify', 'pull'], adds: true, type: paths, default: [], defaultText: 'none',
    help: 'trusted public key (repeatable)', doc: 'Public keys `iqp verify` and `iqp pull` trust.',
  },
  level: {
    key: 'level', env: 'IQP_LEVEL', flag: '-l, --level <n>', commands: ['build'], type: int(1, 19), default: ZSTD_DEFAULT_LEVEL,
    help: 'zstd level 1-19', doc: 'zstd level, 1–19 (see docs/performance.md).',
  },
  threads: {
    key: 'threads', env: 'IQP_THREADS', flag: '--threads <n>', commands: ['build'], type: int(1, THREADS_LIMIT), default: () => defaultThreads(), defaultText: 'one per core, at most 4',
    help: 'threads for loading and compressing; the pack is the same for any number',
    doc: `Threads \`iqp build\` loads big data files and compresses with, 1–${THREADS_LIMIT}; the pack's bytes never depend on it (1 on a shared CI runner, for example).`,
  },
  maxLineBytes: {
    key: 'max_line_bytes', env: 'IQP_MAX_LINE_BYTES', flag: '--max-line-bytes <n>', commands: ['build'], type: size(1, GiB), default: DEFAULT_MAX_LINE_BYTES,
    help: 'longest line (and CSV record) a data file may have, in bytes', doc: 'Longest line (and CSV record) a data file of `iqp build` may have.',
  },
  maxContentBytes: {
    key: 'max_content_bytes', env: 'IQP_MAX_CONTENT_BYTES', flag: '--max-size <bytes>', commands: ['inspect', 'verify', 'pull'], type: size(1, 1024 * GiB), default: DEFAULT_LIMITS.maxContentBytes,
    help: 'largest content.sqlite to accept', doc: 'Largest `content.sqlite` a reader (and the registry) accepts; bounds decompression.',
  },
  registry: {
    key: 'registry', env: 'IQP_REGISTRY', flag: '--registry <url>', commands: ['publish', 'pull', 'deprecate', 'keys add', 'keys list', 'keys remove', 'audit', ...RELEASE_COMMANDS, 'release latest'],
    type: url, default: null, defaultText: 'none', help: 'registry base URL', doc: 'Registry base URL for `publish`, `pull`, `deprecate`, `keys`, `audit`, `release`.',
  },
  token: {
    key: 'token', env: 'IQP_TOKEN', flag: '--token <token>', commands: TOKEN_COMMANDS, type: string, default: null, defaultText: 'none',
    help: 'bearer token; a flag lands in shell history, so prefer the environment or the config file',
    doc: 'Bearer token for admin calls. Never printed; prefer the environment or a config file outside the repository to the flag (shell history).',
  },
  retryBaseMs: {
    env: 'IQP_RETRY_BASE_MS', type: int(0, 9_999_999, 'ms'), default: DEFAULT_RETRY.baseMs, help: 'first wait before retrying a registry request',
    doc: 'First wait before retrying a registry request; it doubles per retry (with jitter, at most 8 s each), 5 attempts in all; a download that drops counts again from the first each time it gets further than ever before, up to 100 attempts. Network failures and 502/503/504 are retried, other statuses never. Tests set it to `1`.',
  },
  jsonTimeoutMs: {
    key: 'json_timeout_ms', env: 'IQP_JSON_TIMEOUT_MS', type: int(1, MAX_MS, 'ms'), default: DEFAULT_JSON_TIMEOUT_MS,
    help: 'time a registry has to send a whole JSON answer',
    doc: "Time the registry has to send a whole JSON answer (a listing, a manifest, keys, a publish's result), headers and body, in each attempt; an error answer's body is held to it too. Past it the attempt is cut and retried as a network failure, then `IQP_E_NETWORK`. An upload's answer is timed from its headers: sending the pack and the registry's check of it are not. Pack downloads are not timed, only their pauses (120 s).",
  },
  dataDir: {
    key: 'data_dir', env: 'IQP_DATA', flag: '-d, --data <dir>', commands: DATA_COMMANDS, type: path, default: (_env: NodeJS.ProcessEnv, cwd: string) => resolve(cwd, 'iqp-data'), defaultText: './iqp-data',
    help: 'registry data directory: registry.sqlite, blobs/, tmp/, server.json', doc: 'Registry data directory: `registry.sqlite`, `blobs/`, `tmp/`, `registry-rate-limits.sqlite` (the plugins\' rate-limit counters; never backed up), and `server.json` (which plugins run, and their config: written by `iqp plugins`, see [docs/plugins.md](docs/plugins.md); `server.json.lock` is held while a command changes it).',
  },
  databaseUrl: {
    key: 'database_url', env: 'IQP_DATABASE_URL', type: postgresUrl, default: DEFAULT_SERVER.databaseUrl, defaultText: 'the data directory\'s SQLite file',
    help: 'PostgreSQL for the registry\'s metadata',
    doc: "The registry's metadata (packs, keys, tokens, releases, audit) in PostgreSQL (`postgres://user:password@host:5432/db`) instead of `registry.sqlite` in the data directory: for several servers over one database ([docs/scaling.md](docs/scaling.md)). Never a flag (it may hold a password, which iqp never prints); the commands working on a data directory use it too.",
  },
  databasePoolSize: {
    key: 'database_pool_size', env: 'IQP_DATABASE_POOL_SIZE', flag: '--database-pool-size <n>', commands: SERVER_START, type: int(1, 1000), default: DEFAULT_SERVER.databasePoolSize,
    help: 'PostgreSQL connections per pool, two pools per server process', doc: 'Connections in each of the two pools to PostgreSQL every server process (each worker) keeps, the registry’s and the plugins’, besides one listening connection: allow servers × workers × (2 × this + 1) in PostgreSQL’s `max_connections`. With `database_url` only.',
  },
  blobStore: {
    key: 'blob_store', env: 'IQP_BLOB_STORE', type: oneOf(['fs', 's3'] as const), default: DEFAULT_SERVER.blobStore,
    help: 'where pack bytes live', doc: "Where the registry keeps pack bytes: `fs` (the data directory's `blobs/`) or `s3` (an S3-compatible bucket, with the `s3_*` settings; credentials from the AWS SDK's usual environment variables, such as `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, never from iqp's settings). Uploads are still staged and verified in the data directory's `tmp/`.",
  },
  s3Endpoint: {
    key: 's3_endpoint', env: 'IQP_S3_ENDPOINT', type: url, default: DEFAULT_SERVER.s3Endpoint, defaultText: 'AWS',
    help: 'S3-compatible endpoint', doc: 'An S3-compatible endpoint (`https://minio.internal:9000`, R2, Ceph); unset for AWS S3 itself.',
  },
  s3Region: {
    key: 's3_region', env: 'IQP_S3_REGION', type: string, default: DEFAULT_SERVER.s3Region,
    help: 'bucket region', doc: "The bucket's region (any value an S3-compatible store accepts).",
  },
  s3Bucket: {
    key: 's3_bucket', env: 'IQP_S3_BUCKET', type: string, default: DEFAULT_SERVER.s3Bucket,
    help: 'bucket for pack bytes', doc: 'The bucket pack bytes go to with `blob_store = s3` (required then).',
  },
  s3Prefix: {
    key: 's3_prefix', env: 'IQP_S3_PREFIX', type: string, default: DEFAULT_SERVER.s3Prefix, defaultText: 'none',
    help: 'key prefix in the bucket', doc: 'Put before every key (`iqp/`: keys are `iqp/sha256/<hex>`); a path ending in `/`.',
  },
  s3ForcePathStyle: {
    key: 's3_force_path_style', env: 'IQP_S3_FORCE_PATH_STYLE', type: boolean, default: DEFAULT_SERVER.s3ForcePathStyle,
    help: 'endpoint/bucket/key URLs', doc: 'Address objects as `endpoint/bucket/key` rather than `bucket.endpoint/key`: what most S3-compatible stores need.',
  },
  s3Checksums: {
    key: 's3_checksums', env: 'IQP_S3_CHECKSUMS', type: oneOf(['when_supported', 'when_required'] as const), default: DEFAULT_SERVER.s3Checksums,
    help: 'when request checksums are sent', doc: "`when_supported` (the AWS SDK's default: a CRC32 on every upload) or `when_required` (only where S3 insists), for S3-compatible stores that reject the SDK's checksum headers.",
  },
  s3PublicUrl: {
    key: 's3_public_url', env: 'IQP_S3_PUBLIC_URL', type: url, default: DEFAULT_SERVER.s3PublicUrl, defaultText: 'presigned URLs',
    help: 'public URL of the bucket (a CDN)', doc: "Where clients can read the bucket's objects without a signature (a CDN in front of it): download redirects go to `<this>/<key>` instead of to presigned URLs.",
  },
  downloadMode: {
    key: 'download_mode', env: 'IQP_DOWNLOAD_MODE', type: oneOf(['proxy', 'redirect'] as const), default: DEFAULT_SERVER.downloadMode,
    help: 'registry sends pack bytes, or redirects', doc: '`proxy`: the registry sends pack bytes itself (ranges, `ETag`, `If-Range`). `redirect` (with `blob_store = s3`): `/download` answers 302 to a presigned URL of the object (or to `s3_public_url`), which clients follow (`iqp pull` and the client doc: at most two redirects, then a plain `Range` to resume).',
  },
  downloadUrlTtlS: {
    key: 'download_url_ttl_s', env: 'IQP_DOWNLOAD_URL_TTL_S', type: int(60, 7 * 24 * 3600, 's'), default: DEFAULT_SERVER.downloadUrlTtlS,
    help: 'lifetime of presigned download URLs', doc: 'Seconds a presigned download URL stays valid (a client that resumes later asks the registry again).',
  },
  host: {
    key: 'host', env: 'IQP_HOST', flag: '--host <host>', commands: SERVER_START, type: string, default: DEFAULT_SERVER.host,
    help: 'address to listen on', doc: 'Address the registry listens on.',
  },
  port: {
    key: 'port', env: 'IQP_PORT', flag: '-p, --port <port>', commands: SERVER_START, type: int(0, 65535), default: DEFAULT_SERVER.port,
    help: 'port, 0 for any free one', doc: 'Port the registry listens on; 0 picks a free one.',
  },
  maxUploadBytes: {
    key: 'max_upload_bytes', env: 'IQP_MAX_UPLOAD_BYTES', flag: '--max-upload-bytes <n>', commands: SERVER_START, type: size(1, 1024 * GiB), default: DEFAULT_SERVER.maxUploadBytes,
    help: 'largest pack upload accepted', doc: 'Largest pack the registry accepts.',
  },
  maxCompressionRatio: {
    key: 'max_compression_ratio', env: 'IQP_MAX_COMPRESSION_RATIO', flag: '--max-compression-ratio <n>', commands: SERVER_START, type: int(2, 1_000_000), default: DEFAULT_SERVER.maxCompressionRatio,
    help: 'refuse uploads that expand to more than n bytes per compressed byte',
    doc: 'The registry refuses an upload (413 `IQP_E_CONTENT_TOO_LARGE`) once it has decompressed more than 16 MiB and more than this many bytes per compressed byte read: decompression bombs. Real packs expand 2–12×.',
  },
  publicUrl: {
    key: 'public_url', env: 'IQP_PUBLIC_URL', flag: '--public-url <url>', commands: SERVER_START, type: url, default: DEFAULT_SERVER.publicUrl, defaultText: 'from each request',
    help: 'base URL for download links, e.g. behind a proxy or CDN',
    doc: "Base URL in the registry's download links (behind a proxy or CDN). Set it in production; without it links come from the request's `Host` (checked: see [The registry](#the-registry)).",
  },
  trustProxy: {
    key: 'trust_proxy', env: 'IQP_TRUST_PROXY', flag: '--trust-proxy <value>', commands: SERVER_START, type: trustProxy, default: DEFAULT_SERVER.trustProxy,
    help: 'proxies whose X-Forwarded-For/-Proto are believed: false, loopback, a hop count, or addresses/CIDRs',
    doc: "Which proxies' `X-Forwarded-For` and `X-Forwarded-Proto` the registry believes (the client's address and protocol): `false` (none), `loopback`, a hop count, or a comma list of addresses and CIDRs (`10.0.0.0/8,::1`; `linklocal` and `uniquelocal` name those ranges), as Express's `trust proxy`. Behind a proxy in production, set it and `public_url`.",
  },
  corsOrigins: {
    key: 'cors_origins', env: 'IQP_CORS_ORIGINS', flag: '--cors-origins <list>', commands: SERVER_START, type: origins, default: DEFAULT_SERVER.corsOrigins, defaultText: 'none',
    help: 'web origins whose pages may call the registry (CORS), comma-separated, or *',
    doc: 'Origins (`https://cards.example,http://localhost:5173`, or `*`) whose web pages may call the registry from the browser: CORS headers on every answer to them, and preflights answered. Web apps using `iqp/sync-client` from their own origin need theirs listed. Bearer tokens only (no cookies), so no credentials mode.',
  },
  logRequests: {
    key: 'log_requests', env: 'IQP_LOG_REQUESTS', flag: '--log-requests', commands: SERVER_START, type: boolean, default: DEFAULT_SERVER.logRequests,
    help: 'log one JSON line per request on stderr', doc: 'Log one JSON line per request on stderr.',
  },
  channels: {
    key: 'channels', env: 'IQP_CHANNELS', type: names, default: DEFAULT_SERVER.channels, help: 'release channels the registry offers', doc: 'Release channels the registry offers.',
  },
  jsonCacheBytes: {
    key: 'json_cache_bytes', env: 'IQP_JSON_CACHE_BYTES', flag: '--json-cache-bytes <n>', commands: SERVER_START, type: size(0, 64 * GiB), default: DEFAULT_SERVER.jsonCacheBytes,
    help: 'memory for cached JSON answers, per worker', doc: "Memory for the registry's cached JSON answers, in each worker process (so `workers` times this in all); the least recently used go first. 0 caches nothing.",
  },
  maxConcurrentUploads: {
    key: 'max_concurrent_uploads', env: 'IQP_MAX_CONCURRENT_UPLOADS', flag: '--max-concurrent-uploads <n>', commands: SERVER_START, type: int(1, 10_000), default: DEFAULT_SERVER.maxConcurrentUploads,
    help: 'uploads received at once; more get 503 with Retry-After', doc: 'Uploads the registry receives at once; one more gets 503 `IQP_E_BUSY` with `Retry-After` (the CLI retries).',
  },
  workers: {
    key: 'workers', env: 'IQP_WORKERS', flag: '--workers <n>', commands: SERVER_START, type: int(1, 256), default: () => availableParallelism(), defaultText: 'one per core',
    help: 'processes serving requests (1: this process alone)',
    doc: 'Processes that serve requests on the one port and data directory (1: the `server start` process alone). With more, that process holds the lock, runs recovery and replaces workers that die; `max_connections`, `max_concurrent_uploads` and `json_cache_bytes` apply to each worker.',
  },
  maxConnections: {
    key: 'max_connections', env: 'IQP_MAX_CONNECTIONS', flag: '--max-connections <n>', commands: SERVER_START, type: int(0, 1_000_000), default: DEFAULT_SERVER.maxConnections,
    help: 'open connections at once, 0 for no cap', doc: "Open connections at once (0: no cap); more are closed on arrival. Set it below the process's file-descriptor limit.",
  },
  headersTimeoutMs: {
    key: 'headers_timeout_ms', env: 'IQP_HEADERS_TIMEOUT_MS', flag: '--headers-timeout-ms <ms>', commands: SERVER_START, type: int(1, MAX_MS, 'ms'), default: DEFAULT_SERVER.headersTimeoutMs,
    help: 'time to receive request headers', doc: "Time to receive a request's headers; then 408 `IQP_E_REQUEST_TIMEOUT` and the connection is closed.",
  },
  requestTimeoutMs: {
    key: 'request_timeout_ms', env: 'IQP_REQUEST_TIMEOUT_MS', flag: '--request-timeout-ms <ms>', commands: SERVER_START, type: int(1, MAX_MS, 'ms'), default: DEFAULT_SERVER.requestTimeoutMs,
    help: 'time to receive a request body after its headers', doc: "Time to receive a request's body after its headers (every request but an authenticated upload); then 408.",
  },
  uploadIdleTimeoutMs: {
    key: 'upload_idle_timeout_ms', env: 'IQP_UPLOAD_IDLE_TIMEOUT_MS', flag: '--upload-idle-timeout-ms <ms>', commands: SERVER_START, type: int(1, MAX_MS, 'ms'), default: DEFAULT_SERVER.uploadIdleTimeoutMs,
    help: 'longest pause in an upload before it is cut', doc: "Longest pause in an authenticated upload's body; an upload that keeps sending is never cut.",
  },
  releaseKey: {
    key: 'release_key', env: 'IQP_RELEASE_KEY', flag: '-k, --key <file>', commands: ['release publish', 'release resign', 'release deprecate'], type: path, default: null, defaultText: 'none',
    help: 'release secret key', doc: "Secret key release manifests are signed with (on the release manager's machine only).",
  },
  trustedReleaseKeys: {
    key: 'trusted_release_keys', env: 'IQP_TRUSTED_RELEASE_KEYS', flag: '--release-key <file>', commands: ['pull', 'release latest'], adds: true, type: paths, default: [], defaultText: 'none',
    help: 'pinned release public key (repeatable)', doc: 'Release public keys `iqp pull --release` trusts, and `iqp release latest` checks the latest release with.',
  },
  trustState: {
    key: 'trust_state', env: 'IQP_TRUST_STATE', flag: '--trust-state <file>', commands: ['pull'], type: path, defaultText: '~/.local/state/iqp/release-trust.json',
    default: (env: NodeJS.ProcessEnv) => join(env['XDG_STATE_HOME'] || join(env['HOME'] || homedir(), '.local', 'state'), 'iqp', 'release-trust.json'),
    help: 'where the newest accepted release manifest is remembered', doc: 'The newest release manifest accepted per registry id and channel (rollback protection); never lowered, even by two pulls at once.',
  },
  releaseExpiryDays: {
    key: 'release_expiry_days', env: 'IQP_RELEASE_EXPIRY_DAYS', flag: '--expires-in <days>', commands: ['release publish', 'release resign', 'release deprecate'], type: int(1, 3650, 'days'), default: 30,
    help: 'days until the signed manifest expires', doc: 'Days until a signed release manifest expires (freeze protection); renew with `iqp release resign`.',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/** Variables iqp reads that are not settings of the table's kind (read where they are used); listed for the README. */
export const OTHER_VARIABLES: ReadonlyArray<{ readonly env: string; readonly default: string; readonly doc: string }> = [
  { env: 'IQP_USER_PASSWORD', default: 'prompt', doc: 'Password `iqp users create` gives the new account (never a flag, never printed).' },
  { env: 'IQP_PASSPHRASE', default: 'prompt', doc: 'Passphrase of an encrypted secret key (never a flag, never printed).' },
  { env: 'SOURCE_DATE_EPOCH', default: 'now', doc: 'Build time in seconds; makes builds reproducible.' },
  { env: 'CI', default: 'unset', doc: 'When set to anything but `false` or `0` (which count as unset, as does an empty value), iqp never prompts and draws no spinners.' },
  {
    env: 'UV_THREADPOOL_SIZE',
    default: '`8`',
    doc: "Threads of libuv's pool, shared by file reads, password hashes, the plugin database's WAL syncs and token signatures; iqp sets 8 when it is unset and keeps yours. Raising the auth plugin's `max_concurrent_hashes`, raise this to at least 4 more (docs/runbook.md).",
  },
  { env: 'XDG_STATE_HOME', default: '`~/.local/state`', doc: 'Moves `trust_state`’s default to `$XDG_STATE_HOME/iqp/release-trust.json`.' },
  { env: 'IQP_DEBUG', default: 'unset', doc: 'Print stack traces of internal errors, and one `debug:` line per registry request on stderr (method, URL, status, time; never the token).' },
];
