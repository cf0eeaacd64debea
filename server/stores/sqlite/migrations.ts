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
];
