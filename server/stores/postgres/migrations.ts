/**
 * Schema migrations of the PostgreSQL metadata and release stores: the rules of the SQLite schema
 * (server/stores/sqlite/migrations.ts) in PostgreSQL's words, applied in order, one transaction
 * each (schema.ts). Append only: a released migration never changes. The versions here are their
 * own (1 packs…, 2 releases, 3 registry id, 4 change counter, 5 the plugin tables of SQLite
 * migration 4, which came once plugins had a PostgreSQL database).
 *
 * Every text column is COLLATE "C": SQLite compares text byte by byte, so sort orders, keyset
 * cursors and the `>=`/`<` ranges of the audit filters only agree with it, and only use the
 * indexes, when PostgreSQL does too, whatever the database's default collation. Timestamps stay
 * the RFC 3339 text the interfaces carry, so they round-trip byte for byte.
 */
import type { Migration } from '../sqlite/migrations.js';

/** A trigger function that refuses the change with `message` (row and TRUNCATE triggers alike). */
function refuse(name: string, message: string): string {
  return `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${message}' USING ERRCODE = 'restrict_violation'; END $$;`;
}

/** BEFORE UPDATE, DELETE (per row) and TRUNCATE (which skips row triggers) on `table`, all refused by `fn`. */
function frozen(table: string, fn: string, what: 'UPDATE OR DELETE' | 'DELETE'): string {
  return `
    CREATE TRIGGER ${table}_frozen BEFORE ${what} ON ${table} FOR EACH ROW EXECUTE FUNCTION ${fn}();
    CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();`;
}

