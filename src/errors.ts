/**
 * The one catalog of iqp errors. The CLI and the registry speak these codes; each carries the
 * exit code a script can branch on and the HTTP status the registry answers with.
 *
 * Exit codes: 0 ok, 1 failed check, 2 usage error, 3 network/registry error,
 * 4 local I/O error (disk full, permission denied), 70 internal error, 130 cancelled prompt.
 */

export const EXIT = {
  ok: 0,
  check: 1,
  usage: 2,
  network: 3,
  io: 4,
  internal: 70,
  cancelled: 130,
} as const;

interface Spec {
  readonly message: string;
  readonly hint: string;
  readonly exit: number;
  readonly http: number;
}

const usage = (message: string, hint: string): Spec => ({ message, hint, exit: EXIT.usage, http: 400 });
const check = (message: string, hint: string, http = 422): Spec => ({ message, hint, exit: EXIT.check, http });
const plugin = (message: string, hint: string): Spec => ({ message, hint, exit: EXIT.check, http: 500 });
const packCheck = (message: string): Spec =>
  check(message, 'The pack is damaged or was not made by a conforming builder; rebuild it with `iqp build`.');

export const CATALOG = {
  // Usage
  IQP_E_USAGE: usage('Invalid usage.', 'Run the command with --help to see its options.'),
  IQP_E_MISSING_OPTION: usage('A required value is missing.', 'Pass it as a flag; prompts only appear at an interactive terminal.'),
  IQP_E_FILE_NOT_FOUND: usage('File or directory not found.', 'Check the path.'),
  IQP_E_TEMPLATE_UNKNOWN: usage('Unknown template.', 'Use one of the templates listed by `iqp init --help`.'),
  IQP_E_TARGET_NOT_EMPTY: usage('The target directory is not empty.', 'Choose an empty or new directory, or pass --force to write into it.'),
  IQP_E_INVALID_ID: usage(
    'Invalid package id.',
    'Use 3-64 characters: lowercase letters, digits, dots, dashes and underscores, starting with a letter (e.g. quran.translation.en-sahih).',
  ),
  IQP_E_KEY_REQUIRED: usage('No signing key given.', 'Pass --key FILE (see `iqp keygen`), or --unsigned to build an unsigned pack on purpose.'),
  IQP_E_NO_TRUSTED_KEYS: usage('No public key to verify the signature with.', 'Pass --pubkey FILE, or list the publisher’s keys in trusted_keys (IQP_TRUSTED_KEYS).'),
  IQP_E_PASSPHRASE_REQUIRED: usage(
    'The secret key is encrypted and no passphrase was given.',
    'Set IQP_PASSPHRASE, or run at an interactive terminal to be prompted.',
  ),
  IQP_E_CONFIG: usage('Invalid configuration.', 'Fix the named key in the config file or environment.'),
  IQP_E_DATA_DIR_LOCKED: {
    message: 'The data directory is in use by another iqp process.',
    hint: 'Stop the registry that holds it (the PID is in the message) before running this command, or use another --data directory.',
    exit: EXIT.io,
    http: 409,
  },
  IQP_E_SERVER_FILE_LOCKED: {
    message: 'Another process kept server.json locked for too long.',
    hint: 'Another `iqp plugins` command is changing it: let it finish and run this one again. A lock whose process ended is released by the system.',
    exit: EXIT.io,
    http: 409,
  },

  // Keys and signatures
  IQP_E_KEY_INVALID: usage('Not a valid minisign key file.', 'Key files are made by `iqp keygen` or `minisign -G`.'),
  IQP_E_KEY_PASSPHRASE: usage('Wrong passphrase for the secret key.', 'Check the passphrase (IQP_PASSPHRASE) and try again.'),
  IQP_E_KEY_EXISTS: usage('A key file already exists at that path.', 'Pass --force to overwrite it, or choose another --out.'),
  IQP_E_SIG_MALFORMED: packCheck('The signature file is malformed.'),
  IQP_E_SIG_INVALID: check('The signature does not verify.', 'The manifest or its signature was altered after signing; do not trust this pack.'),
  IQP_E_SIG_UNTRUSTED_KEY: check(
    'The pack is signed by a key that is not trusted.',
    'Pass the publisher’s public key with --pubkey, or check that the pack comes from the expected publisher.',
  ),
  IQP_E_SIG_COMMENT_MISMATCH: check(
    'The signature’s trusted comment does not match the manifest.',
    'The signature belongs to another pack or version; do not trust this pack.',
  ),
  IQP_E_PACK_UNSIGNED: check('The pack is not signed.', 'Sign it by building with --key, or pass --allow-unsigned if you expect an unsigned pack.'),

  // Pack structure
  IQP_E_PACK_COMPRESSION: packCheck('The pack is not valid zstd data, or the stream is corrupt or truncated.'),
  IQP_E_PACK_NOT_TAR: packCheck('The pack does not contain a valid POSIX tar archive.'),
  IQP_E_PACK_TRUNCATED: packCheck('The archive ends early: inside an entry, or before its end-of-archive marker.'),
  IQP_E_PACK_ENTRY_MISSING: packCheck('A required entry is missing from the pack.'),
  IQP_E_PACK_ENTRY_DUPLICATE: packCheck('An entry appears more than once in the pack.'),
  IQP_E_PACK_ENTRY_UNEXPECTED: packCheck('The pack contains an entry that format v1 does not allow.'),
  IQP_E_PACK_ENTRY_ORDER: packCheck('The pack’s entries are out of order.'),
  IQP_E_PACK_ENTRY_PATH: packCheck('An entry has an unsafe path (absolute, or containing “..”).'),
  IQP_E_PACK_ENTRY_TYPE: packCheck('An entry is not a regular file (symlink, hardlink, device, directory or extended header).'),
  IQP_E_PACK_ENTRY_TOO_LARGE: packCheck('An entry is larger than allowed.'),
  IQP_E_PACK_TOO_LARGE: check(
    'The pack expands beyond what its entries can hold.',
    'This looks like a decompression bomb (e.g. megabytes of padding after the archive); do not use this pack.',
  ),
  IQP_E_PACK_TRAILING_DATA: packCheck('The pack has data after the end of the archive.'),
  IQP_E_PACK_SIZE_MISMATCH: packCheck('A file’s size differs from the manifest.'),
  IQP_E_PACK_HASH_MISMATCH: packCheck('A file’s SHA-256 differs from the manifest.'),
  IQP_E_PACK_CHECKSUMS: packCheck('checksums.sha256 is malformed or disagrees with the manifest.'),

  // Manifest
  IQP_E_MANIFEST_JSON: packCheck('manifest.json is not valid UTF-8 JSON.'),
  IQP_E_MANIFEST_FORMAT: check('Unsupported pack format.', 'This iqp reads format 1; upgrade iqp to read newer packs.'),
  IQP_E_MANIFEST_SCHEMA: check('The manifest does not match the format v1 schema.', 'See docs/pack-format.md for the required fields.'),
  IQP_E_MANIFEST_SEMVER: check('A version in the manifest is not valid semver.', 'Use MAJOR.MINOR.PATCH, e.g. 1.2.0.'),
  IQP_E_MANIFEST_LANGUAGE: check('language_code is not a valid BCP 47 tag.', 'Use a tag such as en, ar, ur-PK or zh-Hant.'),

  // Content
  IQP_E_CONTENT_INVALID: check('content.sqlite is not a valid SQLite database.', 'Build the content with `iqp build`, or check the --content file.'),
  IQP_E_CONTENT_INTEGRITY: check('content.sqlite fails PRAGMA integrity_check.', 'The database is corrupt; rebuild the pack.'),
  IQP_E_CONTENT_TABLES: check('content.sqlite’s tables or row counts differ from the manifest.', 'Rebuild the pack; the manifest must describe its content.'),

  // Source data
  IQP_E_SOURCE_MISSING: check('The pack source is incomplete.', 'A source folder needs iqp.json, schema.sql and data/<table>.jsonl or .csv files.', 400),
  IQP_E_SOURCE_CONFIG: check('iqp.json is invalid.', 'Fix what the message names in the pack source (a field of iqp.json, or one of its files); `iqp init` writes a working example.', 400),
  IQP_E_SCHEMA_SQL: check('schema.sql could not be applied.', 'Fix the SQL statement named in the message.', 400),
  IQP_E_SCHEMA_FORBIDDEN: check(
    'schema.sql contains a statement a pack schema may not run.',
    'schema.sql may only create tables, indexes, views and triggers in the pack’s own database (no ATTACH, DETACH, VACUUM, writing PRAGMA or extensions).',
    400,
  ),
  IQP_E_SOURCE_SYMLINK: check('The pack source contains a symbolic link.', 'Copy the file into the source folder instead of linking to it.', 400),
  IQP_E_REQUIRED_TABLE_EMPTY: check('A table the template requires has no rows.', 'Add rows to its data file, or build without --strict to accept an empty table.'),
  IQP_E_DATA_PARSE: check('A data file could not be parsed.', 'Fix the file at the line and column given.', 400),
  IQP_E_DATA_ROW: check('A data row does not fit its table.', 'Fix the row at the line given.', 400),
  IQP_E_DATA_TABLE_UNKNOWN: check('A data file names a table that schema.sql does not create.', 'Rename the file or add the table to schema.sql.', 400),
  IQP_E_TEMPLATE_REQUIREMENT: check('The content lacks a table or column its template requires.', 'Add it to schema.sql; see the template’s README.'),

  // Registry
  IQP_E_NOT_FOUND: { message: 'Not found.', hint: 'Check the pack id, version or path.', exit: EXIT.network, http: 404 },
  IQP_E_INVALID_REQUEST: {
    message: 'The request does not match what the route accepts.',
    hint: 'Fix the field named in the message (details.field); docs/openapi.json describes every route.',
    exit: EXIT.network,
    http: 400,
  },
  IQP_E_METHOD_NOT_ALLOWED: { message: 'Method not allowed on this path.', hint: 'See docs/openapi.json for the methods each path accepts.', exit: EXIT.network, http: 405 },
  IQP_E_UNAUTHORIZED: {
    message: 'A valid bearer token is required.',
    hint: 'Pass --token or set IQP_TOKEN; an operator creates tokens with `iqp token create`.',
    exit: EXIT.network,
    http: 401,
  },
  IQP_E_TOKEN_EXPIRED: { message: 'The access token has expired.', hint: 'Get a new one from /v1/auth/refresh with the refresh token.', exit: EXIT.network, http: 401 },
  IQP_E_FORBIDDEN: { message: 'The token’s role does not allow this.', hint: 'Use a token with the admin role.', exit: EXIT.network, http: 403 },
  IQP_E_VERSION_EXISTS: {
    message: 'This version is already published with different content.',
    hint: 'Versions are immutable: bump the version in iqp.json and build again.',
    exit: EXIT.network,
    http: 409,
  },
  IQP_E_CONTENT_TOO_LARGE: {
    message: 'The pack’s content is larger than the registry accepts, or expands too far for its size.',
    hint: 'Ask the operator to raise max_content_bytes or max_compression_ratio, or split the content into several packs.',
    exit: EXIT.network,
    http: 413,
  },
  IQP_E_BUSY: { message: 'The registry is busy.', hint: 'Try again after the number of seconds in Retry-After; iqp retries by itself.', exit: EXIT.network, http: 503 },
  IQP_E_REQUEST_TIMEOUT: { message: 'The request took too long.', hint: 'Send the request body without long pauses.', exit: EXIT.network, http: 408 },
  IQP_E_INVALID_HOST: usage('The Host header is not a valid host name.', 'Send a plain host[:port]; operators set public_url so links never come from request headers.'),
  IQP_E_RESPONSE_TOO_LARGE: {
    message: 'The registry’s answer is larger than iqp accepts.',
    hint: 'The registry may be misbehaving or malicious; check --registry, or raise the limit with --max-size for a pack.',
    exit: EXIT.network,
    http: 502,
  },
  IQP_E_UPLOAD_TOO_LARGE: { message: 'The upload is larger than the registry accepts.', hint: 'Ask the operator to raise max_upload_bytes.', exit: EXIT.network, http: 413 },
  IQP_E_UNSUPPORTED_MEDIA_TYPE: {
    message: 'Unsupported content type.',
    hint: 'Send the pack as the raw request body with Content-Type: application/octet-stream.',
    exit: EXIT.network,
    http: 415,
  },
  IQP_E_RANGE_NOT_SATISFIABLE: { message: 'The requested range is outside the file.', hint: 'Ask for bytes within the size the registry reports.', exit: EXIT.network, http: 416 },
  IQP_E_NO_PUBLISHER_KEYS: {
    message: 'The registry has no publisher keys, so it cannot accept signed packs.',
    hint: 'An admin registers one with `iqp keys add <file.pub>`.',
    exit: EXIT.network,
    http: 422,
  },
  IQP_E_KEY_IN_USE: {
    message: 'The key still signs packs that apps are offered.',
    hint: 'Deprecate or supersede them first, or remove the key with --force if it is compromised.',
    exit: EXIT.network,
    http: 409,
  },
  IQP_E_INVALID_VERSION: usage('Not a valid semver version or range.', 'Use a version such as 1.2.0, or a range such as <2.0.0.'),
  IQP_E_TOKEN_REQUIRED: usage('No registry token given.', 'Set IQP_TOKEN (it stays out of shell history), pass --token, or put "token" in the config file.'),
  IQP_E_REGISTRY_REQUIRED: usage('No registry URL given.', 'Pass --registry URL, set IQP_REGISTRY, or put "registry" in the config file.'),
  IQP_E_DOWNLOAD_MISMATCH: check(
    'The downloaded pack is not the one the registry announced (size, SHA-256, id or version differ).',
    'The download was damaged or the registry serves the wrong file; run the command again, and tell the operator if it persists.',
    502,
  ),
  IQP_E_NETWORK: { message: 'The registry could not be reached.', hint: 'Check the URL and your connection; iqp retries transient failures.', exit: EXIT.network, http: 502 },
  IQP_E_REGISTRY: { message: 'The registry answered unexpectedly.', hint: 'Try again; if it persists, the operator should check the server log.', exit: EXIT.network, http: 502 },
  IQP_E_UNAVAILABLE: { message: 'The registry is not healthy.', hint: 'The operator should check the database and blob store.', exit: EXIT.network, http: 503 },

  // Releases
  IQP_E_RELEASE_MANIFEST: check('The release manifest is malformed.', 'Do not trust this release; the registry or a proxy altered it.'),
  IQP_E_RELEASE_EXPIRED: check(
    'The release manifest has expired.',
    'A registry serving an expired manifest may be frozen by an attacker; the release manager renews it with `iqp release resign`.',
  ),
  IQP_E_RELEASE_ROLLBACK: check(
    'The release manifest is older than one already accepted.',
    'Refusing a rollback: the registry serves an older release than this client has seen. Check the registry, or reset trust state deliberately.',
  ),
  IQP_E_RELEASE_INVALID: check('The release does not pass validation.', 'Run `iqp release validate` and fix each failure.'),
  IQP_E_RELEASE_STATE: { message: 'The release is not in a state that allows this.', hint: 'Drafts can be changed and published; published releases can only be deprecated or re-signed.', exit: EXIT.network, http: 409 },
  IQP_E_RELEASE_EXISTS: { message: 'A release with this name already exists on this channel.', hint: 'Release names are unique per channel; choose another name.', exit: EXIT.network, http: 409 },
  IQP_E_RELEASE_SEQUENCE: {
    message: 'The signed manifest’s sequence is not the channel’s next one.',
    hint: 'Another release was published meanwhile; run the command again to sign with the current sequence.',
    exit: EXIT.network,
    http: 409,
  },
  // A usage error for the CLI (exit 2), but a well-formed request the registry cannot process: 422.
  IQP_E_ROLE_UNKNOWN: { ...usage('The release does not require this role.', 'Check the role’s spelling against `iqp release show <id>`, or pass --extra-role to attach it anyway.'), http: 422 },
  IQP_E_BACKUP_INVALID: check('The backup is damaged or inconsistent.', 'Restore another backup; this one cannot be trusted to give a working registry.'),
  IQP_E_STORE_INCOMPATIBLE: {
    ...check('The registry holds something its new storage cannot take.', 'Nothing was copied. The message names the table, column or value: fix it in the source, or have the plugin that made it create the same in its PostgreSQL migrations.'),
    http: 500,
  },
  IQP_E_CHANNEL_UNKNOWN: usage('Unknown release channel.', 'Use one of the registry’s channels (stable, beta, nightly by default).'),
  IQP_E_PACK_NOT_ATTACHABLE: { message: 'The pack cannot be attached to a release.', hint: 'Attach a published, non-deprecated pack version.', exit: EXIT.network, http: 422 },

  // Plugins (docs/plugins.md). Problems found while loading or starting one are the operator's to
  // fix (exit 1, or 2 for what they typed); answers from a plugin's routes speak to clients.
  IQP_E_PLUGIN_INVALID: plugin('The plugin is not a valid iqp plugin.', 'Fix the named field of its iqp-plugin.json or module (docs/plugins.md), or disable it with `iqp plugins disable <id>`.'),
  IQP_E_PLUGIN_HOST_UNSUPPORTED: plugin(
    'The plugin was written for another version of the iqp plugin API.',
    'Install a version of the plugin made for this iqp (its "host" range must include the API version in the message), or disable it.',
  ),
  IQP_E_PLUGIN_REGISTER: plugin('The plugin failed while registering its routes, services and hooks.', 'This is a bug in the plugin: update or disable it (`iqp plugins disable <id>`).'),
  IQP_E_PLUGIN_START: plugin('The plugin failed to start.', 'The message says whether start() threw or timed out; check its config and the log, raise start_timeout_ms, or disable it.'),
  IQP_E_PLUGIN_CONFIG: { ...usage('The plugin’s configuration is invalid.', 'Fix the named key with `iqp plugins config <id> --set key=value` (a {"$env": NAME} value needs that environment variable set).'), http: 500 },
  IQP_E_PLUGIN_ROUTE_CONFLICT: plugin('Two plugins, or a plugin and the registry, declare the same route.', 'Disable one of the plugins named in the message.'),
  IQP_E_PLUGIN_MISSING: { ...usage('A plugin, or a plugin it requires, is not installed or not enabled.', 'Enable the named plugin with `iqp plugins enable <id|path|package>` (in a version its dependents accept), or disable the plugin that needs it.'), http: 500 },
  IQP_E_PLUGIN_MIGRATION: plugin('A plugin’s database migration failed or was refused.', 'Nothing of the failed migration was kept; the message names the migration and why. Migrations are forward-only: restore the plugin version that applied them, or fix the plugin.'),
  IQP_E_PLUGIN_UNAVAILABLE: { message: 'This part of the registry is unavailable.', hint: 'The plugin serving it failed to start; the operator should check /v1/health and the server log.', exit: EXIT.network, http: 503 },
  IQP_E_PLUGIN_FAILED: { message: 'The registry could not complete the request.', hint: 'A plugin failed while answering; the operator should check the server log for its plugin id.', exit: EXIT.network, http: 500 },
  IQP_E_PLUGIN_REQUIRED: { ...usage('Another enabled plugin requires this one.', 'Disable the plugins named in the message first.'), http: 409 },
  IQP_E_PLUGIN_PROVIDED: {
    ...usage('Another enabled plugin already provides a service this one provides; the registry would start neither.', 'Keep one of them: disable the other first (`iqp plugins disable <id>`), then enable this one.'),
    http: 409,
  },

  // Accounts (the auth plugin)
  IQP_E_INVALID_CREDENTIALS: { message: 'Wrong email or password.', hint: 'Check both and try again, or reset the password.', exit: EXIT.network, http: 401 },
  IQP_E_TOKEN_INVALID: { message: 'The token is not valid here.', hint: 'Sign in again to get new tokens.', exit: EXIT.network, http: 401 },
  IQP_E_REFRESH_REUSED: {
    message: 'The refresh token was already used; its session is revoked.',
    hint: 'Sign in again. Keep only the newest refresh token, and send one refresh at a time per device.',
    exit: EXIT.network,
    http: 401,
  },
  IQP_E_EMAIL_UNVERIFIED: { message: 'The email address is not verified yet.', hint: 'Enter the code from the verification mail, or ask for a new one.', exit: EXIT.network, http: 403 },
  // A usage error for `iqp users create` (exit 2), a well-formed request the registry refuses: 422.
  IQP_E_PASSWORD_WEAK: { ...usage('The password is too short, too long or too common.', 'Use 8 to 1,024 characters, and not one of the most common passwords.'), http: 422 },
  IQP_E_RATE_LIMITED: { message: 'Too many attempts.', hint: 'Wait the number of seconds in Retry-After, then try again.', exit: EXIT.network, http: 429 },
  IQP_E_CODE_INVALID: { message: 'The code or link is wrong, used or expired.', hint: 'Ask for a new one.', exit: EXIT.network, http: 400 },
  IQP_E_DEVICE_FOREIGN: { message: 'The device id belongs to another account.', hint: 'Generate a new random device id for this install.', exit: EXIT.network, http: 409 },
  IQP_E_GOOGLE_TOKEN_INVALID: {
    message: 'The Google ID token is not valid for this registry.',
    hint: 'Sign in with Google again; the operator checks google.client_ids in the auth plugin config.',
    exit: EXIT.network,
    http: 401,
  },
  IQP_E_ACCOUNT_CONFLICT: {
    message: 'An account with this email exists and is not verified, so it cannot be linked.',
    hint: 'Verify the existing account with its email code first, or sign in with its password.',
    exit: EXIT.network,
    http: 409,
  },
  IQP_E_USER_NOT_FOUND: usage('No such user.', 'Check the id or email with `iqp users list`.'),

  // Sync (plugins/sync, docs/sync-protocol.md). Per-mutation refusals come back inside a push's results, not as the push's status.
  IQP_E_SYNC_ENTITY_UNKNOWN: { message: 'The entity is not one this registry syncs.', hint: 'Use an entity listed in the sync plugin config (`iqp plugins config sync`).', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_PAYLOAD_INVALID: { message: 'The payload does not match the entity’s schema.', hint: 'Fix the field named in the error; the rest of the push was applied.', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_PAYLOAD_TOO_LARGE: { message: 'The payload is larger than the registry accepts for one entity.', hint: 'Split the entity, or ask the operator to raise max_payload_bytes.', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_PUSH_TOO_LARGE: { message: 'The push has more mutations than the registry accepts at once.', hint: 'Send fewer mutations per push (max_push_mutations).', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_SCHEMA_VERSION: { message: 'The app’s schema_version is outside the range this registry accepts.', hint: 'Update the app; the operator sets schema_versions in the sync plugin config.', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_BASE_VERSION: { message: 'base_version is newer than the entity’s version on the registry.', hint: 'The registry was likely restored from an older backup: queue the change again under a new mutation_id with base_version set to the version in this result; it is merged, and any field both sides changed is kept in a conflict record.', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_MUTATION_REUSED: { message: 'The mutation_id was already used for a different mutation.', hint: 'Give every mutation a new id; resend only the exact mutation an id was first used for.', exit: EXIT.network, http: 422 },
  IQP_E_SYNC_CONFLICT_RESOLVED: { message: 'The conflict is already resolved.', hint: 'Pull to get the resolution; resolve it again by writing the entity.', exit: EXIT.network, http: 409 },
  IQP_E_SYNC_EXPORT_CHANGED: { message: 'The data changed since the export started, so it cannot resume.', hint: 'Start the export again from the beginning.', exit: EXIT.network, http: 409 },
  IQP_E_SYNC_IMPORT_INVALID: check('The import file is not a valid, intact iqp sync export.', 'Nothing was changed. Use an export file as `iqp sync export` or GET /v1/sync/export wrote it, unmodified.'),

  // Local I/O and process
  IQP_E_IO: { message: 'A file operation failed.', hint: 'Check free disk space and permissions.', exit: EXIT.io, http: 500 },
  IQP_E_CANCELLED: { message: 'Cancelled.', hint: 'Nothing was written.', exit: EXIT.cancelled, http: 499 },
  IQP_E_INTERNAL: {
    message: 'Internal error.',
    hint: 'This is a bug in iqp; please report it with the command you ran.',
    exit: EXIT.internal,
    http: 500,
  },
} as const satisfies Record<string, Spec>;

export type ErrorCode = keyof typeof CATALOG;

export class IqpError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly exitCode: number;
  readonly httpStatus: number;
  readonly details: Record<string, unknown> | undefined;

  /** `options.hint` replaces the catalog's generic hint where the throw site knows the actual fix. */
  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: { cause?: unknown; hint?: string }) {
    const spec: Spec = CATALOG[code];
    super(message ?? spec.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IqpError';
    this.code = code;
    this.hint = options?.hint ?? spec.hint;
    this.exitCode = spec.exit;
    this.httpStatus = spec.http;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; hint: string; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, hint: this.hint, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isIqpError(err: unknown, code?: ErrorCode): err is IqpError {
  return err instanceof IqpError && (code === undefined || err.code === code);
}

/** Node's and OpenSSL's codes for a certificate the client cannot trust. */
const CERT_CODES = /^(CERT_|UNABLE_TO_|ERROR_IN_CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$|INVALID_CA$|INVALID_PURPOSE$|PATH_LENGTH_EXCEEDED$|ERR_TLS_CERT_ALTNAME_INVALID$)/;
/** The TLS handshake itself: OpenSSL's errors (ERR_SSL_*, ERR_OSSL_*) and node's (ERR_TLS_*). */
const HANDSHAKE_CODES = /^(ERR_SSL_|ERR_OSSL_|ERR_TLS_)/;

/**
 * What went wrong in a TLS failure, in a few words, and what to do; null for any other error.
 * Another attempt meets the same server and the same certificate, so these are never retried.
 */
export function tlsFailure(err: unknown): { reason: string; hint: string } | null {
  const { code, reason, message } = (err ?? {}) as { code?: unknown; reason?: unknown; message?: unknown };
  if (typeof code !== 'string') return null;
  // OpenSSL's message is a dump of its error queue; its reason ("wrong version number") is the news.
  const said = `${typeof reason === 'string' ? reason : typeof message === 'string' ? message : code} (${code})`;
  if (CERT_CODES.test(code)) {
    return {
      reason: said,
      hint: 'The server’s certificate is not trusted here (self-signed, expired, for another host name, or from an unknown authority). Check the URL’s host name; for a private authority, point NODE_EXTRA_CA_CERTS at its certificate. iqp does not skip this check.',
    };
  }
  if (HANDSHAKE_CODES.test(code)) {
    return {
      reason: said,
      hint: 'The TLS handshake failed. If the server speaks plain HTTP at that address, give an http:// URL instead of https:// (or put a TLS proxy in front); otherwise check its TLS setup (curl -v).',
    };
  }
  return null;
}

/** Maps anything thrown to an IqpError: node's system errors keep their meaning, the rest is a bug. */
export function toIqpError(err: unknown): IqpError {
  if (err instanceof IqpError) return err;
  const sys = err as NodeJS.ErrnoException | undefined;
  if (sys && typeof sys.code === 'string') {
    const tls = tlsFailure(err);
    if (tls) return new IqpError('IQP_E_NETWORK', `TLS failed: ${tls.reason}.`, { errno: sys.code }, { cause: err, hint: tls.hint });
    if (sys.code === 'ENOENT') return new IqpError('IQP_E_FILE_NOT_FOUND', `Not found: ${sys.path ?? sys.message}`, undefined, { cause: err });
    if (sys.code === 'ERR_USE_AFTER_CLOSE' || sys.name === 'ExitPromptError') return new IqpError('IQP_E_CANCELLED', undefined, undefined, { cause: err });
    if (sys.code === 'EADDRINUSE') {
      return new IqpError('IQP_E_IO', sys.message, { errno: sys.code }, { cause: err, hint: 'Another process already listens on that address: stop it, or choose another port with --port (0 takes any free one).' });
    }
    // A path naming the wrong kind of thing is the user's to fix, not a disk problem. Node names the
    // path for most calls; a read of a folder (EISDIR) often comes without it.
    const path = sys.path ?? null;
    if (sys.code === 'EISDIR') {
      return new IqpError('IQP_E_USAGE', path ? `${path} is a folder, not a file.` : `A folder was given where a file is expected (${sys.message}).`, { errno: sys.code }, { cause: err, hint: 'Give the path of a file, not a folder.' });
    }
    if (sys.code === 'ENOTDIR') {
      return new IqpError('IQP_E_FILE_NOT_FOUND', `Not found: ${path ?? sys.message}: part of the path is a file, not a folder.`, { errno: sys.code }, { cause: err });
    }
    if (sys.code === 'EEXIST') {
      return new IqpError('IQP_E_USAGE', `${path ?? 'The path'} already exists${sys.syscall === 'mkdir' ? ', and is not a folder' : ''}.`, { errno: sys.code }, { cause: err, hint: 'Choose another path, or move what is there out of the way.' });
    }
    if (/^E[A-Z]+$/.test(sys.code)) return new IqpError('IQP_E_IO', `${sys.message}`, { errno: sys.code }, { cause: err });
  }
  if (err instanceof Error && err.name === 'ExitPromptError') return new IqpError('IQP_E_CANCELLED', undefined, undefined, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new IqpError('IQP_E_INTERNAL', `Internal error: ${message}`, undefined, { cause: err });
}
