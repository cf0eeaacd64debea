/**
 * Schema migrations of the embedded metadata store, applied in order inside one transaction each.
 * Append only: a released migration never changes.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly up: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'packs, keys, tokens, audit',
    up: `
      CREATE TABLE packs (
        package_id         TEXT    NOT NULL,
        version            TEXT    NOT NULL,
        package_type       TEXT    NOT NULL,
        language_code      TEXT    NOT NULL,
        min_app_version    TEXT    NOT NULL,
        manifest_json      TEXT    NOT NULL,
        signature          TEXT    NOT NULL,
        signer_key_id      TEXT    NOT NULL,
        size_bytes         INTEGER NOT NULL CHECK (size_bytes > 0),
        sha256             TEXT    NOT NULL CHECK (length(sha256) = 64),
        published_at       TEXT    NOT NULL,
        deprecated_message TEXT,
        deprecated_at      TEXT,
        PRIMARY KEY (package_id, version),
        CHECK ((deprecated_message IS NULL) = (deprecated_at IS NULL))
      ) STRICT;
      CREATE INDEX packs_by_type_lang ON packs (package_type, language_code);
      CREATE INDEX packs_by_sha256 ON packs (sha256);

      CREATE TABLE publisher_keys (
        key_id     TEXT PRIMARY KEY CHECK (length(key_id) = 16),
        public_key TEXT NOT NULL,
        name       TEXT NOT NULL,
        added_at   TEXT NOT NULL
      ) STRICT;

      CREATE TABLE tokens (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        role         TEXT NOT NULL CHECK (role IN ('admin', 'publisher')),
        secret_hash  TEXT NOT NULL UNIQUE,
        created_at   TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at   TEXT
      ) STRICT;

      CREATE TABLE audit_log (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        target  TEXT NOT NULL,
        details TEXT
      ) STRICT;
      CREATE INDEX audit_by_actor ON audit_log (actor, id);
      CREATE INDEX audit_by_target ON audit_log (target, id);
      -- The audit log is append-only.
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    `,
  },
  {
    version: 2,
    name: 'releases, release profiles, release keys',
    up: `
      -- Keys either sign packs (publishers) or release manifests (release managers).
      ALTER TABLE publisher_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'pack' CHECK (purpose IN ('pack', 'release'));

      CREATE TABLE release_profiles (
        name        TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
        roles       TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
        description TEXT NOT NULL DEFAULT '',
        updated_at  TEXT NOT NULL
      ) STRICT;

      CREATE TABLE dataset_releases (
        id                 INTEGER PRIMARY KEY AUTOINCREMENT,
        name               TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
        channel            TEXT NOT NULL,
        notes              TEXT NOT NULL DEFAULT '',
        min_app_version    TEXT NOT NULL,
        required_roles     TEXT NOT NULL CHECK (json_valid(required_roles) AND json_type(required_roles) = 'array'),
        profile            TEXT REFERENCES release_profiles (name) ON UPDATE CASCADE ON DELETE RESTRICT,
        status             TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'deprecated')),
        created_at         TEXT NOT NULL,
        created_by         TEXT NOT NULL,
        published_at       TEXT,
        published_by       TEXT,
        deprecated_at      TEXT,
        deprecated_message TEXT,
        -- The current signed manifest (client-signed; the registry never holds the release key).
        sequence           INTEGER CHECK (sequence > 0),
        manifest_json      TEXT,
        signature          TEXT,
        signer_key_id      TEXT,
        expires_at         TEXT,
        UNIQUE (channel, name),
        UNIQUE (channel, sequence),
        CHECK ((status = 'draft') = (published_at IS NULL)),
        CHECK ((status = 'deprecated') = (deprecated_at IS NOT NULL)),
        CHECK (status = 'draft' OR (sequence IS NOT NULL AND manifest_json IS NOT NULL AND signature IS NOT NULL AND expires_at IS NOT NULL))
      ) STRICT;
      CREATE INDEX releases_by_channel ON dataset_releases (channel, status, sequence);

      CREATE TABLE dataset_release_artifacts (
        release_id  INTEGER NOT NULL REFERENCES dataset_releases (id) ON DELETE CASCADE,
        role        TEXT    NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
        package_id  TEXT    NOT NULL,
        version     TEXT    NOT NULL,
        attached_at TEXT    NOT NULL,
        PRIMARY KEY (release_id, role, package_id),
        FOREIGN KEY (package_id, version) REFERENCES packs (package_id, version) ON DELETE RESTRICT
      ) STRICT;
      CREATE INDEX release_artifacts_by_pack ON dataset_release_artifacts (package_id, version);

      -- The highest sequence ever signed per channel: signatures only move forward, even past
      -- deprecated releases, so a client never sees a sequence go down.
      CREATE TABLE channel_sequences (
        channel  TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL CHECK (sequence > 0)
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'registry id',
    up: `
      -- Who this registry is, independent of the address it is reached at: signed into every
      -- release manifest, so a client's rollback protection (keyed by this id and channel)
      -- survives a move to a CDN, a mirror or a new port. Random (128 bits), made once with the
      -- data directory; backups copy it and restores keep it, so a registry restored elsewhere is
      -- still the same registry to its clients.
      CREATE TABLE registry_identity (
        singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
        registry_id TEXT NOT NULL CHECK (length(registry_id) = 32 AND registry_id NOT GLOB '*[^0-9a-f]*'),
        created_at  TEXT NOT NULL
      ) STRICT;
      INSERT INTO registry_identity (singleton, registry_id, created_at)
        VALUES (1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
      CREATE TRIGGER registry_identity_no_update BEFORE UPDATE ON registry_identity BEGIN SELECT RAISE(ABORT, 'the registry id never changes'); END;
      CREATE TRIGGER registry_identity_no_delete BEFORE DELETE ON registry_identity BEGIN SELECT RAISE(ABORT, 'the registry id never changes'); END;
    `,
  },
  {
    version: 4,
    name: 'plugin migrations ledger, plugin rate limits',
    up: `
      -- Which of each plugin's own migrations have run (server/plugins/migrations.ts): plugins
      -- migrate forward only, and a recorded migration whose SQL changed is refused by checksum.
      CREATE TABLE plugin_migrations (
        plugin_id    TEXT NOT NULL,
        migration_id TEXT NOT NULL,
        checksum     TEXT NOT NULL CHECK (length(checksum) = 64),
        applied_at   TEXT NOT NULL,
        PRIMARY KEY (plugin_id, migration_id)
      ) STRICT;
      -- Plugins' rate limits (ctx.rateLimit): the layout rate-limiter-flexible's RateLimiterSQLite
      -- uses, made here so the limiter never creates tables on its own (and backups know the table).
      -- Keys are '<plugin id>:<limit name>:<key>'.
      CREATE TABLE plugin_rate_limits (
        key    TEXT PRIMARY KEY,
        points INTEGER NOT NULL DEFAULT 0,
        expire INTEGER
      );
    `,
  },
  {
    version: 5,
    name: 'change counter',
    up: `
      -- Bumped inside every transaction that changes what the public read endpoints answer (packs,
      -- keys, releases and their profiles and sequences), by triggers so that no write path can
      -- forget it. Every process serving this database compares its caches against it
      -- (MetadataStore.generation), so a publish through one process is never hidden by another's
      -- cache. Tokens and the audit log do not count: no cached answer depends on them, and a token's
      -- last use is written on every authenticated request.
      CREATE TABLE registry_changes (
        singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
        generation INTEGER NOT NULL
      ) STRICT;
      INSERT INTO registry_changes (singleton, generation) VALUES (1, 0);
      CREATE TRIGGER registry_changes_no_delete BEFORE DELETE ON registry_changes BEGIN SELECT RAISE(ABORT, 'the change counter is never removed'); END;
      CREATE TRIGGER packs_insert_changes AFTER INSERT ON packs BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER packs_update_changes AFTER UPDATE ON packs BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER packs_delete_changes AFTER DELETE ON packs BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER publisher_keys_insert_changes AFTER INSERT ON publisher_keys BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER publisher_keys_update_changes AFTER UPDATE ON publisher_keys BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER publisher_keys_delete_changes AFTER DELETE ON publisher_keys BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER release_profiles_insert_changes AFTER INSERT ON release_profiles BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER release_profiles_update_changes AFTER UPDATE ON release_profiles BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER release_profiles_delete_changes AFTER DELETE ON release_profiles BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER dataset_releases_insert_changes AFTER INSERT ON dataset_releases BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER dataset_releases_update_changes AFTER UPDATE ON dataset_releases BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER dataset_releases_delete_changes AFTER DELETE ON dataset_releases BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER dataset_release_artifacts_insert_changes AFTER INSERT ON dataset_release_artifacts BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER dataset_release_artifacts_update_changes AFTER UPDATE ON dataset_release_artifacts BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER dataset_release_artifacts_delete_changes AFTER DELETE ON dataset_release_artifacts BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER channel_sequences_insert_changes AFTER INSERT ON channel_sequences BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER channel_sequences_update_changes AFTER UPDATE ON channel_sequences BEGIN UPDATE registry_changes SET generation = generation + 1; END;
      CREATE TRIGGER channel_sequences_delete_changes AFTER DELETE ON channel_sequences BEGIN UPDATE registry_changes SET generation = generation + 1; END;
    `,
  },
];