/** The tables whose writes change what a public read answers (SQLite migration 5's set). */
const COUNTED = ['packs', 'publisher_keys', 'release_profiles', 'dataset_releases', 'dataset_release_artifacts', 'channel_sequences'];

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'packs, keys, tokens, audit',
    up: `
      CREATE TABLE packs (
        package_id         text COLLATE "C" NOT NULL,
        version            text COLLATE "C" NOT NULL,
        package_type       text COLLATE "C" NOT NULL,
        language_code      text COLLATE "C" NOT NULL,
        min_app_version    text COLLATE "C" NOT NULL,
        manifest_json      text COLLATE "C" NOT NULL,
        signature          text COLLATE "C" NOT NULL,
        signer_key_id      text COLLATE "C" NOT NULL,
        size_bytes         bigint NOT NULL CHECK (size_bytes > 0),
        sha256             text COLLATE "C" NOT NULL CHECK (length(sha256) = 64),
        published_at       text COLLATE "C" NOT NULL,
        deprecated_message text COLLATE "C",
        deprecated_at      text COLLATE "C",
        PRIMARY KEY (package_id, version),
        CHECK ((deprecated_message IS NULL) = (deprecated_at IS NULL))
      );
      CREATE INDEX packs_by_type_lang ON packs (package_type, language_code);
      CREATE INDEX packs_by_sha256 ON packs (sha256);

      CREATE TABLE publisher_keys (
        key_id     text COLLATE "C" PRIMARY KEY CHECK (length(key_id) = 16),
        public_key text COLLATE "C" NOT NULL,
        name       text COLLATE "C" NOT NULL,
        added_at   text COLLATE "C" NOT NULL
      );

      CREATE TABLE tokens (
        id           text COLLATE "C" PRIMARY KEY,
        name         text COLLATE "C" NOT NULL,
        role         text COLLATE "C" NOT NULL CHECK (role IN ('admin', 'publisher')),
        secret_hash  text COLLATE "C" NOT NULL UNIQUE,
        created_at   text COLLATE "C" NOT NULL,
        last_used_at text COLLATE "C",
        revoked_at   text COLLATE "C"
      );

      -- Ids only grow (an identity never reuses a value), like SQLite's AUTOINCREMENT.
      CREATE TABLE audit_log (
        id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at      text COLLATE "C" NOT NULL,
        actor   text COLLATE "C" NOT NULL,
        action  text COLLATE "C" NOT NULL,
        target  text COLLATE "C" NOT NULL,
        details text COLLATE "C"
      );
      CREATE INDEX audit_by_actor ON audit_log (actor, id);
      CREATE INDEX audit_by_target ON audit_log (target, id);
      -- The audit log is append-only.
      ${refuse('audit_log_append_only', 'audit_log is append-only')}
      ${frozen('audit_log', 'audit_log_append_only', 'UPDATE OR DELETE')}
    `,
  },
  {
    version: 2,
    name: 'releases, release profiles, release keys',
    up: `
      -- Keys either sign packs (publishers) or release manifests (release managers).
      ALTER TABLE publisher_keys ADD COLUMN purpose text COLLATE "C" NOT NULL DEFAULT 'pack' CHECK (purpose IN ('pack', 'release'));

      -- Role lists are JSON text, as in SQLite (read back byte for byte); text that is not JSON
      -- fails the cast, anything but an array fails the check.
      CREATE TABLE release_profiles (
        name        text COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
        roles       text COLLATE "C" NOT NULL CHECK (json_typeof(roles::json) = 'array'),
        description text COLLATE "C" NOT NULL DEFAULT '',
        updated_at  text COLLATE "C" NOT NULL
      );

      CREATE TABLE dataset_releases (
        id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name               text COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
        channel            text COLLATE "C" NOT NULL,
        notes              text COLLATE "C" NOT NULL DEFAULT '',
        min_app_version    text COLLATE "C" NOT NULL,
        required_roles     text COLLATE "C" NOT NULL CHECK (json_typeof(required_roles::json) = 'array'),
        profile            text COLLATE "C" REFERENCES release_profiles (name) ON UPDATE CASCADE ON DELETE RESTRICT,
        status             text COLLATE "C" NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'deprecated')),
        created_at         text COLLATE "C" NOT NULL,
        created_by         text COLLATE "C" NOT NULL,
        published_at       text COLLATE "C",
        published_by       text COLLATE "C",
        deprecated_at      text COLLATE "C",
        deprecated_message text COLLATE "C",
        -- The current signed manifest (client-signed; the registry never holds the release key).
        sequence           bigint CHECK (sequence > 0),
        manifest_json      text COLLATE "C",
        signature          text COLLATE "C",
        signer_key_id      text COLLATE "C",
        expires_at         text COLLATE "C",
        UNIQUE (channel, name),
        UNIQUE (channel, sequence),
        CHECK ((status = 'draft') = (published_at IS NULL)),
        CHECK ((status = 'deprecated') = (deprecated_at IS NOT NULL)),
        CHECK (status = 'draft' OR (sequence IS NOT NULL AND manifest_json IS NOT NULL AND signature IS NOT NULL AND expires_at IS NOT NULL))
      );
      CREATE INDEX releases_by_channel ON dataset_releases (channel, status, sequence);

      CREATE TABLE dataset_release_artifacts (
        release_id  bigint NOT NULL REFERENCES dataset_releases (id) ON DELETE CASCADE,
        role        text COLLATE "C" NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
        package_id  text COLLATE "C" NOT NULL,
        version     text COLLATE "C" NOT NULL,
        attached_at text COLLATE "C" NOT NULL,
        PRIMARY KEY (release_id, role, package_id),
        FOREIGN KEY (package_id, version) REFERENCES packs (package_id, version) ON DELETE RESTRICT
      );
      CREATE INDEX release_artifacts_by_pack ON dataset_release_artifacts (package_id, version);

      -- The highest sequence ever signed per channel: signatures only move forward, even past
      -- deprecated releases, so a client never sees a sequence go down.
      CREATE TABLE channel_sequences (
        channel  text COLLATE "C" PRIMARY KEY,
        sequence bigint NOT NULL CHECK (sequence > 0)
      );
    `,
  },
  {
    version: 3,
    name: 'registry id',
    up: `
      -- Who this registry is, independent of the address it is reached at: signed into every
      -- release manifest, so a client's rollback protection (keyed by this id and channel)
      -- survives a move to a CDN, a mirror or a new port. Random, made once with the database;
      -- backups copy it and restores keep it. 128 bits: the md5 of two random UUIDs (244 random
      -- bits), as PostgreSQL has no random bytes without the pgcrypto extension.
      CREATE TABLE registry_identity (
        singleton   integer PRIMARY KEY CHECK (singleton = 1),
        registry_id text COLLATE "C" NOT NULL CHECK (registry_id ~ '^[0-9a-f]{32}$'),
        created_at  text COLLATE "C" NOT NULL
      );
      INSERT INTO registry_identity (singleton, registry_id, created_at)
        VALUES (1, md5(gen_random_uuid()::text || gen_random_uuid()::text),
                to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
      ${refuse('registry_identity_frozen', 'the registry id never changes')}
      ${frozen('registry_identity', 'registry_identity_frozen', 'UPDATE OR DELETE')}
    `,
  },
  {
    version: 4,
    name: 'change counter',
    up: `
      -- Bumped inside every transaction that changes what the public read endpoints answer (packs,
      -- keys, releases and their profiles and sequences), by triggers so that no write path can
      -- forget it, and announced on the iqp_changes channel (delivered at commit, never for a
      -- rollback) as '<schema>:<generation>': every server keeps its MetadataStore.generation
      -- current from these, and a registry in another schema of the same database is told apart
      -- by the schema. Tokens and the audit log do not count: no cached answer depends on them.
      CREATE TABLE registry_changes (
        singleton  integer PRIMARY KEY CHECK (singleton = 1),
        generation bigint NOT NULL
      );
      INSERT INTO registry_changes (singleton, generation) VALUES (1, 0);
      ${refuse('registry_changes_kept', 'the change counter is never removed')}
      ${frozen('registry_changes', 'registry_changes_kept', 'DELETE')}

      -- search_path is fixed to this schema's at creation, so a write made from a session with
      -- another search_path still bumps this registry's counter.
      CREATE FUNCTION registry_changes_bump() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
      DECLARE
        next bigint;
      BEGIN
        UPDATE registry_changes SET generation = generation + 1 WHERE singleton = 1 RETURNING generation INTO next;
        PERFORM pg_notify('iqp_changes', TG_TABLE_SCHEMA || ':' || next);
        RETURN NULL;
      END $$;
      -- Per row, as SQLite's triggers, so a statement that changes nothing moves nothing; and on
      -- TRUNCATE, which skips row triggers.
      ${COUNTED.map((t) => `CREATE TRIGGER ${t}_changes AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION registry_changes_bump();
      CREATE TRIGGER ${t}_truncate_changes AFTER TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION registry_changes_bump();`).join('\n      ')}
    `,
  },
  {
    version: 5,
    name: 'plugin migrations ledger, plugin rate limits',
    up: `
      -- Which of each plugin's own migrations have run (server/plugins/migrations.ts): plugins
      -- migrate forward only, and a recorded migration whose SQL changed is refused by checksum
      -- (on PostgreSQL, of its postgres script).
      CREATE TABLE plugin_migrations (
        plugin_id    text COLLATE "C" NOT NULL,
        migration_id text COLLATE "C" NOT NULL,
        checksum     text COLLATE "C" NOT NULL CHECK (length(checksum) = 64),
        applied_at   text COLLATE "C" NOT NULL,
        PRIMARY KEY (plugin_id, migration_id)
      );
      -- Plugins' rate limits (ctx.rateLimit): the columns, in the order, of rate-limiter-flexible's
      -- RateLimiterPostgres (its INSERT names none), made here so the limiter never creates tables
      -- on its own. Keys are '<plugin id>:<limit name>:<key>': text rather than the library's
      -- varchar(255), as a key may be an email address (up to 320 bytes) after that prefix.
      CREATE TABLE plugin_rate_limits (
        key    text COLLATE "C" PRIMARY KEY,
        points integer NOT NULL DEFAULT 0,
        expire bigint
      );
    `,
  },
];
